"""The backend's long-lived parts, created once per app: configuration, database, token verifier, runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import current_app

from backend.auth.tokens import TokenVerifier
from backend.config import Config
from backend.db import Database

if TYPE_CHECKING:
    from backend.restores import RestoreService
    from backend.runs import RunService
    from backend.scheduler import PlanScheduler


@dataclass
class Services:
    config: Config
    db: Database
    tokens: TokenVerifier
    runs: RunService
    scheduler: PlanScheduler | None = None
    restores: RestoreService | None = None


def services() -> Services:
    return current_app.extensions["keepstone"]
