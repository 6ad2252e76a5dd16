from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.db.models.signals import post_delete, post_save


class SyncConfig(AppConfig):
    name = "sync"
    verbose_name = "Sync"

    def ready(self) -> None:
        # Models load only once the registry is ready, hence the imports here (Django's own pattern).
        from connector.models import Connection

        from .fusion_schedules import on_connection_saved, on_stream_deleted
        from .models import SyncStream

        # A new connection gets its sync-from-Fusion schedules here, so the connector app never imports sync.
        post_save.connect(on_connection_saved, sender=Connection, dispatch_uid="sync.fusion_streams_on_connection")
        post_delete.connect(on_stream_deleted, sender=SyncStream, dispatch_uid="sync.fusion_stream_task_on_delete")


class ConnectorAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with ml-connector's own site (sync.admin_site.ConnectorAdminSite)."""

    default = False  # named in INSTALLED_APPS; "sync" itself is SyncConfig
    default_site = "sync.admin_site.ConnectorAdminSite"
