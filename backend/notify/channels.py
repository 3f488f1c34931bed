"""The service's rules for a channel: recipients, the webhook URLs it may contact, the sealed secret.

Everything here is decided from the input and the configuration alone (no DNS) when a channel is saved;
`address_refusal` repeats the address check against what the name resolves to at each delivery, so a name
that later points at a private address is refused then.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import socket
from urllib.parse import urlsplit

from backend import vault
from backend.config import Config
from backend.storages import _hosts, _private_or_odd

KINDS = ("email", "webhook")
FORMATS = ("json", "slack", "teams")
MAX_RECIPIENTS = 20
# An addr-spec without the rare forms (quoted local parts, IP literals); never a space, comma or newline.
EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@(?=.{1,253}$)[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+$"
)


class ChannelRefused(Exception):
    """A channel's setting breaks the service's rules; `field` names it (e.g. url)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def check_email(address: str) -> str | None:
    """Why an email address is refused, or None."""
    if not EMAIL.match(address):
        return f"{address[:80]!r} is not an email address (name@example.com)"
    return None


def check_webhook_url(url: str, config: Config) -> str:
    """The URL if the service may POST to it, else ChannelRefused("url", why)."""
    if len(url) > 2000:
        raise ChannelRefused("url", "at most 2000 characters")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise ChannelRefused("url", "no spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        raise ChannelRefused("url", "not a URL with a valid host and port") from None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host:
        raise ChannelRefused("url", "a webhook is an https:// URL with a host")
    if "@" in parts.netloc:
        raise ChannelRefused("url", "no user or password in the URL")
    if parts.fragment:
        raise ChannelRefused("url", "a webhook URL has no #fragment")
    allowed = _hosts(config.webhook_hosts)
    listed = host in _hosts(config.webhook_http_hosts)
    if allowed and host not in allowed and not listed:
        raise ChannelRefused(
            "url", f"host {host} is not one this service may post to (KEEPSTONE_WEBHOOK_HOSTS)"
        )
    if scheme == "http" and not listed:
        raise ChannelRefused(
            "url", "use https: plain http is allowed only for the hosts in KEEPSTONE_WEBHOOK_HTTP_HOSTS"
        )
    if not listed and _private_or_odd(host):
        raise ChannelRefused(
            "url",
            f"{host} is a loopback, private or unqualified address; the operator must list it in "
            "KEEPSTONE_WEBHOOK_HTTP_HOSTS",
        )
    return url


def masked_url(url: str) -> str:
    """A webhook URL as answers show it: scheme, host and the first path segment. The rest of a Slack or
    Teams URL (and any query) is the credential itself, so it is never sent back, not even to admins."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    path = "/" + segments[0] if segments else ""
    if len(segments) > 1:
        path += "/…"
    return f"{parts.scheme}://{parts.netloc}{path}" + ("?…" if parts.query else "")


def address_refusal(url: str, config: Config) -> str | None:
    """At delivery: why this URL may not be contacted now (its name resolves to a private address), or None."""
    host = (urlsplit(url).hostname or "").lower()
    if host in _hosts(config.webhook_http_hosts):
        return None
    allowed = _hosts(config.webhook_hosts)
    if allowed and host not in allowed:  # the list changed since the channel was saved
        return f"host {host} is not one this service may post to (KEEPSTONE_WEBHOOK_HOSTS)"
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as e:
        return f"the name {host} does not resolve: {e.strerror or e}"
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if not ip.is_global or ip.is_multicast:
            return f"{host} resolves to {ip}, a private or reserved address"
    return None


def new_secret() -> str:
    """A signing secret for a webhook whose owner did not give one."""
    return "whsec_" + secrets.token_urlsafe(32)


def _context(cloud_id: str, public_id: str) -> str:
    return f"webhook-secret:{cloud_id}:{public_id}"


def seal_secret(config: Config, cloud_id: str, public_id: str, secret: str) -> str:
    return vault.seal(config.secret_key, secret, _context(cloud_id, public_id))


def unseal_secret(config: Config, cloud_id: str, public_id: str, sealed: str) -> str:
    return vault.unseal(config.secret_key, sealed, _context(cloud_id, public_id))
