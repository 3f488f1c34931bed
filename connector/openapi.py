"""The OpenAPI 3 document of the connector's JSON endpoints (served at /openapi.json).

Every request and response body is described. The panel's answers are the backend's (Seam 4) passed
on: their documented fields are typed, and further fields the backend may add are allowed. Statuses
other than those listed never leave the connector: `connector.panel._backend` turns any other backend
answer into a 502, `connector.edge` every HTTP error into the JSON error shape.
"""

from __future__ import annotations

from typing import Any

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
TEXT = {"type": "string"}
NULLABLE_TEXT = {"type": "string", "nullable": True}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": TEXT, "message": TEXT, "fields": {"type": "object"}},
            }
        },
    },
    "Ok": {
        "type": "object",
        "required": ["ok"],
        "properties": {"ok": {"type": "boolean", "enum": [True]}},
        "additionalProperties": False,
    },
    "Schedule": {
        "type": "object",
        "required": ["days", "hour"],
        "properties": {
            "days": {
                "type": "array",
                "items": {"type": "string", "enum": DAYS},
                "minItems": 1,
                "maxItems": 7,
            },
            "hour": {"type": "integer", "minimum": 0, "maximum": 23},
            "time_zone": TEXT,
        },
    },
    "RunSummary": {
        "type": "object",
        "required": ["id", "state"],
        "properties": {"id": TEXT, "state": TEXT, "progress": {"type": "object", "nullable": True}},
    },
    "Status": {
        "type": "object",
        "required": ["protected_projects", "state"],
        "properties": {
            "cloud_id": TEXT,
            "protected_projects": {"type": "integer", "minimum": 0},
            "service_region": TEXT,
            "storage_region": TEXT,
            "state": TEXT,
            "last_backup_at": NULLABLE_TEXT,
            "last_backup_state": NULLABLE_TEXT,
            "next_backup_at": NULLABLE_TEXT,
            "current_run": {"allOf": [{"$ref": "#/components/schemas/RunSummary"}], "nullable": True},
            "has_account": {"type": "boolean"},
            "schedule": {
                "type": "object",
                "nullable": True,
                "properties": {
                    "days": {"type": "array", "items": TEXT},
                    "hour": {"type": "integer"},
                    "time_zone": TEXT,
                },
            },
        },
    },
    "Run": {
        "type": "object",
        "required": ["id", "state"],
        "properties": {
            "id": TEXT,
            "plan_id": NULLABLE_TEXT,
            "trigger": NULLABLE_TEXT,
            "state": TEXT,
            "created": NULLABLE_TEXT,
            "started": NULLABLE_TEXT,
            "finished": NULLABLE_TEXT,
            "progress": {"type": "object", "nullable": True},
            "requests": {"type": "integer", "nullable": True},
            "error": NULLABLE_TEXT,
            "cancel_requested": {"type": "boolean"},
            "projects": {"type": "array", "items": {"type": "object"}},
        },
    },
    "AccountIn": {
        "type": "object",
        "required": ["email", "api_token"],
        "properties": {
            "email": {"type": "string", "minLength": 1, "maxLength": 255},
            "api_token": {"type": "string", "minLength": 1, "maxLength": 2048},
        },
    },
    "Account": {
        "type": "object",
        "required": ["email"],
        "properties": {
            "site_url": TEXT,
            "email": TEXT,
            "account_id": NULLABLE_TEXT,
            "display_name": NULLABLE_TEXT,
            "checked_at": NULLABLE_TEXT,
        },
        "not": {"required": ["api_token"]},  # never the token, not even masked
    },
    "InstalledPayload": {
        "type": "object",
        "required": ["key", "clientKey", "sharedSecret", "baseUrl", "eventType"],
        "properties": {
            "key": TEXT,
            "clientKey": {"type": "string", "minLength": 1, "maxLength": 255},
            "sharedSecret": {"type": "string", "minLength": 1, "maxLength": 255},
            "baseUrl": {"type": "string", "format": "uri", "maxLength": 255},
            "displayUrl": TEXT,
            "productType": TEXT,
            "description": TEXT,
            "eventType": {"type": "string", "enum": ["installed"]},
            "installationId": TEXT,
        },
    },
    "UninstalledPayload": {
        "type": "object",
        "required": ["key", "clientKey", "eventType"],
        "properties": {
            "key": TEXT,
            "clientKey": {"type": "string", "minLength": 1, "maxLength": 255},
            "baseUrl": TEXT,
            "productType": TEXT,
            "eventType": {"type": "string", "enum": ["uninstalled"]},
        },
    },
    "ForgeEvent": {
        "type": "object",
        "required": ["eventType"],
        "properties": {
            "eventType": {
                "type": "string",
                "enum": ["avi:forge:installed:app", "avi:forge:upgraded:app", "avi:forge:uninstalled:app"],
            },
            "id": TEXT,
            "installerAccountId": TEXT,
            "app": {"type": "object"},
            "context": {"type": "object", "properties": {"cloudId": TEXT}},
            "siteUrl": TEXT,
        },
    },
    "Jwks": {
        "type": "object",
        "required": ["keys"],
        "properties": {
            "keys": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["kty", "kid", "n", "e", "alg", "use"],
                    "properties": {
                        "kty": {"type": "string", "enum": ["RSA"]},
                        "kid": TEXT,
                        "n": TEXT,
                        "e": TEXT,
                        "alg": {"type": "string", "enum": ["RS256"]},
                        "use": {"type": "string", "enum": ["sig"]},
                    },
                    "not": {"anyOf": [{"required": ["d"]}, {"required": ["p"]}, {"required": ["q"]}]},
                },
            }
        },
    },
    "Handoff": {
        "type": "object",
        "required": ["url", "expires_in"],
        "properties": {"url": TEXT, "expires_in": {"type": "integer", "minimum": 1}},
        "additionalProperties": False,
    },
    "Document": {
        "type": "object",
        "required": ["openapi", "info", "paths"],
        "properties": {"openapi": TEXT, "info": {"type": "object"}, "paths": {"type": "object"}},
    },
    "Descriptor": {
        "type": "object",
        "required": ["key", "baseUrl", "authentication", "lifecycle"],
        "properties": {
            "key": TEXT,
            "name": TEXT,
            "baseUrl": TEXT,
            "authentication": {"type": "object"},
            "lifecycle": {"type": "object"},
            "modules": {"type": "object"},
        },
    },
}

