"""The admin site: ml-connector's name on every page, no "View site" (the connector has no public site), and the
index as the finance dashboard. Outside sync.admin, so that loading the site does not run the registrations
before it exists."""

from __future__ import annotations

from django.contrib import admin


class ConnectorAdminSite(admin.AdminSite):
    site_header = "ml-connector"
    site_title = "ml-connector"
    index_title = "Dashboard"
    site_url = None
