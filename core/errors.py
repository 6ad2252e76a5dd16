"""The error classes every client and step raises. They carry no secrets: URLs and bodies are redacted
when the error is built."""

from __future__ import annotations

from .redaction import excerpt, redact_url


class ConnectorError(Exception):
    """Base class. `hint` tells a finance user or admin what to fix."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str = "",
        url: str = "",
        body: str | bytes | None = None,
        hint: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.method = method
        self.url = redact_url(url) if url else ""
        self.body = excerpt(body, 1000)
        self.hint = hint
        self.retry_after = retry_after

    def __str__(self) -> str:
        where = f" ({self.method} {self.url} -> {self.status})" if self.method else ""
        return f"{self.message}{where}"

    def as_dict(self) -> dict:
        return {
            "error": type(self).__name__,
            "message": self.message,
            "status": self.status,
            "method": self.method,
            "url": self.url,
            "body": self.body,
            "hint": self.hint,
        }


class TransientError(ConnectorError):
    """Worth retrying later: timeouts, connection errors, 429, 500/502/503/504."""


class OutcomeUnknownError(TransientError):
    """A write may or may not have happened (timeout or dropped connection after sending)."""


class PermanentError(ConnectorError):
    """Retrying will not help until someone changes something."""


class AuthError(PermanentError):
    """Credentials refused (401 after a refresh) or a role missing (403)."""


class NotFoundError(PermanentError):
    pass


class ValidationRejectedError(PermanentError):
    """The system refused the content (400/409/422)."""
