"""Who may call the mock Commerce.

PaaS (Adobe Commerce on cloud infrastructure, on-premises): an integration's requests to `/rest/<store>/V1/...`
are signed with OAuth 1.0a, HMAC-SHA256, by the integration's consumer key and secret and access token and
secret, in the Authorization header. The signature is checked with oauthlib's server-side functions; every
refusal is Magento's 401 "The consumer isn't authorized to access %resources." naming the resource's ACL (the
actual reason is in the mock's X-Mock-Reason header and /__mock__/state), a timestamp more than 600 seconds
off is refused, and a nonce may be used once.

SaaS (Adobe Commerce as a Cloud Service): a server-to-server client gets a token from Adobe IMS,
POST /ims/token/v3 with client_id, client_secret, `grant_type=client_credentials` and a scope list holding
`commerce.accs`; then `/<tenant>/V1/...` needs `Authorization: Bearer <token>` and `x-api-key: <client_id>`,
checked by the API gateway (errors `{"error_code": "403000", "message": ...}`)."""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

from oauthlib.common import Request as OAuthRequest
from oauthlib.oauth1.rfc5849 import signature

from mocks.server import MockError, MockRequest, MockResponse, MockServer, bearer_token, json_response

OAUTH_TIMESTAMP_WINDOW = 600  # seconds either side of the server's clock
OAUTH_FIELDS = (
    "oauth_consumer_key",
    "oauth_token",
    "oauth_signature_method",
    "oauth_signature",
    "oauth_timestamp",
    "oauth_nonce",
)
NOT_AUTHORIZED = "The consumer isn't authorized to access %resources."


