"""Who may call the mock Fusion. Fusion's OAuth 2.0 token endpoint is /oauth2/v1/token on the identity domain:
the client id and secret by HTTP Basic (or in the form), `grant_type=client_credentials` and the exact scope;
it answers `access_token`, `token_type: Bearer`, `expires_in`, and OAuth errors (`invalid_client` 401,
`unsupported_grant_type` and `invalid_scope` 400). Every fscmRestApi call then carries that Bearer token or,
for users given as `basic_users`, HTTP Basic; the path must name REST version 11.13.18.05 (or `latest`)."""

from __future__ import annotations

import secrets

from mocks.fusion.query import VERSIONS
from mocks.server import (
    Handler,
    MockError,
    MockRequest,
    MockResponse,
    MockServer,
    basic_credentials,
    bearer_token,
    json_response,
)


class TokenAuth(MockServer):
    """The token endpoint and the check in front of every API call."""

    client_id: str
    client_secret: str
    scope: str
    basic_users: dict[str, str]

    def token(self, request: MockRequest) -> MockResponse:
        with self._lock:
            self.counters["token_requests"] += 1
        credentials = basic_credentials(request)
        if credentials is None:
            form = request.form()
            credentials = (form.get("client_id", ""), form.get("client_secret", "")) if "client_id" in form else None
        if credentials is None or not (
            secrets.compare_digest(credentials[0], self.client_id)
            and secrets.compare_digest(credentials[1], self.client_secret)
        ):
            raise MockError(
                401,
                "Client authentication failed.",
                code="invalid_client",
                headers={"WWW-Authenticate": 'Basic realm="oauth"'},
            )
        form = request.form()
        if form.get("grant_type") != "client_credentials":
            raise MockError(
                400,
                f"Grant type {form.get('grant_type')!r} is not allowed for this client.",
                code="unsupported_grant_type",
            )
        if form.get("scope", "") != self.scope:
            raise MockError(400, "The requested scope is invalid, unknown, or malformed.", code="invalid_scope")
        token, lifetime = self.issue_token()
        return json_response(
            200,
            {"access_token": token, "token_type": "Bearer", "expires_in": lifetime},
            {"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    def _authenticate(self, request: MockRequest) -> None:
        token = bearer_token(request)
        if token:
            if self.token_valid(token):
                return
            with self._lock:
                self.counters["rejected_tokens"] += 1
            raise MockError(
                401,
                "The access token is invalid or has expired.",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        credentials = basic_credentials(request)
        if credentials is not None and self.basic_users:
            expected = self.basic_users.get(credentials[0])
            if expected is not None and secrets.compare_digest(credentials[1], expected):
                return
        raise MockError(
            401,
            "Authentication is required to access this resource.",
            headers={"WWW-Authenticate": 'Basic realm="fusion"'},
        )

    def _api(self, handler: Handler) -> Handler:
        def wrapped(request: MockRequest) -> MockResponse:
            if request.path_args.get("version") not in VERSIONS:
                raise MockError(404, "The resource version is not found; the path must carry 11.13.18.05.")
            self._authenticate(request)
            self.check_forbidden()
            return handler(request)

        return wrapped
