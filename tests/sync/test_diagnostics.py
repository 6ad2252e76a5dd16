"""Test connection against the mock systems on loopback: OK per side, or a distinct, correct message in plain words
for each failure, never a secret, always audited."""

import io
import socket

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from connector.models import SECRET_FIELDS, Connection
from mocks.fusion import MockFusion
from sync.diagnostics import connection_test
from tests import mockservers
from tests.mockservers import mock_connection, running

fusion_mock = mockservers.fusion_mock
commerce_mock = mockservers.commerce_mock

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("allow_local_endpoints")]


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def secrets_of(connection):
    return [getattr(connection, name) for name in SECRET_FIELDS if getattr(connection, name)]


def assert_no_secret(connection, *texts):
    for secret in secrets_of(connection):
        for text in texts:
            assert secret not in text


def assert_audited_as_shown(result):
    """The audit row says exactly what the user was shown (redaction must not garble the plain words)."""
    event = AuditEvent.objects.filter(action="connection.tested").order_by("-id").first()
    assert event.data["fusion"] == result.fusion.as_dict()
    assert event.data["commerce"] == result.commerce.as_dict()
    assert event.message == result.summary()


def test_both_sides_ok_is_audited_as_success(fusion_mock, commerce_mock):
    connection = mock_connection(fusion_mock, commerce_mock)
    result = connection_test(connection=connection, actor="tester")
    assert result.ok, result.summary()
    assert result.fusion.message == (
        "OK: got a token from the identity domain and read receivablesInvoices. The ledger Vision Operations (USA) "
        "is in USD."
    )
    assert result.fusion.ledger_currency == "USD"
    assert result.commerce.message.startswith(
        "OK: Commerce accepted the OAuth1 (HMAC-SHA256) signature and orders were read"
    )
    assert fusion_mock.state()["token_requests"] == 1
    assert fusion_mock.state()["requests_by_path"]["/fscmRestApi/resources/11.13.18.05/receivablesInvoices"] == 1
    assert commerce_mock.state()["requests_by_path"]["/rest/default/V1/orders"] == 1
    event = AuditEvent.objects.get(action="connection.tested")
    assert event.outcome == AuditEvent.Outcome.SUCCESS and event.actor == "tester"
    assert event.connection_id == connection.pk
    assert event.data["fusion"]["ok"] is True and event.data["commerce"]["message"] == result.commerce.message
    assert event.data["exchanges"]["fusion"]  # redacted excerpts of the calls
    assert_audited_as_shown(result)
    assert_no_secret(connection, str(event.data), event.message)


def test_a_fresh_token_is_fetched_even_when_one_is_cached(fusion_mock, commerce_mock):
    connection = mock_connection(fusion_mock, commerce_mock)
    connection_test(connection=connection, actor="tester")
    connection_test(connection=connection, actor="tester")
    assert fusion_mock.state()["token_requests"] == 2


def test_a_bad_fusion_client_secret(fusion_mock, commerce_mock):
    connection = mock_connection(fusion_mock, commerce_mock, fusion_client_secret="not-the-secret-at-all")
    result = connection_test(connection=connection, actor="tester")
    assert not result.ok and result.commerce.ok
    assert result.fusion.problem == "bad_credentials"
    assert "refused the client id or client secret (invalid_client)" in result.fusion.message
    event = AuditEvent.objects.get(action="connection.tested")
    assert event.outcome == AuditEvent.Outcome.FAILURE
    assert event.data["fusion"]["problem"] == "bad_credentials"
    assert_no_secret(connection, result.fusion.message, str(event.data), event.message)


def test_a_wrong_fusion_scope(fusion_mock, commerce_mock):
    connection = mock_connection(fusion_mock, commerce_mock, fusion_scope="urn:opc:resource:fa:instanceid=42")
    result = connection_test(connection=connection, actor="tester")
    assert result.fusion.problem == "bad_scope"
    assert "refused the scope 'urn:opc:resource:fa:instanceid=42' (invalid_scope)" in result.fusion.message
    assert "Resources tab" in result.fusion.message


def test_an_unreachable_fusion_host(commerce_mock):
    port = closed_port()
    connection = mock_connection(
        None,
        commerce_mock,
        fusion_base_url=f"http://127.0.0.1:{port}",
        fusion_token_url=f"http://127.0.0.1:{port}/oauth2/v1/token",
        fusion_client_id="client",
        fusion_client_secret="secret-value-1",
        fusion_scope="urn:opc:resource:consumer::all",
    )
    result = connection_test(connection=connection, actor="tester")
    assert result.fusion.problem == "unreachable"
    assert result.fusion.message.startswith(f"Host unreachable: nothing accepted a connection at 127.0.0.1:{port}")


