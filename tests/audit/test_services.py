import pytest
from django.contrib.auth.models import User

from audit.models import AuditEvent
from audit.services import MAX_DATA_CHARS, audit_record
from tests.factories import make_connection

pytestmark = pytest.mark.django_db


def test_the_writer_redacts_data_and_message():
    event = audit_record(
        action="fusion.token_refused",
        actor="system:worker",
        outcome=AuditEvent.Outcome.FAILURE,
        message="token call failed: client_secret=cs-9 refused",
        data={"request": {"headers": {"Authorization": "Basic dXNlcjpwdw=="}, "client_secret": "cs-9"}, "status": 401},
    )
    stored = AuditEvent.objects.get(pk=event.pk)
    assert "cs-9" not in stored.message and "cs-9" not in str(stored.data)
    assert "dXNlcjpwdw==" not in str(stored.data)
    assert stored.data["status"] == 401


def test_the_actor_is_a_user_or_a_system_name():
    user = User.objects.create_user("fiona")
    by_user = audit_record(action="record.replayed", actor=user)
    by_task = audit_record(action="record.retry_scheduled", actor="system:worker")
    assert (by_user.actor, by_user.user_id) == ("fiona", user.pk)
    assert (by_task.actor, by_task.user_id) == ("system:worker", None)


def test_the_target_and_connection_are_recorded():
    connection = make_connection()
    event = audit_record(action="connection.updated", connection=connection, target=connection, correlation_id="c-1")
    assert event.connection_id == connection.pk
    assert (event.target_type, event.target_id, event.correlation_id) == (
        "connector.connection",
        str(connection.pk),
        "c-1",
    )


def test_oversized_data_is_truncated_not_refused():
    event = audit_record(action="fusion.response", data={"body": "x" * (MAX_DATA_CHARS * 2)})
    assert event.data["truncated"] is True
    assert len(event.data["excerpt"]) == MAX_DATA_CHARS
