"""The two admin groups, "Finance" and "Integration admin", with their permissions.

Permissions are normally created after all migrations ran (post_migrate), so they are created here first.
Models added later (e.g. to the mappings app) are granted by the post_migrate handler in connector/apps.py."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def create_groups(apps, schema_editor):
    from connector.groups import groups_sync

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
        app_config.models_module = None
    groups_sync(apps=apps, using=schema_editor.connection.alias)


def remove_groups(apps, schema_editor):
    from connector.groups import GROUP_FINANCE, GROUP_INTEGRATION_ADMIN

    apps.get_model("auth", "Group").objects.filter(name__in=[GROUP_FINANCE, GROUP_INTEGRATION_ADMIN]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("connector", "0001_initial"),
        ("audit", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
