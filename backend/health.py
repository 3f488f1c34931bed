"""GET /healthz: is this web process able to do its work (the database answers; with Celery, the broker)?

Anyone may ask (a load balancer, systemd, docker): it says ok or which dependency is away, nothing else.
"""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text

from backend.auth.roles import PUBLIC_ROLE, least_role
from backend.services import services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@least_role(PUBLIC_ROLE)
def healthz():
    svc = services()
    checks: dict[str, str] = {}
    try:
        with svc.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as e:
        checks["database"] = f"unavailable: {type(e).__name__}"
    ping = getattr(svc.runs.executor, "ping", None)
    if ping is not None:
        checks["broker"] = ping()
    healthy = all(v == "ok" for v in checks.values())
    return jsonify({"status": "ok" if healthy else "unavailable", **checks}), 200 if healthy else 503
