"""The REST API /api/v1: one blueprint per resource, its marshmallow schemas beside it.

Every resource blueprint is nested in `api`, whose guard runs before any view: authenticate (401), CSRF for
session writes, authorise the tenant and objects named in the URL (404), then the caller's role there
against the route's least role (403; backend/auth/roles.py, deny by default). A new route under /api/v1
gets that order by being registered here and given a rule; only the endpoints in PUBLIC skip it.
"""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, request

from backend.auth.access import caller, guard

api = Blueprint("api", __name__, url_prefix="/api/v1")
PUBLIC = {"api.openapi.document"}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


@api.before_request
def _guard() -> None:
    if request.endpoint in PUBLIC or request.url_rule is None:
        return
    who = caller()
    if who.kind == "user" and request.method not in SAFE_METHODS:
        # A browser session must prove the page is ours; a bearer token needs no such proof.
        current_app.extensions["csrf"].protect()
    guard(request.view_args or {})


def _nest() -> None:
    from backend.api import (
        accounts,
        audit,  # the audit log
        catalog,  # search and issue history from the snapshot catalog
        charts,  # the dashboard's charts
        members,  # members, roles and invitations
        notifications,  # channels and rules
        openapi,
        organisations,
        plans,
        recovery,  # the recovery passphrase
        runs,
        storages,
    )

    modules = (
        audit,
        organisations,
        accounts,
        storages,
        plans,
        runs,
        openapi,
        members,
        notifications,
        recovery,
    )
    for module in (*modules, catalog, charts):
        api.register_blueprint(module.bp)


_nest()


def init_app(app: Flask) -> None:
    app.register_blueprint(api)
