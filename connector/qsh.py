"""The Connect query string hash (qsh): a SHA-256 of the canonical request."""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qsl, quote

CONTEXT_QSH = "context-qsh"


def _encode(value: str) -> str:
    """Percent-encode per RFC 3986 (space %20, '*' %2A, '~' literal)."""
    return quote(value, safe="~")


def canonical_path(path: str, base_path: str = "") -> str:
    """Return the path relative to the app's base path, with '&' escaped and no trailing '/'."""
    base_path = base_path.rstrip("/")
    if base_path and path.startswith(base_path):
        path = path[len(base_path) :]
    path = path.rstrip("/")
    if not path.startswith("/"):
        path = "/" + path
    return path.replace("&", "%26")


def canonical_query(query: str) -> str:
    """Return the canonical query: `jwt` removed, keys sorted, repeated values sorted and joined by ','."""
    values: dict[str, list[str]] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key != "jwt":
            values.setdefault(key, []).append(value)
    encoded = sorted((_encode(k), v) for k, v in values.items())
    return "&".join(f"{k}={','.join(_encode(x) for x in sorted(v))}" for k, v in encoded)


def canonical_request(method: str, path: str, query: str = "", base_path: str = "") -> str:
    """Return METHOD&path&query as Atlassian canonicalises a request."""
    return f"{method.upper()}&{canonical_path(path, base_path)}&{canonical_query(query)}"


def qsh(method: str, url_or_path: str, base_path: str = "") -> str:
    """Return the qsh of a request given as a path with an optional '?query'."""
    path, _, query = url_or_path.partition("?")
    return hashlib.sha256(canonical_request(method, path, query, base_path).encode()).hexdigest()
