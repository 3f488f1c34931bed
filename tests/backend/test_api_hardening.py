"""The API's fixed order, attacked as a stranger would: authenticate, authorise, validate, then look up.

The routes come from the app's own URL map, so a route added later is in these tables without anyone
remembering to add it. Every attack also checks that nothing was stored or changed.
"""

from __future__ import annotations

import re

import pytest
import requests
from sqlalchemy import func, select

from backend.api import PUBLIC
from backend.db.models import Plan, Run
from tests.backend.test_backend_auth import forged

TENANT = "11111111-2222-4333-8444-555555555555"
OTHER = "99999999-2222-4333-8444-555555555555"
MISSING_PLAN = "pln_aaaaaaaaaaaaaaaaaaaa"
MISSING_RUN = "run_aaaaaaaaaaaaaaaaaaaa"
BODIES = [
    {"name": "x", "schedule": {"days": ["mon"], "hour": 1}},  # valid for plans
    {"limit": "x", "plan_id": [1], "email": 5},  # invalid for every schema
]


def api_routes(app) -> list[tuple[str, str]]:
    """Every (method, rule) under /api/v1 that the guard protects."""
    out = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1") and rule.endpoint not in PUBLIC:
            out.extend((m, rule.rule) for m in sorted(rule.methods - {"HEAD", "OPTIONS"}))
    return sorted(out)


def fill(rule: str, cloud_id: str, plan_id: str, run_id: str) -> str:
    return rule.replace("<cloud_id>", cloud_id).replace("<plan_id>", plan_id).replace("<run_id>", run_id)


def counts(backend) -> tuple[int, int]:
    with backend.app.extensions["keepstone"].db.session() as s:
        return s.scalar(select(func.count()).select_from(Plan)), s.scalar(
            select(func.count()).select_from(Run)
        )


@pytest.fixture
def two_tenants(sqlite_backend, sandbox_site):
    """Tenant A with a plan and a finished run; tenant B installed and empty."""
    b = sqlite_backend
    b.install(TENANT, sandbox_site.url)
    b.install(OTHER, sandbox_site.url)
    plan = b.call("GET", f"/api/v1/organisations/{TENANT}/plans", TENANT).json()["items"][0]
    run = b.call("POST", f"/api/v1/organisations/{TENANT}/runs", TENANT, json={}).json()
    b.wait_for_run(TENANT, run["id"])
    return b, plan["id"], run["id"]


def test_every_api_route_is_listed(sqlite_backend):
    routes = api_routes(sqlite_backend.app)
    # The table below must really cover the API: the routes a Jira admin's panel depends on are there.
    assert ("POST", "/api/v1/organisations/<cloud_id>/runs") in routes
    assert ("PATCH", "/api/v1/plans/<plan_id>") in routes
    assert len(routes) >= 13


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


NO_CREDENTIAL = {
    "none": lambda issuer: {},
    "basic scheme": lambda issuer: {"Authorization": "Basic YWRtaW46YWRtaW4="},
    "empty bearer": lambda issuer: {"Authorization": "Bearer "},
    "garbage bearer": lambda issuer: {"Authorization": "Bearer not.a.jwt"},
    "forged signature": lambda issuer: bearer(forged(issuer, TENANT)["forged signature"]),
    "alg none": lambda issuer: bearer(forged(issuer, TENANT)["alg none"]),
    "expired": lambda issuer: bearer(forged(issuer, TENANT)["expired"]),
    "SSO audience": lambda issuer: bearer(forged(issuer, TENANT)["wrong aud"]),
}


@pytest.mark.parametrize("credential", NO_CREDENTIAL)
def test_without_a_valid_credential_every_route_is_401_before_anything_else(two_tenants, issuer, credential):
    """No route reveals whether an id exists, or what its schema wants, to a caller it does not know."""
    backend, plan_id, run_id = two_tenants
    headers = NO_CREDENTIAL[credential](issuer)
    before = counts(backend)
    for method, rule in api_routes(backend.app):
        answers = set()
        for cloud_id, plan, run in ((TENANT, plan_id, run_id), (OTHER, MISSING_PLAN, MISSING_RUN)):
            for body in BODIES:
                r = requests.request(
                    method,
                    backend.url + fill(rule, cloud_id, plan, run) + "?limit=abc&cursor=" + "9" * 30,
                    json=body,
                    headers=headers,
                    timeout=10,
                )
                assert r.status_code == 401, (method, rule, r.status_code, r.text)
                error = r.json()["error"]
                assert error["code"] == "unauthorized" and error["fields"] == {}
                answers.add(error["message"])
        assert len(answers) == 1, (method, rule, answers)  # existing and missing ids answer alike
    assert counts(backend) == before


