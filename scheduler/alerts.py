"""Alerts: a job turned degraded, or recovered. Delivered to a webhook (JSON POST) and/or by mail (SMTP).

Configured in the config's ``[alerts]``; the secrets come only from the
environment (``NEWSVAULT_ALERT_WEBHOOK_TOKEN`` is sent as a bearer token,
``NEWSVAULT_ALERT_SMTP_PASSWORD`` logs in to the SMTP server) and are
redacted from every log line (newsvault/redact.py). A failed delivery is
retried (the webhook) or logged (the mail); it never fails the run.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

from newsvault import __version__
from newsvault.config import AlertsConfig

log = logging.getLogger(__name__)

WEBHOOK_TOKEN_ENV = "NEWSVAULT_ALERT_WEBHOOK_TOKEN"
SMTP_PASSWORD_ENV = "NEWSVAULT_ALERT_SMTP_PASSWORD"
# Seconds before the 2nd, 3rd, ... webhook attempt (the last one repeats).
RETRY_DELAYS = (1.0, 3.0, 10.0)


@dataclass(frozen=True)
class Alert:
    """What an alert says (also the webhook's JSON body)."""

    event: str  # "degraded" or "recovered"
    job_id: str
    site: str
    kind: str
    run_id: str
    status: str
    reasons: list[str] = field(default_factory=list)
    finished_at: str | None = None
    figures: dict[str, float] = field(default_factory=dict)

    def subject(self) -> str:
        if self.event == "degraded":
            return f"newsvault: {self.job_id} degraded ({'; '.join(self.reasons[:2])})"
        return f"newsvault: {self.job_id} recovered"

    def text(self) -> str:
        lines = [f"{self.job_id}: run {self.run_id} is {self.status} ({self.event}), finished {self.finished_at}."]
        lines += [f"  - {reason}" for reason in self.reasons]
        return "\n".join(lines) + "\n"


@dataclass
class Delivery:
    webhook: bool | None = None  # None: not configured
    mail: bool | None = None
    attempts: int = 0


def deliver(alert: Alert, config: AlertsConfig, env: dict[str, str] | None = None) -> Delivery:
    """Send ``alert`` wherever ``config`` says; what went through. Never raises: a lost alert is logged."""
    env = dict(os.environ) if env is None else env
    outcome = Delivery()
    if config.webhook_url:
        try:
            outcome.webhook, outcome.attempts = post_webhook(alert, config, env.get(WEBHOOK_TOKEN_ENV))
        except Exception as exc:  # noqa: BLE001 - a bad server or value must not lose the mail or the run
            log.error("alert webhook %s: not delivered (%s)", _where(config.webhook_url), type(exc).__name__)
            outcome.webhook = False
    if config.smtp_host:
        try:
            outcome.mail = send_mail(alert, config, env.get(SMTP_PASSWORD_ENV))
        except Exception as exc:  # noqa: BLE001 - as above
            log.error("alert mail through %s:%d not sent (%s)", config.smtp_host, config.smtp_port, type(exc).__name__)
            outcome.mail = False
    return outcome


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A webhook that redirects is misconfigured: following would re-send the token elsewhere, as a GET."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def _where(url: str) -> str:
    """The webhook's host for log lines: never its path or query, which may carry a token."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"


def post_webhook(alert: Alert, config: AlertsConfig, token: str | None) -> tuple[bool, int]:
    """POST the alert as JSON, retrying on errors and 5xx; (delivered, attempts)."""
    assert config.webhook_url
    body = json.dumps({"source": "newsvault", "version": __version__, **asdict(alert)}).encode("utf-8")
    headers = {"Content-Type": "application/json", "User-Agent": f"newsvault/{__version__}"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    attempts = 0
    for attempt in range(config.webhook_retries + 1):
        attempts += 1
        request = urllib.request.Request(config.webhook_url, data=body, headers=headers, method="POST")
        try:
            with _OPENER.open(request, timeout=config.webhook_timeout_seconds) as response:
                response.read(65536)
            return True, attempts
        except urllib.error.HTTPError as exc:
            problem = f"HTTP {exc.code}"
            if exc.code < 500 and exc.code != 429:  # 3xx (not followed), 4xx
                log.error("alert webhook %s refused the alert: %s", _where(config.webhook_url), problem)
                return False, attempts  # a client error will not improve by retrying
        except (urllib.error.URLError, OSError) as exc:
            problem = type(exc).__name__
        log.warning("alert webhook %s: attempt %d failed (%s)", _where(config.webhook_url), attempts, problem)
        if attempt < config.webhook_retries:
            time.sleep(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)])
    log.error("alert webhook %s: not delivered after %d attempts", _where(config.webhook_url), attempts)
    return False, attempts


def send_mail(alert: Alert, config: AlertsConfig, password: str | None) -> bool:
    assert config.smtp_host
    message = EmailMessage()
    message["From"] = config.mail_from
    message["To"] = ", ".join(config.mail_to)
    message["Subject"] = alert.subject()
    message.set_content(alert.text())
    try:
        with smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=config.smtp_timeout_seconds) as smtp:
            if config.smtp_starttls:
                smtp.starttls()
            # The config refuses smtp_user without smtp_starttls: a password never crosses in clear.
            if config.smtp_user and password:
                smtp.login(config.smtp_user, password)
            smtp.send_message(message)
        return True
    except (smtplib.SMTPException, OSError) as exc:
        log.error("alert mail through %s:%d not sent: %s", config.smtp_host, config.smtp_port, type(exc).__name__)
        return False

