"""DESIGN invariant 6: only validated hosts are called."""

import pytest
from django.core.exceptions import ValidationError

from commerce.client import CommerceClient
from connector.models import Connection
from core.endpoints import (
    checked_url,
    validate_commerce_paas_base_url,
    validate_commerce_saas_base_url,
    validate_fusion_base_url,
    validate_identity_token_url,
    validate_ims_token_url,
)
from core.errors import PermanentError
from fusion.client import FusionClient
from tests.factories import make_connection


@pytest.mark.parametrize(
    "url",
    [
        "https://acme.fa.us2.oraclecloud.com",
        "https://acme.fa.ocs.oraclecloud.com",
        "https://acme-test.fa.em2.oraclecloud.com/",
        "https://ACME.fa.us2.oraclecloud.com",
    ],
)
def test_fusion_base_url_accepts_real_pods(url):
    assert validate_fusion_base_url(url) == url.rstrip("/")


@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://acme.fa.us2.oraclecloud.com", "only https://"),
        ("https://10.0.0.5", "IP address"),
        ("https://[2001:db8::1]", "IP address"),
        ("https://acme.example.com", "not a valid host"),
        ("https://oraclecloud.com", "not a valid host"),
        ("https://acme.fa.us2.oraclecloud.com.evil.example", "not a valid host"),
        ("https://pod.fa.us2.oraclecloud.com@evil.example", "credentials"),
        ("https://user:pw@acme.fa.us2.oraclecloud.com", "credentials"),
        ("https://acme.fa.us2.oraclecloud.com:8443", "default HTTPS port"),
        ("https://acme.fa.us2.oraclecloud.com/fscmRestApi", "without a path"),
        ("https://acme.fa.us2.oraclecloud.com?x=1", "query"),
        ("https://acme.fa.us2.oraclecloud.com\\@evil.example", "backslashes"),
        ("ftp://acme.fa.us2.oraclecloud.com", "only https://"),
        ("", "required"),
    ],
)
def test_fusion_base_url_refuses_other_hosts(url, reason):
    with pytest.raises(ValidationError) as exc:
        validate_fusion_base_url(url)
    assert reason in " ".join(exc.value.messages)


def test_identity_domain_token_url_is_accepted_and_lookalikes_are_not():
    good = "https://idcs-0123abcd.identity.oraclecloud.com/oauth2/v1/token"
    assert validate_identity_token_url(good) == good
    for bad in (
        "http://idcs-0123abcd.identity.oraclecloud.com/oauth2/v1/token",
        "https://idcs-0123abcd.identity.oraclecloud.com.evil.example/oauth2/v1/token",
        "https://idcs-0123abcd.identity.oraclecloud.com@evil.example/oauth2/v1/token",
        "https://identity.oraclecloud.com/oauth2/v1/token",
        "https://192.0.2.10/oauth2/v1/token",
    ):
        with pytest.raises(ValidationError):
            validate_identity_token_url(bad)


def test_commerce_saas_base_url_needs_the_adobe_api_host_and_a_tenant():
    good = "https://na1.api.commerce.adobe.com/AbC123tenant"
    assert validate_commerce_saas_base_url(good) == good
    for bad in (
        "https://na1.api.commerce.adobe.com",  # no tenant
        "https://na1.api.commerce.adobe.com.evil.example/tenant",
        "https://na1.api.commerce.adobe.com@evil.example/tenant",
        "http://na1.api.commerce.adobe.com/tenant",
        "https://shop.example.com/tenant",
    ):
        with pytest.raises(ValidationError):
            validate_commerce_saas_base_url(bad)


def test_ims_token_url_must_be_an_adobe_ims_host():
    assert validate_ims_token_url("https://ims-na1.adobelogin.com/ims/token/v3")
    for bad in ("https://ims-na1.adobelogin.com.evil.example/ims/token/v3", "https://evil.example/ims/token/v3"):
        with pytest.raises(ValidationError):
            validate_ims_token_url(bad)


def test_commerce_paas_base_url_is_any_https_dns_name():
    assert validate_commerce_paas_base_url("https://shop.example.com/") == "https://shop.example.com"
    for bad in ("http://shop.example.com", "https://203.0.113.9", "https://localhost", "https://u:p@shop.example.com"):
        with pytest.raises(ValidationError):
            validate_commerce_paas_base_url(bad)


