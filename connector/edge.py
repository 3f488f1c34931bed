"""The connector's edge: one path form for routing, the raw path for the qsh, JSON errors, safe headers.

- `SlashInsensitive` (WSGI): every route answers the same with and without trailing slashes. Routing
  sees the path without them; the raw request path (as the client sent it, still percent-encoded) is
  kept in the environ for the qsh, which strips one trailing slash itself, as Jira does.
- `json_errors`: every Werkzeug HTTP error (404, 405, 413, ...) and anything unexpected becomes the
  connector's JSON error shape `{"error": {"code", "message", "fields"}}` with its own status.
- `security_headers`: nosniff, a Referrer-Policy, a deny-all CSP unless the answer set its own (the
  panel pages set theirs, with their tenant's frame-ancestors), HSTS when served over https, and
  `Cache-Control: no-store` on JSON unless the answer chose its caching (the public JWKS does).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, urlsplit

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)
RAW_PATH = "keepstone.raw_path"
JSON_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
HSTS = "max-age=31536000; includeSubDomains"
# RFC 3986 pchar plus '/' and '%': what may stand literally in a path on the wire.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
ERROR_CODES = {
    400: "bad_request",
    401: "invalid_token",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "invalid",
    429: "too_many_requests",
    431: "headers_too_large",
    500: "internal",
    502: "backend_unavailable",
}


def raw_path(environ: dict[str, Any]) -> str:
    """The request path as the client sent it (still percent-encoded), without the query.

    Werkzeug's server gives it as RAW_URI and REQUEST_URI, waitress as REQUEST_URI; without either it is
    rebuilt by quoting SCRIPT_NAME + PATH_INFO (which cannot bring back an encoded '/', '%2F').
    """
    uri = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if uri:
        path = uri.partition("?")[0].partition("#")[0]
        if path.lower().startswith(("http://", "https://")):
            path = urlsplit(path).path  # absolute-form request target: http://host/path
    else:
        wsgi = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        path = wsgi.encode("latin-1").decode("utf-8", errors="replace")
    # WSGI strings are latin-1 views of the bytes; quote what cannot stand literally (spaces, non-ASCII).
    return quote(path.encode("latin-1", errors="replace"), safe=_PATH_SAFE) or "/"


class SlashInsensitive:
    """WSGI middleware: route on the path without trailing slashes; keep the raw path for the qsh."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        environ[RAW_PATH] = raw_path(environ)
        path = environ.get("PATH_INFO", "")
        if len(path) > 1 and path.endswith("/"):
            environ["PATH_INFO"] = path.rstrip("/") or "/"
        return self.app(environ, start_response)


def error_response(
    status: int, message: str, code: str | None = None, fields: dict | None = None
) -> Response:
    """The connector's JSON error answer."""
    resp = jsonify(
        {
            "error": {
                "code": code or ERROR_CODES.get(status, "error"),
                "message": message,
                "fields": fields or {},
            }
        }
    )
    resp.status_code = status
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'JWT realm="keepstone"'
    return resp


def json_errors(app: Flask) -> None:
    """Answer every HTTP error and every unexpected exception in the JSON error shape, never as HTML."""

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException) -> Response:
        status = e.code or 500
        message = {413: "The request body is too large.", 404: "No such resource."}.get(
            status, e.description or e.name
        )
        resp = error_response(status, message)
        if status == 405 and e.response is None:
            allowed = getattr(e, "valid_methods", None)
            if allowed:
                resp.headers["Allow"] = ", ".join(allowed)
        return resp

    @app.errorhandler(Exception)
    def unexpected(e: Exception) -> Response:
        log.exception("unexpected error", extra={"path": request.path})
        return error_response(500, "Something went wrong in the connector.")


def security_headers(app: Flask, base_url: str) -> None:
    """Put the connector's safe headers on every answer, errors included."""
    https_base = base_url.lower().startswith("https://")

    @app.after_request
    def headers(resp: Response) -> Response:
        h = resp.headers
        h["X-Content-Type-Options"] = "nosniff"
        h.setdefault("Referrer-Policy", "no-referrer")
        h.setdefault("Content-Security-Policy", JSON_CSP)
        if https_base or request.scheme == "https":
            h["Strict-Transport-Security"] = HSTS
        if resp.mimetype == "application/json" and "Cache-Control" not in h:
            h["Cache-Control"] = "no-store"
        return resp
