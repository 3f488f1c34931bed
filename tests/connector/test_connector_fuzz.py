"""schemathesis fuzzes the connector's JSON endpoints (its /openapi.json) over real HTTP, bounded.

Without credentials every secured operation must answer 401 whatever was generated, and nothing may be
stored; with valid credentials (a context token for /panel/api, a Forge invocation token for
/forge/panel) no answer may be a 500 and every answer must conform to the document. The lifecycle
operations are fuzzed without credentials only: with Atlassian's signature a fuzzed install would point
the tenant at a made-up site, which is what a signed install may do.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter

import jwt
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from connector import openapi
from tests.connector.connector_stack import start_stack

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
AUTHENTICATED = ("/panel/api/", "/forge/panel/")
FAST, SLOW = 30, 300
STATS: Counter = Counter()
_lock = threading.Lock()


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory):
    stack = start_stack(tmp_path_factory.mktemp("fuzz"))
    stack.install()
    info = stack.info()
    yield stack, info
    stack.stop()
    if os.environ.get("KEEPSTONE_FUZZ_REPORT"):
        with open(os.environ["KEEPSTONE_FUZZ_REPORT"], "a") as f:
            f.write(json.dumps(dict(STATS)) + "\n")


# The document the connector serves at /openapi.json (the stack is checked to serve this very one).
schema = schemathesis.openapi.from_dict(openapi.document())
# Lifecycle and public operations are fuzzed without credentials only: a validly signed install may point
# the tenant at any site, which nothing here may contact.
authenticated_schema = schema.include(path_regex="^(" + "|".join(AUTHENTICATED) + ")")


def test_the_connector_serves_the_fuzzed_document(fuzz_stack):
    stack, _ = fuzz_stack
    served = requests.get(stack.url + "/openapi.json", timeout=10).json()
    assert {**served, "servers": []} == {**openapi.document(), "servers": []}


def _tenant_rows(stack) -> list:
    from connector.tenants import Tenant

    with stack.tenants().sessions() as s:
        return sorted(
            (t.cloud_id, t.client_key, t.sealed_secret, t.installed, t.enabled) for t in s.query(Tenant)
        )


ROUTING_404 = "No such resource."


def _routes(stack, path: str) -> bool:
    """Whether the connector routes `path` (as the server will see it: decoded, dot segments resolved)."""
    import posixpath
    from urllib.parse import unquote

    from werkzeug.exceptions import MethodNotAllowed, NotFound

    seen = posixpath.normpath(unquote(path)).rstrip("/") or "/"
    try:
        stack.app.url_map.bind("127.0.0.1").match(seen, method="GET")
    except MethodNotAllowed:
        return True
    except NotFound:
        return False
    return True


def _count(case, status: int, phase: str) -> None:
    with _lock:
        STATS[f"{phase} examples"] += 1
        STATS[f"{phase} operations:{case.operation.label}"] = 1
        if status >= 500:
            STATS[f"{phase} 5xx"] += 1


def _without_credentials(case, fuzz_stack) -> None:
    stack, _ = fuzz_stack
    before = _tenant_rows(stack)
    if case.headers:
        case.headers.pop("Authorization", None)
    resp = case.call(base_url=stack.url, timeout=30)
    _count(case, resp.status_code, "anonymous")
    case.validate_response(resp, checks=CHECKS)
    if case.method.upper() != case.operation.method.upper():
        # schemathesis also tries methods the document does not have: refused by routing (405) or, where
        # one route serves several actions, by the credential check that comes before the action lookup.
        assert resp.status_code in (401, 405), (case.operation.label, case.method, resp.status_code)
    elif resp.status_code == 404 and resp.json()["error"]["message"] == ROUTING_404:
        # A generated path parameter that makes the URL address no route (`..`, an encoded `/` that
        # empties it): routing's 404, which names no object and reveals nothing.
        assert not _routes(stack, case.formatted_path), case.formatted_path
    elif case.operation.definition.raw.get("security"):
        assert resp.status_code == 401, (case.operation.label, resp.status_code, resp.text[:200])
    assert _tenant_rows(stack) == before


def _with_credentials(case, fuzz_stack) -> None:
    stack, info = fuzz_stack
    if case.operation.path.startswith("/panel/"):
        now = int(time.time())
        claims = {
            "iss": info["clientKey"],
            "sub": "5b10admin",
            "iat": now,
            "exp": now + 120,
            "qsh": "context-qsh",
        }
        auth = "JWT " + jwt.encode(claims, info["sharedSecret"], algorithm="HS256")
    else:
        fit = requests.post(stack.site.url + "/_sandbox/apps/keepstone/fit", json={}, timeout=10).json()[
            "token"
        ]
        auth = f"Bearer {fit}"
    case.headers = {**(case.headers or {}), "Authorization": auth}
    resp = case.call(base_url=stack.url, timeout=60)
    _count(case, resp.status_code, "authenticated")
    case.validate_response(resp, checks=CHECKS)
    if case.method.upper() == case.operation.method.upper():
        assert resp.status_code not in (401, 403), (case.operation.label, resp.text[:200])


FUZZ = settings(
    max_examples=FAST,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)


@schema.parametrize()
@FUZZ
def test_fuzz_without_credentials(case, fuzz_stack):
    _without_credentials(case, fuzz_stack)


@authenticated_schema.parametrize()
@FUZZ
def test_fuzz_with_credentials(case, fuzz_stack):
    _with_credentials(case, fuzz_stack)


@pytest.mark.slow
@schema.parametrize()
@settings(FUZZ, max_examples=SLOW, derandomize=False)
def test_fuzz_without_credentials_at_length(case, fuzz_stack):
    _without_credentials(case, fuzz_stack)


@pytest.mark.slow
@authenticated_schema.parametrize()
@settings(FUZZ, max_examples=SLOW, derandomize=False)
def test_fuzz_with_credentials_at_length(case, fuzz_stack):
    _with_credentials(case, fuzz_stack)
