from django.core.management.base import BaseCommand
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from sync.fusion_schedules import fusion_schedules_ensure_all
from sync.schedules import DEFAULT_SCHEDULES


class Command(BaseCommand):
    help = (
        "Create the default periodic tasks (relay, backfill, journal shipping...) and every connection's sync from "
        "Fusion schedules if they do not exist."
    )

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
        for name in fusion_schedules_ensure_all():
            self.stdout.write(f"Scheduled {name}")
