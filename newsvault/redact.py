"""Credentials never reach a log line: a formatter that redacts them from every record it formats.

botocore's DEBUG output carries the signed request headers
(``x-amz-security-token: ...``, ``Authorization: AWS4-HMAC-SHA256
Credential=...``), and a value copied from the environment into a message
would carry a secret too. Every handler newsvault installs (the CLI's, hence
a crawl's and the daemon's, and the crawl logs the daemon keeps) formats
through :class:`RedactingFormatter`, which removes those header values and the
literal values of the credential variables, tracebacks included.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping

REDACTED = "[redacted]"
# Environment variables whose values are secrets wherever they appear.
SECRET_ENV_VARS = (
    "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
    "NEWSVAULT_ALERT_WEBHOOK_TOKEN", "NEWSVAULT_ALERT_SMTP_PASSWORD", "NEWSVAULT_WEB_TOKEN",
)
# Shorter than this, a value is too common a string to redact everywhere.
_MIN_SECRET_LENGTH = 8
_HEADER_VALUES = re.compile(
    r"(?i)(x-amz-security-token|x-amz-server-side-encryption-customer-key|authorization|proxy-authorization)"
    r"(['\"]?\s*[:=]\s*['\"]?(?:b['\"])?)([^'\"\r\n}]+)"
)
# The password of a URL (postgresql://user:password@host/db) or of a libpq keyword string (password=...).
_URL_PASSWORD = re.compile(r"(?i)([a-z][a-z0-9+.-]*://[^/\s:@'\"]*:)([^@\s/'\"]+)@")
_KEYWORD_PASSWORD = re.compile(r"(?i)\b(password\s*=\s*)('[^']*'|[^\s'\"]+)")
_QUERY_VALUES = re.compile(r"(?i)(X-Amz-Security-Token|X-Amz-Signature|X-Amz-Credential|Signature)=([^&\s'\",]+)")


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    return [v for name in SECRET_ENV_VARS if len(v := env.get(name, "")) >= _MIN_SECRET_LENGTH]


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with credential header values, signed-URL parameters, URL passwords and ``secrets`` replaced."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _HEADER_VALUES.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
    text = _URL_PASSWORD.sub(lambda m: m.group(1) + REDACTED + "@", text)
    text = _KEYWORD_PASSWORD.sub(lambda m: m.group(1) + REDACTED, text)
    return _QUERY_VALUES.sub(lambda m: f"{m.group(1)}={REDACTED}", text)


class RedactingFormatter(logging.Formatter):
    """Formats like ``inner`` (or a plain Formatter), then redacts the result."""

    def __init__(self, inner: logging.Formatter | None = None, secrets: Iterable[str] | None = None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()
        self.secrets = list(secret_values() if secrets is None else secrets)

    def format(self, record: logging.LogRecord) -> str:
        return redact(self.inner.format(record), self.secrets)


def redact_handlers(logger: logging.Logger | None = None) -> None:
    """Make every handler of ``logger`` (default: the root logger) format through a RedactingFormatter."""
    for handler in (logger or logging.getLogger()).handlers:
        if not isinstance(handler.formatter, RedactingFormatter):
            handler.setFormatter(RedactingFormatter(handler.formatter))