def test_another_tenants_objects_answer_exactly_like_missing_ones(two_tenants):
    """Authenticated but not entitled: 404, with the same body for an existing and a made-up id."""
    backend, plan_id, run_id = two_tenants
    before = counts(backend)
    for method, rule in api_routes(backend.app):
        if "<plan_id>" not in rule and "<run_id>" not in rule and "<cloud_id>" not in rule:
            continue
        existing = requests.request(
            method,
            backend.url + fill(rule, TENANT, plan_id, run_id),
            json=BODIES[1],
            headers=backend.issuer.headers(OTHER),
            timeout=10,
        )
        made_up = requests.request(
            method,
            backend.url + fill(rule, "00000000-0000-4000-8000-000000000000", MISSING_PLAN, MISSING_RUN),
            json=BODIES[1],
            headers=backend.issuer.headers(OTHER),
            timeout=10,
        )
        assert existing.status_code == made_up.status_code == 404, (method, rule, existing.text)

        def shape(r: requests.Response) -> str:
            return re.sub(r"(pln|run)_[a-z2-7]{20}|[0-9a-f-]{36}", "ID", r.json()["error"]["message"])

        assert shape(existing) == shape(made_up), (method, rule)
    assert counts(backend) == before


def test_ids_in_urls_and_answers_are_opaque(two_tenants):
    backend, plan_id, run_id = two_tenants
    assert re.fullmatch(r"pln_[a-z2-7]{20}", plan_id) and re.fullmatch(r"run_[a-z2-7]{20}", run_id)
    status = backend.call("GET", f"/api/v1/organisations/{TENANT}/status", TENANT).json()
    run = backend.call("GET", f"/api/v1/runs/{run_id}", TENANT).json()
    assert run["plan_id"] == plan_id and run["id"] == run_id
    assert status["current_run"] is None
    # A plan id is not a run id, and the integer keys inside are not addresses.
    for path in (f"/api/v1/runs/{plan_id}", "/api/v1/plans/1", "/api/v1/runs/1"):
        assert backend.call("GET", path, TENANT).status_code == 404


HOSTILE_IDS = [
    "9" * 30,  # beyond 64 bits
    "-1",
    "pln_" + "a" * 2000,
    "pln_AAAAAAAAAAAAAAAAAAAA",
    "%00",
    "ünïcode",
]


@pytest.mark.parametrize("hostile", HOSTILE_IDS)
def test_hostile_ids_and_cursors_are_404_or_422_never_500(two_tenants, hostile):
    backend, _plan_id, run_id = two_tenants
    for path in (f"/api/v1/plans/{hostile}", f"/api/v1/runs/{hostile}", f"/api/v1/runs/{hostile}/logs"):
        assert backend.call("GET", path, TENANT).status_code == 404
    for path in (f"/api/v1/organisations/{TENANT}/runs", f"/api/v1/runs/{run_id}/logs"):
        r = backend.call("GET", path, TENANT, params={"cursor": hostile})
        assert r.status_code == 422 and "cursor" in r.json()["error"]["fields"], r.text
    r = backend.call("GET", f"/api/v1/organisations/{TENANT}/runs", TENANT, params={"limit": hostile})
    assert r.status_code == 422 and "limit" in r.json()["error"]["fields"]


def test_cursors_page_through_runs(two_tenants):
    backend, _plan_id, first = two_tenants
    second = backend.call("POST", f"/api/v1/organisations/{TENANT}/runs", TENANT, json={}).json()["id"]
    backend.wait_for_run(TENANT, second)
    page = backend.call("GET", f"/api/v1/organisations/{TENANT}/runs", TENANT, params={"limit": 1}).json()
    assert [r["id"] for r in page["items"]] == [second]
    rest = backend.call(
        "GET", f"/api/v1/organisations/{TENANT}/runs", TENANT, params={"cursor": page["next_cursor"]}
    ).json()
    assert [r["id"] for r in rest["items"]] == [first] and rest["next_cursor"] is None
    # Another tenant's cursor is no cursor here.
    r = backend.call("GET", f"/api/v1/organisations/{OTHER}/runs", OTHER, params={"cursor": first})
    assert r.status_code == 422


def deep(n: int) -> str:
    return "[" * n + "]" * n


WRITES = [
    ("PUT", "/api/v1/organisations/{t}"),
    ("PUT", "/api/v1/organisations/{t}/account"),
    ("POST", "/api/v1/organisations/{t}/plans"),
    ("POST", "/api/v1/organisations/{t}/runs"),
    ("PATCH", "/api/v1/plans/{p}"),
]