def test_a_tls_error_on_the_fusion_api(fusion_mock, commerce_mock):
    port = fusion_mock.port
    connection = mock_connection(fusion_mock, commerce_mock, fusion_base_url=f"https://127.0.0.1:{port}")
    result = connection_test(connection=connection, actor="tester")
    assert result.fusion.problem == "tls"
    assert result.fusion.message.startswith(f"TLS error: no secure connection could be made to 127.0.0.1:{port}")


def test_a_tls_error_on_the_commerce_store(fusion_mock, commerce_mock):
    connection = mock_connection(
        fusion_mock, commerce_mock, commerce_base_url=f"https://127.0.0.1:{commerce_mock.port}"
    )
    result = connection_test(connection=connection, actor="tester")
    assert result.fusion.ok and result.commerce.problem == "tls"


def test_a_fusion_user_without_the_role(fusion_mock, commerce_mock):
    fusion_mock.set_faults(forbid=True)
    result = connection_test(connection=mock_connection(fusion_mock, commerce_mock), actor="tester")
    assert result.fusion.problem == "forbidden"
    assert result.fusion.message.startswith("Signed in, but the Fusion user lacks a role")
    assert "AR_CREATE_RECEIVABLES_INVOICE_PRIV" in result.fusion.message


def test_fusion_basic_auth_ok_and_refused(commerce_mock):
    with running(MockFusion(basic_users={"integration.user": "basic-pass-1"})) as fusion:
        base = {"fusion_auth": Connection.FusionAuth.BASIC, "fusion_username": "integration.user"}
        good = mock_connection(fusion, commerce_mock, fusion_password="basic-pass-1", **base)
        assert connection_test(connection=good, actor="tester").fusion.message == (
            "OK: signed in with the username and password and read receivablesInvoices. The ledger Vision "
            "Operations (USA) is in USD."
        )
        bad = mock_connection(fusion, commerce_mock, fusion_password="basic-pass-2", **base)
        result = connection_test(connection=bad, actor="tester")
        assert result.fusion.problem == "bad_credentials"
        assert result.fusion.message.startswith("Fusion refused the username or password (HTTP 401)")
        assert_audited_as_shown(result)
        assert fusion.state()["token_requests"] == 0


def test_commerce_refuses_the_oauth_signature(fusion_mock, commerce_mock):
    connection = mock_connection(fusion_mock, commerce_mock, commerce_access_token_secret="a-wrong-token-secret")
    result = connection_test(connection=connection, actor="tester")
    assert result.fusion.ok and result.commerce.problem == "signature_refused"
    assert result.commerce.message.startswith("Commerce refused the OAuth1 signature (HTTP 401)")
    assert commerce_mock.state()["last_oauth_failure"]["reason"] == "signature mismatch"
    assert_no_secret(connection, result.commerce.message)


def test_a_commerce_integration_without_sales_access(fusion_mock, commerce_mock):
    commerce_mock.set_faults(forbid=True)
    result = connection_test(connection=mock_connection(fusion_mock, commerce_mock), actor="tester")
    assert result.commerce.problem == "forbidden"
    assert "Magento_Sales::actions_view" in result.commerce.message


def test_saas_ok_through_ims(fusion_mock, commerce_mock):
    connection = mock_connection(fusion_mock, commerce_mock, saas=True)
    result = connection_test(connection=connection, actor="tester")
    assert result.ok, result.summary()
    assert result.commerce.message.startswith("OK: got a token from Adobe IMS and orders were read")
    assert commerce_mock.state()["token_requests"] == 1


def test_saas_ims_refuses_the_client(fusion_mock, commerce_mock):
    connection = mock_connection(fusion_mock, commerce_mock, saas=True, commerce_client_secret="wrong-ims-secret")
    result = connection_test(connection=connection, actor="tester")
    assert result.commerce.problem == "bad_credentials"
    assert result.commerce.message.startswith("Adobe IMS refused the client id or client secret (invalid_client)")
    assert_no_secret(connection, result.commerce.message)


