"""The web view's rules as units: binding, tokens and CSRF, the chart's escaping, the token's config key."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import Request

from newsvault.config import load_config
from newsvault.errors import ConfigError
from web.chart import Point, line_chart, thread_charts
from web.security import (
    AUTH_COOKIE,
    SESSION_COOKIE,
    Guard,
    UnsafeBindingError,
    check_binding,
    is_loopback,
)

TOKEN = "a-long-enough-web-token"


def _request(*, cookies: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if cookies:
        raw.append((b"cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()).encode()))
    scope: dict[str, Any] = {"type": "http", "method": "POST", "path": "/trigger", "headers": raw,
                             "scheme": "http", "server": ("127.0.0.1", 8765), "query_string": b""}
    return Request(scope)


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("localhost", True), ("::1", True),
                                                ("[::1]", True), ("0.0.0.0", False), ("192.168.1.5", False),
                                                ("example.org", False)])
def test_only_loopback_is_served_without_a_token(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    if loopback:
        check_binding(host, None)
    else:
        with pytest.raises(UnsafeBindingError, match=f"on {host} without a token"):
            check_binding(host, None)
        check_binding(host, TOKEN)


def test_without_a_token_every_write_is_off() -> None:
    guard = Guard(None)
    session = guard.new_session()
    request = _request(cookies={SESSION_COOKIE: session}, headers={"Authorization": "Bearer anything-at-all"})
    assert not guard.signed_in(request)
    assert "writes are off" in (guard.write_refusal(request, {"csrf": guard.csrf_token(session)}) or "")


def test_a_write_needs_this_sessions_csrf_field_and_its_sign_in_cookie() -> None:
    guard = Guard(TOKEN)
    session, other = guard.new_session(), guard.new_session()
    signed_in = {SESSION_COOKIE: session, AUTH_COOKIE: guard.auth_value(session)}
    good = {"csrf": guard.csrf_token(session)}
    assert guard.write_refusal(_request(cookies=signed_in), good) is None
    assert "CSRF" in (guard.write_refusal(_request(cookies=signed_in), {}) or "")
    assert "CSRF" in (guard.write_refusal(_request(cookies=signed_in), {"csrf": guard.csrf_token(other)}) or "")
    # A sign-in cookie lifted from another session does not carry over.
    stolen = {SESSION_COOKIE: other, AUTH_COOKIE: guard.auth_value(session)}
    assert "sign in" in (guard.write_refusal(_request(cookies=stolen), {"csrf": guard.csrf_token(other)}) or "")
    assert "sign in" in (guard.write_refusal(_request(cookies={SESSION_COOKIE: session}), good) or "")
    foreign = _request(cookies=signed_in, headers={"Origin": "http://evil.example"})
    assert "another origin" in (guard.write_refusal(foreign, good) or "")
    # A fresh server (a new key) ends every earlier session.
    assert Guard(TOKEN).write_refusal(_request(cookies=signed_in), good) is not None


def test_a_bearer_token_must_be_the_token() -> None:
    guard = Guard(TOKEN)
    assert guard.write_refusal(_request(headers={"Authorization": f"Bearer {TOKEN}"}), {}) is None
    assert guard.write_refusal(_request(headers={"Authorization": f"Bearer {TOKEN}x"}), {}) == "wrong token"


def test_chart_points_carry_their_values_and_hostile_text_is_escaped() -> None:
    svg = line_chart([Point("2026-12-01T06:00:00Z", 3, "3"), Point("2026-12-01T07:00:00Z", 9, "<script>x</script>")],
                     title="<img src=x onerror=alert(1)>", y_label="comments")
    assert svg.count("<circle") == 2 and 'data-value="3"' in svg
    assert "<script" not in svg and "<img" not in svg and "&lt;script&gt;" in svg
    counts, activity = thread_charts([
        {"observed_at": "2026-12-01T06:00:00Z", "comment_count": 1, "last_activity_at": "2026-12-01T05:59:00Z"},
        {"observed_at": "2026-12-01T07:00:00Z", "comment_count": None, "last_activity_at": None},
    ])
    assert counts.count("<circle") == 1 and activity.count("<circle") == 1
    assert "no observations" in line_chart([], title="t", y_label="y")


def test_a_short_web_token_is_refused_at_load_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, env={"NEWSVAULT_WEB_TOKEN": "short-secret"})
    assert "web.token" in str(caught.value) and "$NEWSVAULT_WEB_TOKEN" in str(caught.value)
    assert "short-secret" not in str(caught.value)
    config = load_config(None, env={"NEWSVAULT_WEB_TOKEN": TOKEN})
    assert config.web.token is not None and TOKEN not in repr(config)
