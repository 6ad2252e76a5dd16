"""Log filter and JSON formatter: every record passes redact() before it reaches a handler."""

import json
import logging
from typing import Any

from .redaction import redact, redact_text, scrub_secrets

_STD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_EXCEPTION_FORMATTER = logging.Formatter()


def _clean_text(text: str) -> str:
    return scrub_secrets(redact_text(text))


def _clean(value: Any) -> Any:
    """redact() for an extra attribute, then the registered secret values out of every string in it."""
    if isinstance(value, str):
        return scrub_secrets(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


class RedactingFilter(logging.Filter):
    """Masks credentials by their shape (core.redaction.redact_text) and the known secret values of the
    connections this process has built clients for (core.redaction.secrets_register), in the message, its
    arguments, extra attributes and a logged exception's traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            try:
                record.msg = record.getMessage()
            except (TypeError, ValueError):
                record.msg = str(record.msg)
            record.args = None
        record.msg = _clean_text(str(record.msg))
        for name, value in list(vars(record).items()):
            if name not in _STD_ATTRS:
                setattr(record, name, _clean(redact({name: value})[name]))
        if record.exc_info and not record.exc_text:
            # Formatters use exc_text when it is set: format the traceback here, cleaned, once.
            record.exc_text = _EXCEPTION_FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = _clean_text(record.exc_text)
        if record.stack_info:
            record.stack_info = _clean_text(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STD_ATTRS:
                data[name] = value
        if record.exc_text:
            data["exc"] = _clean_text(record.exc_text)
        elif record.exc_info:
            data["exc"] = _clean_text(self.formatException(record.exc_info))
        return json.dumps(data, default=str)
