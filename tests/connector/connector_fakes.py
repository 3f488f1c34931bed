"""A stand-in for the backend's Seam 4 API, used until backend.app exists: verifies service and SSO JWTs
against the connector's JWKS exactly as Seam 4 says, and keeps its state in memory."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import requests
from flask import Flask, jsonify, request, session

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def next_time(schedule: dict, now: datetime) -> datetime:
    """Return the next time the schedule fires after `now` (UTC)."""
    for offset in range(0, 8):
        day = (now + timedelta(days=offset)).replace(hour=schedule["hour"], minute=0, second=0, microsecond=0)
        if DAYS[day.weekday()] in schedule["days"] and day > now:
            return day
    raise ValueError("empty schedule")


def create_fake_backend(connector_jwks_url: str, site_url: str) -> Flask:
    """Create the stand-in backend app."""
    app = Flask(__name__)
    app.secret_key = uuid.uuid4().hex
    jwks = jwt.PyJWKClient(connector_jwks_url, cache_keys=False, cache_jwk_set=False)
    orgs: dict[str, dict] = {}
    runs: dict[str, dict] = {}
    burned: set[str] = set()
    lock = threading.Lock()
    app.extensions["fake"] = {"orgs": orgs, "runs": runs, "burned": burned}

    def verify(token: str, typ: str, aud: str) -> dict:
        header = jwt.get_unverified_header(token)
        if header.get("alg") != "RS256" or header.get("typ") != typ:
            raise jwt.InvalidTokenError("wrong alg or typ")
        key = jwks.get_signing_key(header.get("kid") or "").key
        return jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            audience=aud,
            issuer="keepstone-connector",
            options={"require": ["exp", "iat", "jti", "sub", "tenant"]},
        )

    def error(code: str, status: int):
        return jsonify({"error": {"code": code, "message": code, "fields": {}}}), status

    def tenant_of(cloud_id: str | None = None) -> str:
        auth = request.headers.get("Authorization", "")
        claims = verify(auth.removeprefix("Bearer "), "service+jwt", "keepstone-backend")
        if cloud_id is not None and claims["tenant"] != cloud_id:
            raise PermissionError
        return claims["tenant"]

    @app.errorhandler(jwt.PyJWTError)
    def bad_token(e):
        return error("invalid_token", 401)

    @app.errorhandler(PermissionError)
    def other_tenant(e):
        return error("forbidden", 403)

    @app.put("/api/v1/organisations/<cid>")
    def put_org(cid):
        tenant_of(cid)
        body = request.get_json()
        with lock:
            org = orgs.setdefault(
                cid,
                {"plan": {"id": f"plan-{cid[:8]}", "is_default": True, "schedule": None}, "account": None},
            )
            org.update(site_url=body["site_url"], state="active")
            org["plan"]["schedule"] = org["plan"]["schedule"] or {
                "days": list(DAYS),
                "hour": 2,
                "time_zone": "UTC",
            }
        return jsonify({"cloud_id": cid})

    @app.post("/api/v1/organisations/<cid>/suspend")
    def suspend(cid):
        tenant_of(cid)
        orgs[cid]["state"] = "suspended"
        return jsonify({"state": "suspended"})

    @app.get("/api/v1/organisations/<cid>/status")
    def status(cid):
        tenant_of(cid)
        org = orgs.get(cid)
        if org is None:
            return error("not_found", 404)
        now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
        current = next((r for r in runs.values() if r["tenant"] == cid and r["state"] == "running"), None)
        done = [r for r in runs.values() if r["tenant"] == cid and r["state"] == "succeeded"]
        return jsonify(
            {
                "protected_projects": 2,
                "service_region": "eu-central",
                "storage_region": "eu-west",
                "state": org["state"],
                "last_backup_at": done[-1]["finished_at"] if done else None,
                "next_backup_at": next_time(org["plan"]["schedule"], now).isoformat(),
                "current_run": current,
            }
        )

    @app.get("/api/v1/organisations/<cid>/plans")
    def plans(cid):
        tenant_of(cid)
        return jsonify({"items": [{"id": "other", "is_default": False, "schedule": None}, orgs[cid]["plan"]]})

    @app.patch("/api/v1/plans/<pid>")
    def patch_plan(pid):
        cid = tenant_of()
        org = orgs.get(cid)
        if org is None or org["plan"]["id"] != pid:
            return error("not_found", 404)
        org["plan"]["schedule"] = request.get_json()["schedule"]
        return jsonify(org["plan"])

    @app.route("/api/v1/organisations/<cid>/account", methods=["GET", "PUT"])
    def account(cid):
        tenant_of(cid)
        if request.method == "GET":
            acc = orgs[cid]["account"]
            return jsonify({"email": acc["email"]} if acc else {})
        body = request.get_json()
        check = requests.get(
            site_url + "/rest/api/3/myself", auth=(body["email"], body["api_token"]), timeout=10
        )
        if check.status_code != 200:
            return jsonify(
                {
                    "error": {
                        "code": "invalid_credentials",
                        "message": "Jira refused this API token.",
                        "fields": {"api_token": "refused"},
                    }
                }
            ), 400
        orgs[cid]["account"] = {"email": body["email"], "api_token": body["api_token"]}
        return jsonify({"email": body["email"]})

    @app.post("/api/v1/organisations/<cid>/runs")
    def start_run(cid):
        tenant_of(cid)
        run = {"id": uuid.uuid4().hex, "tenant": cid, "state": "running", "progress": 0}
        runs[run["id"]] = run
        return jsonify(run), 201

    @app.get("/api/v1/runs/<rid>")
    def get_run(rid):
        cid = tenant_of()
        run = runs.get(rid)
        if run is None or run["tenant"] != cid:
            return error("not_found", 404)
        if run["state"] == "running":
            run["progress"] = min(100, run["progress"] + 25)
            if run["progress"] == 100:
                run["state"] = "succeeded"
                run["finished_at"] = "2026-11-23T11:00:00+00:00"
        return jsonify(run)

    @app.post("/sso")
    def sso():
        try:
            claims = verify(request.form.get("token", ""), "sso-handoff+jwt", "keepstone-backend-sso")
        except jwt.PyJWTError:
            return error("invalid_token", 401)
        with lock:
            if claims["jti"] in burned:
                return error("replayed", 401)
            burned.add(claims["jti"])
        session["user"] = {"sub": claims["sub"], "tenant": claims["tenant"], "name": claims["name"]}
        return "", 303, {"Location": "/"}

    @app.get("/")
    def dashboard():
        user = session.get("user")
        if not user:
            return "<h1>Sign in</h1>", 401
        return f"<h1>Dashboard</h1><p id='who'>Logged in as {user['name']} for {user['tenant']}</p>"

    return app
