"""Adobe Commerce authentication. PaaS: OAuth 1.0a with HMAC-SHA256 (the integration's four values, signature
in the Authorization header). SaaS: Adobe IMS client credentials, the token shared through the cache like
Fusion's."""

from __future__ import annotations

from functools import partial
from typing import Any

import requests
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA256, SIGNATURE_TYPE_AUTH_HEADER
from requests_oauthlib import OAuth1

from connector.models import Connection
from core import endpoints
from core.errors import ConnectorError, PermanentError
from core.http.answers import oauth_token_error
from core.http.tokens import ClientCredentialsAuth

ISSUER = "Adobe IMS"
DEFAULT_LIFETIME = 86399.0  # seconds; IMS tokens last 24 h unless the answer says otherwise


def ims_token_error(response: requests.Response, *, scopes: str) -> ConnectorError | None:
    return oauth_token_error(
        response,
        issuer=ISSUER,
        bad_client="Adobe IMS rejected the Commerce client id or secret",
        bad_scope=(
            f"Adobe IMS refused the scopes {scopes!r}: the credential must be granted them, and they must include "
            "commerce.accs"
        ),
    )


class CommerceOAuth1(OAuth1):
    """OAuth 1.0a, HMAC-SHA256, parameters in the Authorization header. Query parameters are signed; a JSON
    body is not (RFC 5849 signs form bodies only), which is what Commerce expects."""

    def __init__(self, connection: Connection) -> None:
        values = {
            "consumer key": connection.commerce_consumer_key,
            "consumer secret": connection.commerce_consumer_secret,
            "access token": connection.commerce_access_token,
            "access token secret": connection.commerce_access_token_secret,
        }
        missing = [name for name, value in values.items() if not value]
        if missing:
            raise PermanentError(
                f"The Commerce integration's {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing",
                hint="Copy the four values of the activated integration (System > Extensions > Integrations).",
            )
        super().__init__(
            connection.commerce_consumer_key,
            client_secret=connection.commerce_consumer_secret,
            resource_owner_key=connection.commerce_access_token,
            resource_owner_secret=connection.commerce_access_token_secret,
            signature_method=SIGNATURE_HMAC_SHA256,
            signature_type=SIGNATURE_TYPE_AUTH_HEADER,
        )

    def __repr__(self) -> str:
        return "<CommerceOAuth1 HMAC-SHA256>"

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        signed = super().__call__(r)
        # oauthlib hands every header back as bytes; keep them text like every other request's.
        for name, value in list(signed.headers.items()):
            if isinstance(value, bytes):
                signed.headers[name] = value.decode("latin-1")
        return signed


class CommerceImsAuth(ClientCredentialsAuth):
    """Bearer tokens from Adobe IMS `POST /ims/token/v3` (form client_id, client_secret,
    grant_type=client_credentials, scope), kept in the shared cache per connection and credential."""

    def __init__(self, connection: Connection, *, exchanges: list[dict[str, Any]] | None = None) -> None:
        token_url = endpoints.checked_url(
            endpoints.validate_ims_token_url,
            connection.commerce_ims_token_url,
            hint="Fix the IMS token URL of the connection.",
        )
        client_secret = connection.commerce_client_secret or ""
        if not connection.commerce_client_id or not client_secret:
            raise PermanentError(
                "The Commerce IMS client id or secret is missing",
                hint="Enter the OAuth server-to-server credential's client id and secret on the connection.",
            )
        scopes = connection.commerce_scopes or ""
        super().__init__(
            name="Commerce IMS",
            issuer=ISSUER,
            owner=connection.pk or connection.slug,
            token_url=token_url,
            client_id=connection.commerce_client_id,
            client_secret=client_secret,
            scope=scopes,
            error_for=partial(ims_token_error, scopes=scopes),
            default_lifetime=DEFAULT_LIFETIME,
            exchanges=exchanges,
        )

    def token_request(self) -> tuple[dict[str, str], None]:
        # IMS takes the client credentials in the form, and the scope even when it is empty.
        form = {
            "client_id": self.client_id,
            "client_secret": self._client_secret,
            "grant_type": "client_credentials",
            "scope": self.scope,
        }
        return form, None


def commerce_auth_for(
    connection: Connection, *, exchanges: list[dict[str, Any]] | None = None
) -> CommerceOAuth1 | CommerceImsAuth:
    if connection.commerce_deployment == Connection.Deployment.SAAS:
        return CommerceImsAuth(connection, exchanges=exchanges)
    return CommerceOAuth1(connection)
