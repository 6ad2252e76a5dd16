"""The two admin groups, Finance and Integration admin, and the permissions each is granted."""

from __future__ import annotations

from typing import Any

from django.apps import apps as global_apps
from django.db.models import Q

# --- Admin groups -------------------------------------------------------------------------------------------

GROUP_FINANCE = "Finance"
GROUP_INTEGRATION_ADMIN = "Integration admin"
_ALL = ("add_", "change_", "delete_", "view_")
_VIEW = ("view_",)

# (app label, exact codenames or codename prefixes). Prefixes cover models added to an app later; the
# post_migrate handler in connector/apps.py re-applies this after every migrate.
GROUP_PERMISSIONS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    GROUP_FINANCE: (
        ("connector", ("view_connection", "view_webhookkey", "view_record", "replay_record")),
        ("mappings", _ALL),
        ("audit", ("view_auditevent",)),
        ("commerce", _VIEW),
        ("fusion", _VIEW),
        ("sync", _VIEW),
    ),
}
GROUP_PERMISSIONS[GROUP_INTEGRATION_ADMIN] = (
    *GROUP_PERMISSIONS[GROUP_FINANCE],
    (
        "connector",
        ("add_connection", "change_connection", "add_webhookkey", "change_webhookkey", "delete_webhookkey"),
    ),
    ("sync", ("change_fusionsyncsettings", "change_syncstream")),
    (
        "django_celery_beat",
        (
            "view_periodictask",
            "change_periodictask",
            "view_intervalschedule",
            "view_crontabschedule",
            "view_solarschedule",
            "view_clockedschedule",
        ),
    ),
)


def groups_sync(*, apps: Any = global_apps, using: str = "default") -> None:
    """Create the two admin groups if missing and grant them every permission GROUP_PERMISSIONS names that
    exists now. Additive: permissions an operator granted by hand are kept. `apps` may be a migration's
    historical registry."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group_name, grants in GROUP_PERMISSIONS.items():
        match = Q(pk__in=[])
        for app_label, codes in grants:
            exact = [c for c in codes if not c.endswith("_")]
            prefixes = [c for c in codes if c.endswith("_")]
            app_match = Q(codename__in=exact)
            for prefix in prefixes:
                app_match |= Q(codename__startswith=prefix)
            match |= Q(content_type__app_label=app_label) & app_match
        group, _ = Group.objects.using(using).get_or_create(name=group_name)
        wanted = set(Permission.objects.using(using).filter(match).values_list("pk", flat=True))
        have = set(group.permissions.values_list("pk", flat=True))
        if wanted - have:
            group.permissions.add(*(wanted - have))