def test_saas_ims_refuses_the_scopes(fusion_mock, commerce_mock):
    connection = mock_connection(fusion_mock, commerce_mock, saas=True, commerce_scopes="openid,AdobeID")
    result = connection_test(connection=connection, actor="tester")
    assert result.commerce.problem == "bad_scope"
    assert "must include commerce.accs" in result.commerce.message


def test_a_url_the_connector_may_not_call_is_reported_without_calling_it(fusion_mock, commerce_mock, settings):
    connection = mock_connection(fusion_mock, commerce_mock)
    settings.CONNECTOR_ALLOW_LOCAL_ENDPOINTS = False
    result = connection_test(connection=connection, actor="tester")
    assert result.fusion.problem == "misconfigured" and result.commerce.problem == "misconfigured"
    assert "Fusion base URL" in result.fusion.message
    assert fusion_mock.state()["requests"] == 0 and commerce_mock.state()["requests"] == 0


def test_every_failure_has_its_own_message(fusion_mock, commerce_mock):
    port = closed_port()
    cases = {
        "bad secret": {"fusion_client_secret": "wrong-fusion-secret"},
        "wrong scope": {"fusion_scope": "urn:wrong"},
        "unreachable": {
            "fusion_base_url": f"http://127.0.0.1:{port}",
            "fusion_token_url": f"http://127.0.0.1:{port}/oauth2/v1/token",
        },
        "tls": {"fusion_base_url": f"https://127.0.0.1:{fusion_mock.port}"},
        "signature": {"commerce_consumer_secret": "wrong-consumer-secret"},
    }
    messages = {}
    for name, overrides in cases.items():
        result = connection_test(connection=mock_connection(fusion_mock, commerce_mock, **overrides), actor="tester")
        assert_audited_as_shown(result)
        failed = [side for side in result.sides if not side.ok]
        assert len(failed) == 1, (name, result.summary())
        messages[name] = failed[0].message
    fusion_mock.set_faults(forbid=True)
    messages["forbidden"] = connection_test(
        connection=mock_connection(fusion_mock, commerce_mock), actor="tester"
    ).fusion.message
    fusion_mock.set_faults(forbid=False)
    messages["ims"] = connection_test(
        connection=mock_connection(fusion_mock, commerce_mock, saas=True, commerce_client_secret="wrong-ims"),
        actor="tester",
    ).commerce.message
    assert len(set(messages.values())) == len(messages), messages


def test_the_command_prints_each_side_and_fails_with_exit_status_1(fusion_mock, commerce_mock):
    good = mock_connection(fusion_mock, commerce_mock)
    out = io.StringIO()
    call_command("test_connection", good.slug, stdout=out, no_color=True)
    text = out.getvalue()
    assert "Fusion:" in text and "Commerce:" in text and text.count("OK") >= 2
    bad = mock_connection(fusion_mock, commerce_mock, commerce_consumer_secret="wrong-consumer-secret")
    out = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("test_connection", bad.slug, stdout=out, no_color=True)
    assert raised.value.returncode == 1
    assert "FAILED  Commerce refused the OAuth1 signature" in out.getvalue()
    assert AuditEvent.objects.filter(action="connection.tested", actor="system:test_connection").count() == 2


def test_the_command_refuses_an_unknown_slug():
    with pytest.raises(CommandError, match="No connection with the slug 'nope'"):
        call_command("test_connection", "nope")


@pytest.mark.parametrize(
    ("overrides", "expected", "currency"),
    [
        (
            {"currency": "EUR"},
            " The ledger Vision Operations (USA) is in USD. The connection's currency is EUR: set it to USD, the "
            "currency documents are converted to.",
            "USD",
        ),
        ({"ledger_id": ""}, " No ledger id is set, so the ledger currency was not read from Fusion.", ""),
        (
            {"ledger_id": "999"},
            " The ledger 999 could not be read from ledgersLOV (HTTP 404); the connection's currency USD is taken as "
            "the ledger currency.",
            "",
        ),
    ],
)
def test_test_connection_reads_the_ledger_currency_and_says_when_the_connection_disagrees(
    fusion_mock, commerce_mock, overrides, expected, currency
):
    connection = mock_connection(fusion_mock, commerce_mock, **overrides)
    result = connection_test(connection=connection, actor="tester")
    assert result.ok, result.summary()
    assert result.fusion.message.endswith(expected)
    assert result.fusion.ledger_currency == currency
    assert_audited_as_shown(result)
