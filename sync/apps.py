from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class SyncConfig(AppConfig):
    name = "sync"
    verbose_name = "Sync"


class ConnectorAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with ml-connector's own site (sync.admin_site.ConnectorAdminSite)."""

    default = False  # named in INSTALLED_APPS; "sync" itself is SyncConfig
    default_site = "sync.admin_site.ConnectorAdminSite"
