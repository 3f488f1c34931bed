"""The API's error tree and the one handler that turns every error into the same JSON body.

ApiError (400 bad_request)          {"error": {"code", "message", "fields"}}
├── Unauthorized (401)              no or invalid credentials / token
├── Forbidden (403)                 valid credentials, not for this organisation
├── NotFound (404)
├── Conflict (409)                  e.g. a run of this plan is already active
├── Invalid (422)                   well-formed JSON that breaks the schema; `fields` names each problem
└── Upstream (502)                  Jira could not be reached or answered an error
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException


class ApiError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, fields: dict[str, Any] | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        if code:
            self.code = code


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class Invalid(ApiError):
    status, code = 422, "invalid"


class Upstream(ApiError):
    status, code = 502, "upstream"


def error_body(status: int, code: str, message: str, fields: dict[str, Any] | None = None):
    response = jsonify({"error": {"code": code, "message": message, "fields": fields or {}}})
    response.status_code = status
    return response


def init_app(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(e: ApiError):
        return error_body(e.status, e.code, e.message, e.fields)

    @app.errorhandler(ValidationError)
    def validation_error(e: ValidationError):
        fields = e.messages if isinstance(e.messages, dict) else {"_schema": e.messages}
        return error_body(422, "invalid", "the request does not match the schema", fields)

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        if not request.path.startswith(("/api/", "/sso")):
            return e
        code = {
            400: "malformed_request",
            404: "not_found",
            405: "method_not_allowed",
            413: "payload_too_large",
            415: "unsupported_media_type",
        }
        response = error_body(e.code or 500, code.get(e.code or 500, "error"), e.description or e.name)
        for name, value in e.get_headers():  # e.g. Allow on a 405, as HTTP requires
            if name.lower() != "content-type":
                response.headers[name] = value
        return response
