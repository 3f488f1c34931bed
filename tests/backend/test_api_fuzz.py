"""schemathesis fuzzes the backend's own OpenAPI document over real HTTP, without and with credentials.

Without credentials every operation must answer 401 whatever it is sent. With the connector's token for
a real tenant (its real plan and run ids put into the URLs, so bodies reach validation and storage),
nothing may answer 500 and every answer must match the document. `make test` runs a bounded number of
examples per operation; `make test-slow` runs many more.
"""

from __future__ import annotations

import json

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from backend.api.openapi import build
from tests.backend.conftest import make_backend, stop_backend

TENANT = "11111111-2222-4333-8444-555555555555"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = 30
FUZZ = settings(
    deadline=None,
    derandomize=True,  # the same examples every run: a red CI is reproducible
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory, issuer, sandbox_site):
    """A backend with one installed tenant, a plan and a finished run; its document loaded by schemathesis."""
    # Storage endpoints and webhooks may name 127.0.0.1 only: nothing a fuzzed storage or channel says can
    # reach another host (email is off: no SMTP server is configured).
    backend = make_backend(
        tmp_path_factory.mktemp("fuzz"),
        issuer,
        storage_hosts="127.0.0.1",
        storage_http_hosts="127.0.0.1",
        webhook_hosts="127.0.0.1",
        webhook_http_hosts="127.0.0.1",
    )
    backend.install(TENANT, sandbox_site.url)
    plan = backend.call("GET", f"/api/v1/organisations/{TENANT}/plans", TENANT).json()["items"][0]
    run = backend.call("POST", f"/api/v1/organisations/{TENANT}/runs", TENANT, json={}).json()
    backend.wait_for_run(TENANT, run["id"])
    storage = backend.call(
        "POST",
        f"/api/v1/organisations/{TENANT}/storages",
        TENANT,
        json={"name": "fuzz", "kind": "local", "location": {"path": "fuzz"}},
    ).json()
    channel = backend.call(
        "POST",
        f"/api/v1/organisations/{TENANT}/notifications/channels",
        TENANT,
        json={"name": "fuzz", "kind": "webhook", "url": "http://127.0.0.1:9/hook"},  # port 9: nobody
    ).json()
    backend.ids = {
        "cloud_id": TENANT,
        "plan_id": plan["id"],
        "run_id": run["id"],
        "storage_id": storage["id"],
        "channel_id": channel["id"],
    }
    backend.sandbox_url = sandbox_site.url
    yield backend
    stop_backend(backend)


# The document as the code builds it; the fuzz tests also check that the served one is the same.
SCHEMA = schemathesis.openapi.from_dict(build())
OPERATIONS = {op.label: op for op in (result.ok() for result in SCHEMA.get_all_operations())}


def fuzz(label: str, examples: int, test) -> None:
    """Run `test(case)` on `examples` generated cases of one operation."""

    @given(case=OPERATIONS[label].as_strategy())
    @settings(FUZZ, max_examples=examples)
    def run(case) -> None:
        test(case)

    run()


def test_the_served_document_is_the_one_fuzzed(fuzzed):
    served = requests.get(f"{fuzzed.url}/api/v1/openapi.json", timeout=10).json()
    assert served == json.loads(json.dumps(build()))
    assert len(OPERATIONS) >= 13


@pytest.mark.parametrize("label", OPERATIONS)
def test_without_credentials_everything_is_401(fuzzed, label):
    def unauthenticated(case) -> None:
        response = case.call(base_url=fuzzed.url, timeout=10)
        assert response.status_code == 401, (case.method, case.path, response.text[:300])
        assert response.json()["error"]["code"] == "unauthorized"

    fuzz(label, EXAMPLES, unauthenticated)


def as_the_tenant(fuzzed):
    def call(case) -> None:
        # Real ids, so that bodies get past the look-up and reach validation and the database.
        for name in ("cloud_id", "plan_id", "run_id", "storage_id", "channel_id"):
            if name in (case.path_parameters or {}):
                case.path_parameters[name] = fuzzed.ids[name]
        if isinstance(case.body, dict) and "site_url" in case.body:
            # Nothing may contact a host off this machine: the tenant's Jira stays the sandbox.
            case.body["site_url"] = fuzzed.sandbox_url
        case.call_and_validate(
            base_url=fuzzed.url, headers=fuzzed.issuer.headers(TENANT), checks=CHECKS, timeout=30
        )

    return call


@pytest.mark.parametrize("label", OPERATIONS)
def test_with_credentials_nothing_is_a_500_and_every_answer_matches_the_document(fuzzed, label):
    fuzz(label, EXAMPLES, as_the_tenant(fuzzed))


@pytest.mark.slow
@pytest.mark.parametrize("label", OPERATIONS)
def test_many_more_examples_with_credentials(fuzzed, label):
    fuzz(label, 300, as_the_tenant(fuzzed))