ERROR_TEXT = {
    400: "The body or a parameter is not valid.",
    401: "No credential, or one that does not verify (sent before anything else is looked at).",
    403: "A valid credential that may not do this (context token on a page, app not enabled).",
    404: "No such object for this tenant.",
    409: "Conflicts with the tenant's state (e.g. no plan yet, a run in progress).",
    413: "The body is larger than 1 MiB.",
    422: "The backend refused the values.",
    502: "The backend or Jira did not answer as it should.",
}


def _json(ref: str, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": ref}}}}


def _errors(*statuses: int) -> dict:
    return {str(s): _json("#/components/schemas/Error", ERROR_TEXT[s]) for s in statuses}


def _body(schema: str) -> dict:
    return {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def _op(
    summary: str,
    ok: tuple[int, str | None],
    errors: tuple[int, ...],
    security: str | None = None,
    body: str | None = None,
) -> dict:
    status, schema = ok
    responses = {
        str(status): _json(f"#/components/schemas/{schema}", "OK") if schema else {"description": "Done"}
    }
    responses.update(_errors(*errors))
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    op["security"] = [{security: []}] if security else []
    if body:
        op["requestBody"] = _body(body)
    return op


PANEL_READ = (401, 403, 404, 502)
PANEL_WRITE = (400, 401, 403, 404, 409, 413, 422, 502)


def _panel(prefix: str, security: str) -> dict:
    ops = {
        f"{prefix}/status": {
            "get": _op("Protection status and schedule", (200, "Status"), PANEL_READ, security)
        },
        f"{prefix}/schedule": {
            "put": _op(
                "Change the default plan's schedule", (200, "Status"), PANEL_WRITE, security, "Schedule"
            )
        },
        f"{prefix}/backup": {
            "post": _op(
                "Back up now (default plan)", (202, "Run"), (401, 403, 404, 409, 413, 422, 502), security
            )
        },
        f"{prefix}/account": {
            "get": _op(
                "The Jira account used for backups (never its token)", (200, "Account"), PANEL_READ, security
            ),
            "put": _op(
                "Set the Jira account (checked against Jira first)",
                (200, "Account"),
                PANEL_WRITE,
                security,
                "AccountIn",
            ),
        },
    }
    return ops


def _run(security: str) -> dict:
    return {
        "get": {
            **_op("One run's progress (the caller's tenant only)", (200, "Run"), PANEL_READ, security),
            "parameters": [
                {
                    "name": "run_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "minLength": 1, "maxLength": 64},
                }
            ],
        }
    }


def document() -> dict:
    """Return the OpenAPI document (servers filled in by the app factory)."""
    paths: dict[str, Any] = {
        "/healthz": {"get": _op("Liveness", (200, "Ok"), ())},
        "/atlassian-connect.json": {"get": _op("The Connect descriptor", (200, "Descriptor"), ())},
        "/openapi.json": {"get": _op("This document", (200, "Document"), ())},
        "/.well-known/jwks.json": {"get": _op("The connector's public signing keys", (200, "Jwks"), ())},
        "/connect/installed": {
            "post": _op(
                "Signed install (RS256 JWT from Atlassian, kid from the install-key server)",
                (204, None),
                (400, 401, 403, 413, 502),
                "signedInstall",
                "InstalledPayload",
            )
        },
        "/connect/uninstalled": {
            "post": _op(
                "Signed uninstall", (204, None), (400, 401, 403, 413), "signedInstall", "UninstalledPayload"
            )
        },
        "/connect/enabled": {
            "post": _op("Enable (HS256 with the shared secret)", (204, None), (401, 403), "connectJwt")
        },
        "/connect/disabled": {
            "post": _op("Disable (HS256 with the shared secret)", (204, None), (401, 403), "connectJwt")
        },
        "/forge/events": {
            "post": _op(
                "Forge lifecycle trigger",
                (200, "Ok"),
                (400, 401, 403, 413, 502),
                "forgeInvocationToken",
                "ForgeEvent",
            )
        },
        "/panel/api/runs/{run_id}": _run("connectJwt"),
        "/forge/panel/runs/{run_id}": _run("forgeInvocationToken"),
        "/forge/panel/more": {
            "post": _op(
                "More features: a one-time 60-second URL that signs the user in to the management "
                "service (opened with router.open)",
                (200, "Handoff"),
                (400, 401, 403, 413),
                "forgeInvocationToken",
            )
        },
        **_panel("/panel/api", "connectJwt"),
        **_panel("/forge/panel", "forgeInvocationToken"),
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Keepstone connector",
            "version": "1",
            "description": "The app inside Jira: lifecycle events, the admin panel's actions, the JWKS for the backend.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "connectJwt": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`JWT <token>`: HS256 with the tenant's shared secret, qsh of the request "
                    "(or `context-qsh` on /panel/api); also accepted as the `jwt` query parameter.",
                },
                "signedInstall": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`JWT <token>`: RS256, kid from the install-key server, aud = baseUrl, qsh.",
                },
                "forgeInvocationToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            },
        },
    }
