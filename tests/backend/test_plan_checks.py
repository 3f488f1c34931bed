"""The API asks Jira about a plan's project keys and exclusion JQL before it stores it (backend/plans_check.py):
a typo'd key or a JQL Jira refuses is a 400 naming the field, an unreachable Jira a 502, and neither
stores anything. Over real HTTP against the sandbox."""

from __future__ import annotations

from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN, start_sandbox

TENANT = "12121212-2222-4333-8444-555555555555"


def body(keys: list[str], jql: str | None = None) -> dict:
    spec: dict = {"projects": {"mode": "selected", "keys": keys}}
    if jql is not None:
        spec["exclude_jql"] = jql
    return {"name": "Checked", "schedule": {"days": ["mon"], "hour": 3}, "spec": spec}


def plans(backend) -> list[dict]:
    return backend.call("GET", f"/api/v1/organisations/{TENANT}/plans", TENANT).json()["items"]


def with_account(backend, site_url: str) -> None:
    backend.install(TENANT, site_url)
    r = backend.call(
        "PUT",
        f"/api/v1/organisations/{TENANT}/account",
        TENANT,
        json={"email": ADMIN_EMAIL, "api_token": ADMIN_TOKEN},
    )
    assert r.status_code == 200, r.text


def test_an_unknown_key_is_refused_naming_the_field_and_nothing_is_stored(sqlite_backend, sandbox_site):
    with_account(sqlite_backend, sandbox_site.url)
    before = plans(sqlite_backend)
    r = sqlite_backend.call(
        "POST", f"/api/v1/organisations/{TENANT}/plans", TENANT, json=body(["PLAT", "wbe"])
    )
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "refused_by_jira"
    [message] = error["fields"]["spec"]["projects"]["keys"]
    assert message.startswith("no project WBE in Jira") and "PLAT" not in message
    assert plans(sqlite_backend) == before


def test_a_jql_jira_refuses_is_a_400_and_a_good_plan_is_stored(sqlite_backend, sandbox_site):
    with_account(sqlite_backend, sandbox_site.url)
    before = plans(sqlite_backend)
    for jql in ("labels = = broken", "project = NOPE", "universe = 42"):
        r = sqlite_backend.call(
            "POST", f"/api/v1/organisations/{TENANT}/plans", TENANT, json=body(["PLAT"], jql)
        )
        assert r.status_code == 400, (jql, r.text)
        [message] = r.json()["error"]["fields"]["spec"]["exclude_jql"]
        assert message.startswith("Jira refused this JQL: "), message
    assert plans(sqlite_backend) == before
    good = sqlite_backend.call(
        "POST",
        f"/api/v1/organisations/{TENANT}/plans",
        TENANT,
        json=body(["plat", "WEB"], 'labels = "no-backup"'),
    )
    assert good.status_code == 201, good.text
    assert good.json()["spec"]["projects"]["keys"] == ["PLAT", "WEB"]


def test_a_patch_with_an_unknown_key_changes_nothing(sqlite_backend, sandbox_site):
    with_account(sqlite_backend, sandbox_site.url)
    plan = sqlite_backend.call(
        "POST", f"/api/v1/organisations/{TENANT}/plans", TENANT, json=body(["PLAT"])
    ).json()
    r = sqlite_backend.call(
        "PATCH",
        f"/api/v1/plans/{plan['id']}",
        TENANT,
        json={"name": "Renamed", "spec": body(["PLAT", "WBE"])["spec"]},
    )
    assert r.status_code == 400 and "WBE" in r.json()["error"]["fields"]["spec"]["projects"]["keys"][0]
    again = sqlite_backend.call("GET", f"/api/v1/plans/{plan['id']}", TENANT).json()
    assert again["name"] == "Checked" and again["spec"]["projects"]["keys"] == ["PLAT"]
    # a change that does not touch the spec asks Jira nothing and goes through
    renamed = sqlite_backend.call("PATCH", f"/api/v1/plans/{plan['id']}", TENANT, json={"name": "Renamed"})
    assert renamed.status_code == 200


def test_without_credentials_the_keys_cannot_be_checked_and_the_plan_is_refused(sqlite_backend, sandbox_site):
    sqlite_backend.install(TENANT, sandbox_site.url)
    r = sqlite_backend.call("POST", f"/api/v1/organisations/{TENANT}/plans", TENANT, json=body(["PLAT"]))
    assert r.status_code == 400
    assert "set the API token" in r.json()["error"]["fields"]["spec"]["projects"]["keys"][0]
    # a plan of all projects without JQL needs no Jira at all
    whole = {**body([]), "spec": {"projects": {"mode": "all"}}}
    assert (
        sqlite_backend.call("POST", f"/api/v1/organisations/{TENANT}/plans", TENANT, json=whole).status_code
        == 201
    )


def test_an_unreachable_jira_is_a_502_naming_the_fields_and_nothing_is_stored(sqlite_backend):
    site = start_sandbox(projects=1, issues_per_project=1, seed=3)
    try:
        with_account(sqlite_backend, site.url)
    finally:
        site.stop()  # the site goes away: connections are refused from now on
    before = plans(sqlite_backend)
    r = sqlite_backend.call(
        "POST", f"/api/v1/organisations/{TENANT}/plans", TENANT, json=body(["PLAT"], "labels = x")
    )
    assert r.status_code == 502, r.text
    fields = r.json()["error"]["fields"]["spec"]
    assert "could not be checked" in fields["projects"]["keys"][0]
    assert "cannot be reached" in fields["projects"]["keys"][0]
    assert "could not be checked" in fields["exclude_jql"][0]
    assert plans(sqlite_backend) == before
