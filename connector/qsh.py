"""The Connect query string hash (qsh): a SHA-256 of the canonical request, as Atlassian computes it.

The rule (sources: the Java `HttpRequestCanonicalizer` of atlassian-jwt that Jira signs with, the npm
`atlassian-jwt` 2.0.3 `createCanonicalRequest` that atlassian-connect-express verifies with; see the
"Connector" section of docs/security.md):

    canonical request = METHOD '&' canonical path '&' canonical query
    canonical path    = the raw, still percent-encoded request path (never decoded), the app's base
                        path removed from its start, '' -> '/', every '&' -> '%26', a leading '/',
                        one trailing '/' removed
    canonical query   = the raw query split on '&', each piece split on its first '=', '+' read as a
                        space and %XX decoded as UTF-8 (bad bytes -> U+FFFD); `jwt` dropped; values of
                        a repeated key sorted (UTF-16 code-unit order, as Java and JavaScript compare
                        strings), each RFC 3986-encoded (only A-Z a-z 0-9 - . _ ~ stay literal: space
                        %20, '+' %2B, '*' %2A) and joined by ','; then `key=values` pairs sorted by key
                        and joined by '&'

The two references sort the keys differently when a key has a character that must be encoded: Java
sorts the encoded keys, the npm package the decoded ones. Both forms name the same set of key/value
pairs (keys and values are encoded, so the pairs can be read back from either string), so a verifier
that accepts either hash authenticates exactly the same request: `qsh_candidates` returns both.
"""

from __future__ import annotations

import hashlib
from typing import Literal
from urllib.parse import quote, unquote_plus

CONTEXT_QSH = "context-qsh"
KeyOrder = Literal["encoded", "decoded"]


def _encode(value: str) -> str:
    """Percent-encode per RFC 3986: everything but A-Z a-z 0-9 - . _ ~ (space %20, '*' %2A, '+' %2B)."""
    return quote(value, safe="~", errors="surrogatepass")


def _utf16(value: str) -> bytes:
    """A sort key that orders strings by UTF-16 code units, as Java's and JavaScript's comparisons do."""
    return value.encode("utf-16-be", errors="surrogatepass")


def canonical_path(path: str, base_path: str = "") -> str:
    """Return the canonical form of a raw (still percent-encoded) path, relative to the app's base path."""
    base_path = base_path.rstrip("/")
    if base_path and path.startswith(base_path):
        path = path[len(base_path) :]
    if not path:
        return "/"
    path = path.replace("&", "%26")
    if not path.startswith("/"):
        path = "/" + path
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    return path


def parse_query(query: str) -> dict[str, list[str]]:
    """Split a raw query string into decoded keys and their values, in order; `jwt` is left out."""
    values: dict[str, list[str]] = {}
    for piece in query.split("&"):
        if not piece:
            continue
        key, _, value = piece.partition("=")
        key, value = unquote_plus(key, errors="replace"), unquote_plus(value, errors="replace")
        if key != "jwt":
            values.setdefault(key, []).append(value)
    return values


def canonical_query(query: str, key_order: KeyOrder = "encoded") -> str:
    """Return the canonical query; `key_order` "encoded" is Java's (Jira's) order, "decoded" the npm one."""
    pairs = [
        (key, _encode(key), ",".join(_encode(v) for v in sorted(vals, key=_utf16)))
        for key, vals in parse_query(query).items()
    ]
    if key_order == "encoded":
        pairs.sort(key=lambda p: p[1])
    else:
        pairs.sort(key=lambda p: _utf16(p[0]))
    return "&".join(f"{encoded}={vals}" for _key, encoded, vals in pairs)


def canonical_request(
    method: str, path: str, query: str = "", base_path: str = "", key_order: KeyOrder = "encoded"
) -> str:
    """Return METHOD&path&query as Atlassian canonicalises a request (raw path, raw query string)."""
    return f"{method.upper()}&{canonical_path(path, base_path)}&{canonical_query(query, key_order)}"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()


def qsh(method: str, url_or_path: str, base_path: str = "") -> str:
    """Return the qsh (Java/Jira key order) of a request given as a raw path with an optional '?query'."""
    path, _, query = url_or_path.partition("?")
    return _sha256(canonical_request(method, path, query, base_path))


def qsh_candidates(method: str, path: str, query: str, base_path: str = "") -> set[str]:
    """Every qsh a reference implementation computes for this raw request (one, or two key orders)."""
    return {
        _sha256(canonical_request(method, path, query, base_path, order)) for order in ("encoded", "decoded")
    }