@pytest.mark.parametrize(
    "body, status, code",
    [
        (deep(100_000), 400, "malformed_json"),
        ('{"a":' * 50_000 + "1" + "}" * 50_000, 400, "malformed_json"),
        ('{"name": "' + "x" * (2 * 1024 * 1024) + '"}', 413, "payload_too_large"),
        ("[1, 2]", 422, "invalid"),
        ('"just a string"', 422, "invalid"),
    ],
    ids=["deep array", "deep object", "2 MiB body", "array", "string"],
)
def test_hostile_bodies_are_clear_4xx_on_every_write(two_tenants, body, status, code):
    backend, plan_id, _run_id = two_tenants
    before = counts(backend)
    for method, path in WRITES:
        r = backend.call(
            method,
            path.format(t=TENANT, p=plan_id),
            TENANT,
            data=body,
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == status, (method, path, r.status_code, r.text[:300])
        assert r.json()["error"]["code"] == code
    assert counts(backend) == before


BAD_SPECS = [
    ({"projects": "x"}, "projects"),
    ({"projects": {"mode": "rule", "name_pattern": 5}}, "name_pattern"),
    ({"data": [[1]]}, "data"),
    ({"projects": {"mode": "rule", "key_pattern": 5}}, "key_pattern"),
    ({"projects": {"mode": "rule", "categories": "notalist"}}, "categories"),
    ({"projects": {"mode": "rule", "categories": [1]}}, "categories"),
    ({"projects": {"mode": "rule", "name_pattern": "(a)\\1"}}, "name_pattern"),  # RE2 has no backreferences
    ({"projects": {"mode": "rule", "name_pattern": "x" * 201}}, "name_pattern"),
    ({"projects": {"mode": "selected", "keys": [" "]}}, "keys"),
    ({"projects": {"include_archived": "yes"}}, "include_archived"),
    ({"data": {"issues": 1}}, "issues"),
    ({"incremental": "true"}, "incremental"),
    ({"max_workers": True}, "max_workers"),
    ({"max_workers": 2**70}, "max_workers"),
    ({"exclude_jql": "   "}, "exclude_jql"),
    ({"exclude_jql": ["a"]}, "exclude_jql"),
    ("not an object", "spec"),
    ({"colour": "blue"}, "colour"),
]


def field_names(fields) -> set[str]:
    out: set[str] = set()
    if isinstance(fields, dict):
        for key, value in fields.items():
            out.add(str(key))
            out |= field_names(value)
    elif isinstance(fields, list):
        for value in fields:
            out |= field_names(value)
    return out


@pytest.mark.parametrize("spec, field", BAD_SPECS, ids=[str(s)[:40] for s, _ in BAD_SPECS])
def test_bad_plan_specs_are_422_naming_the_field_and_nothing_is_stored(two_tenants, spec, field):
    backend, plan_id, _run_id = two_tenants
    before_plan = backend.call("GET", f"/api/v1/plans/{plan_id}", TENANT).json()
    before = counts(backend)
    body = {"name": "bad", "schedule": {"days": ["mon"], "hour": 1}, "spec": spec}
    for method, path, payload in (
        ("POST", f"/api/v1/organisations/{TENANT}/plans", body),
        ("PATCH", f"/api/v1/plans/{plan_id}", {"spec": spec}),
    ):
        r = backend.call(method, path, TENANT, json=payload)
        assert r.status_code == 422, (method, r.status_code, r.text)
        names = field_names(r.json()["error"]["fields"])
        assert "spec" in names and field in names, names
    assert counts(backend) == before
    assert backend.call("GET", f"/api/v1/plans/{plan_id}", TENANT).json() == before_plan


def test_a_catastrophic_pattern_is_accepted_and_runs_in_linear_time(two_tenants):
    """The pattern that stalled the service with Python's backtracking `re` is an ordinary RE2 pattern."""
    backend, _plan_id, _run_id = two_tenants
    r = backend.call(
        "POST",
        f"/api/v1/organisations/{TENANT}/plans",
        TENANT,
        json={
            "name": "evil",
            "schedule": {"days": ["mon"], "hour": 1},
            "spec": {"projects": {"mode": "rule", "name_pattern": "(((((.+)+)+)+)+)+!"}},
        },
    )
    assert r.status_code == 201, r.text
    run = backend.call(
        "POST", f"/api/v1/organisations/{TENANT}/runs", TENANT, json={"plan_id": r.json()["id"]}
    )
    finished = backend.wait_for_run(TENANT, run.json()["id"], timeout=60)
    # No sandbox project name ends in "!": the rule selects nothing, and says so, instead of hanging.
    assert finished["projects"] == [] and finished["state"] in ("failed", "succeeded", "warning")