class CommerceAuth(MockServer):
    """The OAuth 1.0a check (PaaS), the IMS token endpoint and the API gateway's checks (SaaS)."""

    _lock: threading.RLock
    consumer_key: str
    consumer_secret: str
    access_token: str
    access_token_secret: str
    client_id: str
    client_secret: str
    nonces: set[tuple[str, str, str]]
    last_oauth_failure: dict[str, str]

    # -- PaaS: OAuth 1.0a ------------------------------------------------------------------------------------
    def _verify_oauth1(self, request: MockRequest, acl: str) -> None:
        params, body, headers = self._oauth_parameters(request, acl)
        oauth = dict(p for p in params if p[0].startswith("oauth_"))
        self._check_oauth_fields(oauth, acl)
        self._check_signature(request, params, oauth["oauth_signature"], body, headers, acl)
        nonce = (oauth["oauth_consumer_key"], oauth["oauth_nonce"], oauth["oauth_timestamp"])
        with self._lock:
            if nonce in self.nonces:
                raise MockError(
                    401,
                    "The nonce is already being used by the consumer with ID %1",
                    parameters=["1"],
                    headers={"X-Mock-Reason": "nonce reused"},
                )
            self.nonces.add(nonce)

    def _oauth_parameters(self, request: MockRequest, acl: str) -> tuple[list[tuple[str, str]], str, dict[str, str]]:
        """The signed parameters (query, form body and Authorization header), the form body and the headers."""
        authorization = request.header("Authorization")
        if not authorization.lower().startswith("oauth "):
            raise self._oauth_refused("no OAuth Authorization header", acl)
        headers = {"Authorization": authorization}
        form = "application/x-www-form-urlencoded" in request.header("Content-Type")
        body = request.body.decode("utf-8", errors="replace") if form else ""
        try:
            params = signature.collect_parameters(
                uri_query=request.raw_query, body=body, headers=headers, exclude_oauth_signature=False
            )
        except ValueError:
            raise self._oauth_refused("the Authorization header cannot be parsed", acl) from None
        return params, body, headers

    def _check_oauth_fields(self, oauth: dict[str, Any], acl: str) -> None:
        """Every oauth_* field present, HMAC-SHA256, the integration's consumer key and access token, a timestamp
        within the window."""
        missing = [n for n in OAUTH_FIELDS if not oauth.get(n)]
        if missing:
            raise self._oauth_refused(f"missing {', '.join(missing)}", acl)
        if oauth["oauth_signature_method"] != "HMAC-SHA256":
            raise MockError(400, "Signature method %1 is not supported", parameters=[oauth["oauth_signature_method"]])
        if not secrets.compare_digest(oauth["oauth_consumer_key"], self.consumer_key):
            raise self._oauth_refused("unknown consumer key", acl)
        if not secrets.compare_digest(oauth["oauth_token"], self.access_token):
            raise self._oauth_refused("unknown access token", acl)
        try:
            timestamp = int(oauth["oauth_timestamp"])
        except ValueError:
            raise self._oauth_refused("oauth_timestamp is not a number", acl) from None
        if abs(time.time() - timestamp) > OAUTH_TIMESTAMP_WINDOW:
            raise self._oauth_refused("oauth_timestamp is out of range", acl)

    def _check_signature(
        self,
        request: MockRequest,
        params: list[tuple[str, str]],
        given: str,
        body: str,
        headers: dict[str, str],
        acl: str,
    ) -> None:
        params_without_signature = [(k, v) for k, v in params if k != "oauth_signature"]
        base_string = signature.signature_base_string(
            request.method,
            signature.base_string_uri(request.url),
            signature.normalize_parameters(params_without_signature),
        )
        checked = OAuthRequest(request.url, request.method, body, headers)
        checked.signature = given
        checked.params = params_without_signature
        if not signature.verify_hmac_sha256(checked, self.consumer_secret, self.access_token_secret):
            raise self._oauth_refused("signature mismatch", acl, base_string)

    def _oauth_refused(self, reason: str, acl: str, base_string: str = "") -> MockError:
        with self._lock:
            self.counters["oauth_failures"] += 1
            self.last_oauth_failure = {"reason": reason, "signature_base_string": base_string}
        # Magento answers every OAuth failure the same way; the reason is for whoever debugs the mock.
        return MockError(401, NOT_AUTHORIZED, parameters={"resources": acl}, headers={"X-Mock-Reason": reason})

    # -- SaaS: IMS and the API gateway -----------------------------------------------------------------------
    def ims_token(self, request: MockRequest) -> MockResponse:
        with self._lock:
            self.counters["token_requests"] += 1
        form = request.form()
        if not secrets.compare_digest(form.get("client_id", ""), self.client_id):
            raise MockError(400, "invalid client_id parameter", code="invalid_client")
        if not secrets.compare_digest(form.get("client_secret", ""), self.client_secret):
            raise MockError(401, "invalid client_secret parameter", code="invalid_client")
        if form.get("grant_type") != "client_credentials":
            raise MockError(400, "invalid grant_type parameter", code="unsupported_grant_type")
        scopes = [s.strip() for s in form.get("scope", "").split(",") if s.strip()]
        if "commerce.accs" not in scopes:
            raise MockError(400, "invalid_scope: commerce.accs is required", code="invalid_scope")
        token, lifetime = self.issue_token()
        return json_response(200, {"access_token": token, "token_type": "bearer", "expires_in": lifetime})

    def _verify_gateway(self, request: MockRequest) -> None:
        """The API key, then the IMS token."""
        api_key = request.header("x-api-key")
        if not api_key:
            raise MockError(403, "Api Key is required", code="403000")
        if not secrets.compare_digest(api_key, self.client_id):
            raise MockError(403, "Api Key is invalid", code="403003")
        token = bearer_token(request)
        if not token or not self.token_valid(token):
            raise MockError(
                401,
                "Oauth token is not valid",
                code="401013",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )

    # -- both ------------------------------------------------------------------------------------------------
    def check_forbidden_for(self, acl: str) -> None:
        if self.faults.forbid:
            raise MockError(403, NOT_AUTHORIZED, parameters={"resources": acl})