@pytest.mark.parametrize(
    "url",
    [
        "https://127.1",  # short IPv4
        "https://0177.0.0.1",  # octal
        "https://0x7f.0.0.1",  # hex
        "https://0x7f000001",
        "https://169.254.43518",  # the last part holding two bytes
        "https://2130706433",  # 127.0.0.1 as one integer
        "https://127.0.0.1.",  # trailing dot
        "https://10.0.0.5",
        "https://[::1]",
        "https://[::ffff:127.0.0.1]",  # IPv4-mapped IPv6
        "https://[::ffff:7f00:1]",
        "https://[fe80::1]",
        "https://shop.example.0x1f",  # a name ending in a number is read as an address
    ],
)
def test_commerce_paas_base_url_refuses_ip_addresses_in_every_notation(url, settings):
    settings.CONNECTOR_ALLOW_LOCAL_ENDPOINTS = False
    with pytest.raises(ValidationError, match="IP address"):
        validate_commerce_paas_base_url(url)


@pytest.mark.parametrize(
    "url", ["https://localhost", "https://localhost.", "https://shop.localhost", "https://a.b.localhost."]
)
def test_commerce_paas_base_url_refuses_localhost_names(url, settings):
    settings.CONNECTOR_ALLOW_LOCAL_ENDPOINTS = False
    with pytest.raises(ValidationError, match="this machine"):
        validate_commerce_paas_base_url(url)


def test_local_endpoints_admit_only_the_plain_loopback_names(allow_local_endpoints):
    assert validate_commerce_paas_base_url("http://127.0.0.1:8802") == "http://127.0.0.1:8802"
    for url in ("http://127.1:8802", "https://0x7f.0.0.1", "http://localhost.:8802", "https://[::ffff:127.0.0.1]"):
        with pytest.raises(ValidationError):
            validate_commerce_paas_base_url(url)


@pytest.mark.parametrize(
    "validator",
    [validate_fusion_base_url, validate_identity_token_url, validate_commerce_paas_base_url, validate_ims_token_url],
)
def test_loopback_http_is_refused_unless_local_endpoints_are_allowed(validator, settings):
    settings.CONNECTOR_ALLOW_LOCAL_ENDPOINTS = False
    with pytest.raises(ValidationError):
        validator("http://127.0.0.1:8081")
    settings.CONNECTOR_ALLOW_LOCAL_ENDPOINTS = True
    assert validator("http://127.0.0.1:8081") == "http://127.0.0.1:8081"
    assert validator("http://localhost:9000/") == "http://localhost:9000"


def test_allowing_local_endpoints_does_not_admit_other_plain_http_hosts(allow_local_endpoints):
    for url in ("http://10.0.0.5", "http://acme.fa.us2.oraclecloud.com", "http://127.0.0.1.evil.example"):
        with pytest.raises(ValidationError):
            validate_fusion_base_url(url)


@pytest.mark.django_db
def test_connection_validation_names_the_field_in_plain_words():
    connection = make_connection()
    connection.fusion_base_url = "https://pod.fa.us2.oraclecloud.com.evil.example"
    connection.commerce_deployment = Connection.Deployment.SAAS
    connection.commerce_base_url = "https://shop.example.com"
    connection.commerce_client_id = "ims-client"
    with pytest.raises(ValidationError) as exc:
        connection.full_clean()
    errors = exc.value.message_dict
    assert "is not a valid host" in errors["fusion_base_url"][0]
    assert "commerce_base_url" in errors


def test_checked_url_returns_the_validated_url_or_a_permanent_error_with_the_hint():
    assert checked_url(validate_fusion_base_url, "https://acme.fa.us2.oraclecloud.com/", hint="h") == (
        "https://acme.fa.us2.oraclecloud.com"
    )
    with pytest.raises(PermanentError, match="is not a valid host") as caught:
        checked_url(validate_fusion_base_url, "https://evil.example.com", hint="Fix the Fusion base URL.")
    assert caught.value.hint == "Fix the Fusion base URL."


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "build", "hint"),
    [
        ("fusion_base_url", FusionClient.for_connection, "Fix the Fusion base URL of the connection."),
        ("fusion_token_url", FusionClient.for_connection, "Fix the identity domain token URL of the connection."),
        ("commerce_base_url", CommerceClient.for_connection, "Fix the Commerce base URL of the connection."),
        ("commerce_ims_token_url", CommerceClient.for_connection, "Fix the IMS token URL of the connection."),
    ],
)
def test_a_client_is_not_built_on_an_unvalidated_url_and_says_which_to_fix(field, build, hint):
    connection = make_connection(
        commerce_deployment=Connection.Deployment.SAAS,
        commerce_base_url="https://na1.api.commerce.adobe.com/Tn4nt1d",
        commerce_client_id="ims-client-id",
        commerce_client_secret="ims-client-secret-value",
    )
    setattr(connection, field, "https://evil.example.com/path")
    with pytest.raises(PermanentError) as caught:
        build(connection)
    assert caught.value.hint == hint
