from django.apps import AppConfig
from django.core import checks
from django.db.models.signals import post_migrate

# Apps whose permissions the admin groups grant: after any of them migrates, the groups are brought up to date
# (models added to them later are covered without a new data migration).
GROUP_APPS = {"auth", "connector", "audit", "mappings", "commerce", "fusion", "sync", "django_celery_beat"}


def sync_groups_after_migrate(sender, app_config=None, using="default", apps=None, **kwargs):
    from django.apps import apps as global_apps

    from .groups import groups_sync

    if getattr(sender, "label", None) not in GROUP_APPS:
        return
    registry = apps or global_apps
    try:
        registry.get_model("auth", "Group")
        registry.get_model("auth", "Permission")
    except LookupError:  # migrating backwards past auth
        return
    groups_sync(apps=registry, using=using)


class ConnectorConfig(AppConfig):
    name = "connector"
    verbose_name = "Connector"

    def ready(self) -> None:
        from .checks import CHECK_TAGS, check_production_settings

        checks.register(check_production_settings, *CHECK_TAGS, deploy=True)
        post_migrate.connect(sync_groups_after_migrate, dispatch_uid="connector.sync_groups_after_migrate")
