"""The Atlassian side of app installation: install action, lifecycle events, signing keys, Apps page."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("atlassian", __name__)
