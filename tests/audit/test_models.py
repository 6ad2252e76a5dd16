import pytest

from audit.models import AuditEvent
from audit.services import audit_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def event():
    return audit_record(action="connection.updated", actor="system:test", message="original")


def test_an_audit_event_cannot_be_changed_through_the_instance(event):
    event.message = "rewritten"
    with pytest.raises(PermissionError, match="insert-only"):
        event.save()
    with pytest.raises(PermissionError):
        event.save(update_fields=["message"])
    assert AuditEvent.objects.get(pk=event.pk).message == "original"


def test_an_audit_event_cannot_be_deleted_through_the_instance(event):
    with pytest.raises(PermissionError, match="insert-only"):
        event.delete()
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_audit_events_cannot_be_updated_or_deleted_in_bulk(event):
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(message="rewritten")
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()
    event.message = "rewritten"
    with pytest.raises(PermissionError):
        AuditEvent.objects.bulk_update([event], ["message"])
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.message == "original"
    assert AuditEvent.objects.count() == 1


def test_new_events_are_always_inserted(event):
    second = AuditEvent(action="connection.updated", actor="system:test", message="second")
    second.save()
    assert AuditEvent.objects.count() == 2
    assert second.pk != event.pk
