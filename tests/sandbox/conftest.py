"""Fixtures for the sandbox's tests: an HTTP helper that checks every answer against the OpenAPI specs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN, start_sandbox
from tests.sandbox.validate import check

VIEWER = ("viewer@example.com", "sandbox-viewer-token")


class Jira:
    """A logged-in client for one sandbox site; every answer is validated against the spec."""

    def __init__(self, url: str, auth: tuple[str, str] | None = (ADMIN_EMAIL, ADMIN_TOKEN)) -> None:
        self.url = url
        self.http = requests.Session()
        if auth:
            self.http.auth = auth

    def call(
        self, method: str, path: str, *, expect: int | None = 200, validate: bool = True, **kw
    ) -> requests.Response:
        """Send one request; assert the status (if given) and validate the answer."""
        resp = self.http.request(method, self.url + path, timeout=30, **kw)
        if expect is not None:
            assert resp.status_code == expect, f"{method} {path} -> {resp.status_code}: {resp.text[:500]}"
        if validate:
            check(resp)
            if resp.content and resp.headers.get("Content-Type", "").startswith("application/json"):
                assert_self_links(resp.json(), self.url)
        return resp

    def get(self, path: str, **kw) -> Any:
        """GET a path and return its JSON (status 200 unless `expect` says otherwise)."""
        resp = self.call("GET", path, **kw)
        return resp.json() if resp.content else None

    def post(self, path: str, body: Any = None, **kw) -> Any:
        """POST JSON and return the JSON answer (or None when empty)."""
        resp = self.call("POST", path, json=body, **kw)
        return resp.json() if resp.content else None

    def put(self, path: str, body: Any = None, **kw) -> Any:
        """PUT JSON and return the JSON answer (or None when empty)."""
        resp = self.call("PUT", path, json=body, **kw)
        return resp.json() if resp.content else None

    def delete(self, path: str, **kw) -> requests.Response:
        """DELETE a path (204 unless `expect` says otherwise)."""
        kw.setdefault("expect", 204)
        return self.call("DELETE", path, **kw)

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call the sandbox's own test API under /_sandbox/ (not in the specs, no auth)."""
        resp = requests.request(method, f"{self.url}/_sandbox/{path}", json=body, timeout=60)
        assert resp.status_code < 300, f"{method} /_sandbox/{path} -> {resp.status_code}: {resp.text[:300]}"
        return resp.json() if resp.content else None

    def search_all(self, jql: str, page: int = 100, fields: str | None = None) -> list[dict]:
        """Page through /search/jql with nextPageToken to the last page and return every issue."""
        out: list[dict] = []
        token = None
        seen: set[str] = set()
        while True:
            params: dict[str, Any] = {"jql": jql, "maxResults": page}
            if fields:
                params["fields"] = fields
            if token:
                params["nextPageToken"] = token
            body = self.get("/rest/api/3/search/jql", params=params)
            out.extend(body["issues"])
            token = body.get("nextPageToken")
            if not token or body.get("isLast") or not body["issues"]:
                return out
            assert token not in seen, "a page token repeated"
            seen.add(token)


def assert_self_links(node: Any, url: str) -> None:
    """Assert every `self` link in a JSON answer points at the site it came from."""
    if isinstance(node, dict):
        link = node.get("self")
        if isinstance(link, str):
            assert link.startswith(url + "/"), f"self link {link!r} is not on {url}"
        for value in node.values():
            assert_self_links(value, url)
    elif isinstance(node, list):
        for value in node:
            assert_self_links(value, url)


@pytest.fixture(scope="session")
def jira(sandbox_site) -> Jira:
    """The admin's client on the shared read-only site (projects=3, issues_per_project=30, seed=7)."""
    return Jira(sandbox_site.url)


@pytest.fixture(scope="session")
def viewer(sandbox_site) -> Jira:
    """The viewer's client on the shared site (no Browse projects on the last project)."""
    return Jira(sandbox_site.url, VIEWER)


@pytest.fixture
def fresh(fresh_site) -> Jira:
    """The admin's client on a site of the test's own, free to mutate."""
    return Jira(fresh_site.url)


@pytest.fixture
def make_site() -> Iterator:
    """Start extra sites with given SandboxConfig options; stopped after the test."""
    started = []

    def make(**options) -> Jira:
        site = start_sandbox(**options)
        started.append(site)
        return Jira(site.url)

    yield make
    for site in started:
        site.stop()
