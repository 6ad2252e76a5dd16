from django.core.management.base import BaseCommand
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from sync.schedules import DEFAULT_SCHEDULES


class Command(BaseCommand):
    help = "Create the default periodic tasks (relay, backfill, journal shipping...) if they do not exist."

    def handle(self, *args, **options):
        for item in DEFAULT_SCHEDULES:
            interval, _ = IntervalSchedule.objects.get_or_create(
                every=item.every_seconds, period=IntervalSchedule.SECONDS
            )
            _, created = PeriodicTask.objects.get_or_create(
                name=item.name,
                defaults={"task": item.task, "interval": interval, "description": item.description},
            )
            if created:
                self.stdout.write(f"Scheduled {item.name}: every {item.every_seconds} s")
