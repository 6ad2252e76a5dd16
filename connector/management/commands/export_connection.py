from django.core.management.base import BaseCommand, CommandError

from connector.connection_documents import connection_document_dumps, connection_export
from connector.models import Connection


class Command(BaseCommand):
    help = (
        'Print a connection as a JSON document for apply_connection, with every secret masked as "***" '
        "(applying it back keeps the stored secrets)."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")

    def handle(self, *args, slug, **options):
        connection = Connection.objects.filter(slug=slug).first()
        if connection is None:
            raise CommandError(f"No connection with slug {slug!r}.")
        self.stdout.write(connection_document_dumps(connection_export(connection=connection)), ending="")
