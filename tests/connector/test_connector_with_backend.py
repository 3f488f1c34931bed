"""The connector against the real backend service (Seam 4): hand-off, panel calls, uninstall."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import jwt
import pytest
import requests

from connector.handoff import service_token
from connector.panel import context_token

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("backend.app") is None, reason="backend.app not there yet"
)


@pytest.fixture
def real(tmp_path: Path):
    from keepstone.demo import start_stack, stop_stack

    running = start_stack(tmp_path / "var")
    servers = running["servers"]
    state = servers["connector"].server.app.extensions["connector"]
    tenant = state.tenants.get(running["cloud_id"])
    running.update(state=state, tenant=tenant, ctx=context_token(tenant, "5b10admin", "Site Admin"))
    yield running
    stop_stack(running)


def _from_connector(real) -> dict:
    """The hand-off form is the connector's page, so the browser's POST carries its Origin."""
    return {"Origin": real["servers"]["connector"].url}


def _sso(real) -> str:
    url = real["servers"]["connector"].url + "/panel/more"
    r = requests.post(url, data={"jwt": real["ctx"]}, timeout=10)
    assert r.status_code == 200
    return re.search(r"name='token' value='([^']+)'", r.text).group(1)


def test_sso_lands_logged_in_once_and_a_replay_is_refused(real):
    backend = real["servers"]["backend"].url
    token = _sso(real)
    browser = requests.Session()
    first = browser.post(
        backend + "/sso",
        data={"token": token},
        headers=_from_connector(real),
        allow_redirects=False,
        timeout=10,
    )
    assert first.status_code == 303 and first.headers["Location"].rstrip("/") in ("", backend)
    assert browser.get(backend + "/", allow_redirects=False, timeout=10).status_code == 200
    replay = requests.post(
        backend + "/sso",
        data={"token": token},
        headers=_from_connector(real),
        allow_redirects=False,
        timeout=10,
    )
    assert replay.status_code == 401
    assert "session" not in replay.cookies


def test_service_token_is_not_an_sso_token(real):
    backend = real["servers"]["backend"].url
    token = service_token(real["state"].keys, real["cloud_id"])
    r = requests.post(
        backend + "/sso",
        data={"token": token},
        headers=_from_connector(real),
        allow_redirects=False,
        timeout=10,
    )
    assert r.status_code == 401


def test_sso_token_signed_by_another_key_is_refused(real):
    from cryptography.hazmat.primitives.asymmetric import rsa

    claims = jwt.decode(_sso(real), options={"verify_signature": False})
    claims["jti"] = "forged"
    kid = real["state"].keys.current.kid
    forged = jwt.encode(
        claims,
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        algorithm="RS256",
        headers={"kid": kid, "typ": "sso-handoff+jwt"},
    )
    r = requests.post(
        real["servers"]["backend"].url + "/sso",
        data={"token": forged},
        headers=_from_connector(real),
        allow_redirects=False,
    )
    assert r.status_code == 401


def test_panel_status_and_schedule_work_against_the_backend(real):
    url = real["servers"]["connector"].url
    headers = {"Authorization": f"JWT {real['ctx']}"}
    status = requests.get(url + "/panel/api/status", headers=headers, timeout=10)
    assert status.status_code == 200, status.text
    assert {"protected_projects", "service_region", "storage_region", "state", "next_backup_at"} <= set(
        status.json()
    )
    r = requests.put(
        url + "/panel/api/schedule", json={"days": ["sat"], "hour": 7}, headers=headers, timeout=10
    )
    assert r.status_code == 200, r.text
    assert r.json()["schedule"]["days"] == ["sat"] and r.json()["schedule"]["hour"] == 7


def test_uninstall_suspends_the_organisation_in_the_backend(real):
    site = real["servers"]["sandbox"].url
    assert requests.post(site + "/_sandbox/apps/keepstone/uninstall", timeout=30).status_code == 200
    backend = real["servers"]["backend"].url
    token = service_token(real["state"].keys, real["cloud_id"])
    status = requests.get(
        f"{backend}/api/v1/organisations/{real['cloud_id']}/status",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert status.status_code == 200 and status.json()["state"] == "suspended"


def test_review_in_keepstone_lands_on_the_run_and_nothing_else_can_be_a_target(real):
    """The panel's warning link hands off to the run that warned; the target is signed with the hand-off,
    and one that is not a run page lands on the dashboard (no open redirect, on either side)."""
    backend = real["servers"]["backend"].url
    url = real["servers"]["connector"].url + "/panel/more"
    for target, lands in (
        ("/runs/run_abcdefghijklmnopqrst", "/runs/run_abcdefghijklmnopqrst"),
        ("https://evil.example/runs/run_abc", "/"),
        ("//evil.example/", "/"),
        ("/runs/run_abc/../../admin", "/"),
    ):
        r = requests.post(url, data={"jwt": real["ctx"], "target": target}, timeout=10)
        token = re.search(r"name='token' value='([^']+)'", r.text).group(1)
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims.get("target", "/") == lands
        landed = requests.post(
            backend + "/sso",
            data={"token": token},
            headers=_from_connector(real),
            allow_redirects=False,
            timeout=10,
        )
        assert landed.status_code == 303 and landed.headers["Location"].removeprefix(backend) == lands
