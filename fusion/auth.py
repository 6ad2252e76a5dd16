"""Fusion authentication: OAuth 2.0 client credentials against the pod's identity domain (the token shared by
every worker through the cache), or Basic auth."""

from __future__ import annotations

from functools import partial
from typing import Any

import requests
from requests.auth import AuthBase, HTTPBasicAuth

from connector.models import Connection
from core import endpoints
from core.errors import ConnectorError, PermanentError
from core.http.answers import oauth_token_error
from core.http.tokens import ClientCredentialsAuth

ISSUER = "The Fusion identity domain"
DEFAULT_LIFETIME = 3600.0  # seconds: an identity domain's access tokens last an hour unless it says otherwise


def fusion_token_error(response: requests.Response, *, scope: str) -> ConnectorError | None:
    """Errors of the identity domain's token endpoint, in words an admin can act on."""
    return oauth_token_error(
        response,
        issuer=ISSUER,
        bad_client="Fusion rejected the client id or secret",
        bad_scope=(
            f"The identity domain refused the scope {scope!r}: copy the exact scope from the Fusion "
            "application's Resources tab of the confidential application"
        ),
    )


class FusionOAuth2(ClientCredentialsAuth):
    """Bearer tokens from `POST <identity domain>/oauth2/v1/token` (HTTP Basic client id and secret, form
    `grant_type=client_credentials&scope=...`), kept in the shared cache per connection and credential."""

    def __init__(self, connection: Connection, *, exchanges: list[dict[str, Any]] | None = None) -> None:
        token_url = endpoints.checked_url(
            endpoints.validate_identity_token_url,
            connection.fusion_token_url,
            hint="Fix the identity domain token URL of the connection.",
        )
        client_secret = connection.fusion_client_secret or ""
        if not connection.fusion_client_id or not client_secret:
            raise PermanentError(
                "The Fusion OAuth client id or secret is missing",
                hint="Enter the confidential application's client id and secret on the connection.",
            )
        scope = connection.fusion_scope or ""
        super().__init__(
            name="Fusion",
            issuer=ISSUER,
            owner=connection.pk or connection.slug,
            token_url=token_url,
            client_id=connection.fusion_client_id,
            client_secret=client_secret,
            scope=scope,
            error_for=partial(fusion_token_error, scope=scope),
            default_lifetime=DEFAULT_LIFETIME,
            exchanges=exchanges,
        )

    def token_request(self) -> tuple[dict[str, str], HTTPBasicAuth]:
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        return form, HTTPBasicAuth(self.client_id, self._client_secret)


class FusionBasicAuth(HTTPBasicAuth):
    """Username and password on every call (Fusion's alternative to OAuth)."""

    def __repr__(self) -> str:
        return f"<FusionBasicAuth {self.username!r}>"


def fusion_auth_for(connection: Connection, *, exchanges: list[dict[str, Any]] | None = None) -> AuthBase:
    if connection.fusion_auth == Connection.FusionAuth.BASIC:
        if not connection.fusion_username or not connection.fusion_password:
            raise PermanentError(
                "The Fusion username or password is missing",
                hint="Enter the integration user's username and password on the connection.",
            )
        return FusionBasicAuth(connection.fusion_username, connection.fusion_password)
    return FusionOAuth2(connection, exchanges=exchanges)
