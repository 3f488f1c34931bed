"""One try of one message: an email over SMTP or a POST to a webhook, answered as an Outcome.

Outcome.retry says whether a later try may succeed (a 5xx, 408, 429, a timeout, a refused connection, an
SMTP 4xx); a 4xx answer, a redirect, an SMTP 5xx or a refused address gives up at once. A timeout after
the receiver took the message is a retry too: delivery is at least once, the idempotency key lets the
receiver drop the repeat.
"""

from __future__ import annotations

import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import requests

from backend.config import Config
from backend.notify import signing
from backend.notify.channels import address_refusal

RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}
USER_AGENT = "Keepstone-Notifications/1"


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    status: str  # e.g. "HTTP 200", "SMTP 250", "timeout"
    error: str = ""
    retry: bool = False
    retry_after: float | None = None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: the backoff decides instead


def post_webhook(config: Config, url: str, body: bytes, secret: str | None, key: str, event: str) -> Outcome:
    """POST the body, signed, with the idempotency key; redirects are not followed."""
    refused = address_refusal(url, config)
    if refused:
        return Outcome(False, "refused", refused, retry=False)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        signing.TIMESTAMP: str(timestamp),
        signing.DELIVERY: key,
        signing.IDEMPOTENCY: key,
        signing.EVENT: event,
    }
    if secret:
        headers[signing.SIGNATURE] = signing.signature(secret, timestamp, body)
    try:
        r = requests.post(
            url, data=body, headers=headers, timeout=config.notify_timeout_seconds, allow_redirects=False
        )
    except requests.Timeout:
        return Outcome(False, "timeout", f"no answer within {config.notify_timeout_seconds} s", retry=True)
    except requests.RequestException as e:
        return Outcome(False, "no connection", f"{type(e).__name__}: the receiver could not be reached", True)
    status = f"HTTP {r.status_code}"
    if 200 <= r.status_code < 300:
        return Outcome(True, status)
    text = " ".join(r.text[:200].split())
    if 300 <= r.status_code < 400:
        return Outcome(False, status, "the receiver answered a redirect; redirects are not followed")
    retry = r.status_code in RETRY_STATUSES
    return Outcome(
        False,
        status,
        f"the receiver answered {r.status_code}" + (f": {text}" if text else ""),
        retry=retry,
        retry_after=_retry_after(r.headers.get("Retry-After")) if retry else None,
    )


def send_email(config: Config, recipients: list[str], subject: str, text: str, key: str) -> Outcome:
    """Send one plain-text email through the configured SMTP server (STARTTLS unless turned off)."""
    if not config.smtp_host:
        return Outcome(
            False, "not configured", "email is off on this service: KEEPSTONE_SMTP_HOST is not set"
        )
    msg = EmailMessage()
    msg["From"] = config.smtp_from
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = " ".join(subject.split())  # one line, whatever a plan's name holds
    msg["Date"] = formatdate(usegmt=True)
    # The same Message-ID on every try: mail systems and people can tell a repeat.
    msg["Message-ID"] = make_msgid(idstring=key, domain="keepstone.invalid")
    msg[signing.DELIVERY] = key
    msg.set_content(text)
    try:
        with smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=config.notify_timeout_seconds) as smtp:
            smtp.ehlo()
            if config.smtp_starttls:
                context = ssl.create_default_context(cafile=config.smtp_ca_file or None)
                smtp.starttls(context=context)
                smtp.ehlo()
            if config.smtp_user:
                smtp.login(config.smtp_user, config.smtp_password)
            refused = smtp.send_message(msg)
    except smtplib.SMTPResponseException as e:
        # (auth, sender and data refusals carry a code; 4xx is "try later", 5xx is final)
        reason = (
            e.smtp_error.decode(errors="replace") if isinstance(e.smtp_error, bytes) else str(e.smtp_error)
        )
        return Outcome(
            False, f"SMTP {e.smtp_code}", f"the SMTP server refused: {reason[:200]}", e.smtp_code < 500
        )
    except smtplib.SMTPRecipientsRefused as e:
        return Outcome(False, "SMTP refused", f"every recipient was refused: {', '.join(e.recipients)}")
    except smtplib.SMTPNotSupportedError as e:
        return Outcome(False, "SMTP", f"the SMTP server does not support it: {e}")
    except ssl.SSLError as e:
        return Outcome(False, "TLS", f"STARTTLS failed: {e.reason or e}")
    except (smtplib.SMTPException, OSError) as e:
        return Outcome(
            False, "no connection", f"the SMTP server could not be reached: {type(e).__name__}", True
        )
    if refused:
        return Outcome(True, "SMTP 250", f"refused recipients: {', '.join(refused)}")
    return Outcome(True, "SMTP 250")
