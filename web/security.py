"""What keeps the web view safe: loopback by default, writes behind a token, CSRF, and headers that keep archived content inert.

Archived HTML and scraped text are hostile input. The pages escape every
value (Jinja2 autoescaping) and are served with a Content-Security-Policy
that allows no script at all, so even text that slipped through could not
run. Archived pages themselves are served by :data:`CAPTURE_CSP`: a sandbox
(an opaque origin, no script, no forms) that may load nothing at all, so a
capture neither runs in this origin nor reaches the live web.

Writes (trigger a run, verify a snapshot) need the configured token, given
once on the sign-in form (kept as an HMAC in an HttpOnly, SameSite=Strict
cookie) or as ``Authorization: Bearer <token>``, and, from a browser, the
CSRF field every form carries (an HMAC of the session cookie).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.requests import Request

from newsvault.errors import NewsvaultError

SESSION_COOKIE = "nv_session"
AUTH_COOKIE = "nv_auth"
TOKEN_ENV = "NEWSVAULT_WEB_TOKEN"

# The interface's own pages: no script from anywhere, styles and frames only from here.
PAGE_CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; frame-src 'self'; "
            "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
# An archived page: sandboxed (no script, no forms, an opaque origin), loading nothing, framed only by us.
CAPTURE_CSP = ("sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
               "frame-ancestors 'self'")
_COMMON_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class UnsafeBindingError(NewsvaultError, ValueError):
    """Serving beyond loopback without a token."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None) -> None:
    """Refuse to serve on a non-loopback address without a token: anyone on the network could read the archive."""
    if not is_loopback(host) and not token:
        raise UnsafeBindingError(
            f"refusing to serve the web view on {host} without a token: anyone who can reach it could read "
            f"the archive. Set [web] token in the config or ${TOKEN_ENV}, or bind to 127.0.0.1")


class Guard:
    """Session cookie, CSRF field and write token checks for one running web view."""

    def __init__(self, token: str | None) -> None:
        self.token = token or None
        # Per process: restarting the server ends every session (a sign-in is cheap).
        self._key = secrets.token_bytes(32)

    @property
    def writes_enabled(self) -> bool:
        return self.token is not None

    @staticmethod
    def new_session() -> str:
        return secrets.token_urlsafe(24)

    def _mac(self, key: bytes, purpose: str, session: str) -> str:
        return hmac.new(key, f"{purpose}:{session}".encode(), hashlib.sha256).hexdigest()

    def csrf_token(self, session: str) -> str:
        return self._mac(self._key, "csrf", session)

    def auth_value(self, session: str) -> str:
        """The sign-in cookie's value: bound to the session and the token, and useless without both."""
        assert self.token is not None
        return self._mac(self._key + self.token.encode(), "auth", session)

    def token_matches(self, given: str) -> bool:
        return self.token is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def signed_in(self, request: Request) -> bool:
        """True when the request carries the token (bearer) or the sign-in cookie of its session."""
        if self.token is None:
            return False
        bearer = request.headers.get("authorization", "")
        if bearer.lower().startswith("bearer "):
            return self.token_matches(bearer[7:].strip())
        session = request.cookies.get(SESSION_COOKIE, "")
        cookie = request.cookies.get(AUTH_COOKIE, "")
        return bool(session and cookie) and hmac.compare_digest(cookie, self.auth_value(session))

    def write_refusal(self, request: Request, form: MutableMapping[str, Any]) -> str | None:
        """Why this write may not go ahead, or None when it may."""
        if self.token is None:
            return f"writes are off: no web token is configured (set [web] token or ${TOKEN_ENV})"
        if request.headers.get("authorization", "").lower().startswith("bearer "):
            # No cookie is involved, so no other site can make a browser send this.
            return None if self.signed_in(request) else "wrong token"
        refusal = self.csrf_refusal(request, form)
        if refusal:
            return refusal
        return None if self.signed_in(request) else "sign in with the web token first"

    def csrf_refusal(self, request: Request, form: MutableMapping[str, Any]) -> str | None:
        session = request.cookies.get(SESSION_COOKIE, "")
        given = str(form.get("csrf") or "")
        if not session or not given or not hmac.compare_digest(given, self.csrf_token(session)):
            return "the form's CSRF field does not match this session: reload the page and try again"
        origin = request.headers.get("origin")
        if origin and origin != "null" and origin.rstrip("/") != f"{request.url.scheme}://{request.url.netloc}":
            return f"a form from another origin ({origin}) was refused"
        return None


class SecurityHeaders:
    """Adds the page CSP (unless a response set its own) and the common hardening headers; sets the session cookie."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cookies = _cookie_names(scope)
        new_session = None if SESSION_COOKIE.encode() in cookies else Guard.new_session()
        if new_session:
            # Pages read the session from the request: hand the new one to this request too.
            headers = list(scope["headers"])
            cookie_header = b"; ".join(v for k, v in headers if k == b"cookie")
            headers = [(k, v) for k, v in headers if k != b"cookie"]
            headers.append((b"cookie", (cookie_header + b"; " if cookie_header else b"")
                            + f"{SESSION_COOKIE}={new_session}".encode()))
            scope = dict(scope, headers=headers)

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", PAGE_CSP.encode()))
                headers.extend(h for h in _COMMON_HEADERS if h[0] not in names)
                if new_session:
                    headers.append((b"set-cookie", f"{SESSION_COOKIE}={new_session}; Path=/; HttpOnly; "
                                                   "SameSite=Strict".encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _cookie_names(scope: Scope) -> set[bytes]:
    names = set()
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            for part in value.split(b";"):
                names.add(part.split(b"=", 1)[0].strip())
    return names
