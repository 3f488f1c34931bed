"""The REST API /api/v1: one blueprint per resource, its marshmallow schemas beside it."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from backend.api import accounts, openapi, organisations, plans, runs

    for module in (organisations, accounts, plans, runs, openapi):
        app.register_blueprint(module.bp)
