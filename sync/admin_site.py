"""The admin site: ml-connector's name on every page, no "View site" (the connector has no public site), and the
index as the finance dashboard. Outside sync.admin, so that loading the site does not run the registrations
before it exists."""

from __future__ import annotations

from django.contrib import admin

from .dashboard import dashboard, pending_alarm_minutes

# Whoever may see the records may see the figures drawn from them.
DASHBOARD_PERMISSION = "connector.view_record"


class ConnectorAdminSite(admin.AdminSite):
    site_header = "ml-connector"
    site_title = "ml-connector"
    index_title = "Dashboard"
    site_url = None

    def index(self, request, extra_context=None):
        context = dict(extra_context or {})
        if request.user.has_perm(DASHBOARD_PERMISSION):
            context["dashboard"] = dashboard()
            context["dashboard_alarm_minutes"] = pending_alarm_minutes()
            context["can_view_batches"] = request.user.has_perm("fusion.view_journalbatch")
            context["can_view_runs"] = request.user.has_perm("sync.view_syncrun")
        return super().index(request, context)
