import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

from audit.models import AuditEvent
from audit.services import audit_record
from connector.groups import GROUP_FINANCE
from tests.factories import make_connection

pytestmark = pytest.mark.django_db


@pytest.fixture
def event():
    connection = make_connection(slug="acme-us")
    return audit_record(
        action="connection.updated",
        actor="system:apply_connection",
        connection=connection,
        target=connection,
        correlation_id="req-42",
        message="Connection acme-us changed: name",
        data={"fields": ["name"]},
    )


@pytest.fixture
def superuser_client(client):
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    return client


def test_even_a_superuser_cannot_add_change_or_delete_audit_events(superuser_client, event):
    assert superuser_client.get(reverse("admin:audit_auditevent_add")).status_code == 403
    change = reverse("admin:audit_auditevent_change", args=[event.pk])
    page = superuser_client.get(change)
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert superuser_client.post(change, {"message": "rewritten"}).status_code == 403
    delete = reverse("admin:audit_auditevent_delete", args=[event.pk])
    assert superuser_client.post(delete, {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).message == "Connection acme-us changed: name"


def test_the_trail_is_searchable_and_filterable(superuser_client, event):
    audit_record(action="record.received", actor="system:webhook", message="order 000000123 received")
    url = reverse("admin:audit_auditevent_changelist")

    def actions(**params):
        response = superuser_client.get(url, params)
        assert response.status_code == 200
        return {e.action for e in response.context["cl"].result_list}

    assert actions(q="req-42") == {"connection.updated"}  # correlation id
    assert actions(q="000000123") == {"record.received"}  # message
    assert actions(q="system:apply_connection") == {"connection.updated"}  # actor
    assert actions(q=str(event.target_id)) >= {"connection.updated"}  # target id
    assert actions(action="record.received") == {"record.received"}
    assert actions(outcome="success") == {"connection.updated", "record.received"}
    assert actions(connection__id__exact=event.connection_id) == {"connection.updated"}
    midnight = event.occurred_at.replace(hour=0, minute=0, second=0, microsecond=0)
    assert actions(occurred_at__gte=str(midnight)) >= {"connection.updated"}  # the date filter's "Today"
    assert actions(occurred_at__lt=str(midnight)) == set()


def test_finance_can_read_the_trail(client, event):
    user = User.objects.create_user("fiona", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=GROUP_FINANCE))
    client.force_login(user)
    assert client.get(reverse("admin:audit_auditevent_changelist")).status_code == 200
    assert client.get(reverse("admin:audit_auditevent_change", args=[event.pk])).status_code == 200
