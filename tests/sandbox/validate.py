"""Check sandbox responses against Atlassian's OpenAPI specs in reference/ (platform v3 and agile).

`check(resp)` finds the operation by method and path template, takes the response schema for the status,
and validates the JSON body with an OpenAPI 3.0 schema validator that resolves `#/components/...` in the
spec the operation came from. It returns the matched "METHOD /template" so tests can count coverage.
"""

from __future__ import annotations

import json
import os
import re
import threading
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from openapi_schema_validator import OAS30Validator

REFERENCE = Path(__file__).resolve().parents[2] / "reference"
SPECS = ("jira-platform-rest-v3.openapi.json", "jira-software-rest-agile.openapi.json")
# Where the spec's shape disagrees with what Jira Cloud answers, the live behaviour wins: the body is an
# array of the schema's objects (documented by the spec's own example).
ARRAY_OF_SCHEMA = {("get", "/rest/api/3/issue/{issueIdOrKey}/remotelink")}
# Endpoints Atlassian removed after the spec was written: they answer 410 in Jira's error shape.
REMOVED = {("get", "/rest/api/3/search"), ("post", "/rest/api/3/search")}
# A schema the spec gets wrong (its property names are the descriptions), fixed as its own examples show.
SCHEMA_FIXES = {
    "DashboardGadgetPosition": {
        "type": "object",
        "properties": {"row": {"type": "integer"}, "column": {"type": "integer"}},
        "required": ["row", "column"],
        "additionalProperties": False,
    }
}
_lock = threading.Lock()


@cache
def _spec(name: str) -> dict[str, Any]:
    return json.loads((REFERENCE / name).read_text())


@cache
def _routes() -> list[tuple[re.Pattern[str], str, str, int]]:
    """Return (regex, template, spec name, number of parameters), most specific first."""
    out = []
    for name in SPECS:
        for template in _spec(name)["paths"]:
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            out.append((re.compile(f"^{pattern}$"), template, name, template.count("{")))
    out.sort(key=lambda r: (r[3], -len(r[1])))
    return out


def find_operation(method: str, path: str) -> tuple[str, str] | None:
    """Return (spec name, path template) of the documented operation matching method and path."""
    for v2 in ("/rest/api/2/", "/rest/api/latest/"):  # v2 and latest answer v3's operations
        if path.startswith(v2):
            path = "/rest/api/3/" + path[len(v2) :]
    for regex, template, name, _ in _routes():
        if regex.match(path) and method.lower() in _spec(name)["paths"][template]:
            return name, template
    return None


@cache
def _validator(name: str, template: str, method: str, status: str) -> OAS30Validator | None:
    responses = _spec(name)["paths"][template][method]["responses"]
    response = responses.get(status) or responses.get(status[0] + "XX") or responses.get("default")
    if not response:
        raise AssertionError(f"{method.upper()} {template} does not document status {status}")
    schema = (response.get("content") or {}).get("application/json", {}).get("schema")
    if schema is None:
        return None
    if (method, template) in ARRAY_OF_SCHEMA:
        schema = {"type": "array", "items": schema}
    components = _spec(name)["components"]
    schemas = {
        **components["schemas"],
        **{k: v for k, v in SCHEMA_FIXES.items() if k in components["schemas"]},
    }
    root = {**schema, "components": {**components, "schemas": schemas}}
    return OAS30Validator(root)


def check(resp: requests.Response) -> str:
    """Validate one response against the spec; return "METHOD /template" that it matched."""
    method = resp.request.method.lower()
    path = urlsplit(resp.url if not resp.history else resp.history[0].url).path
    found = find_operation(method, path)
    assert found, f"{method.upper()} {path} is not in the OpenAPI specs"
    name, template = found
    status = str(resp.history[0].status_code if resp.history else resp.status_code)
    if status == "410" and (method, template) in REMOVED:
        assert_error_shape(resp)
        _record(f"{method.upper()} {template}", status)
        return f"{method.upper()} {template}"
    validator = _validator(name, template, method, status)
    if validator is not None and resp.content and not resp.history:
        body = resp.json()
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
        assert not errors, (
            f"{method.upper()} {template} {status}: {len(errors)} schema error(s), first at "
            f"{list(errors[0].path)}: {errors[0].message[:400]}"
        )
    if resp.status_code >= 400 and resp.content and (method, template) not in OWN_ERROR_SHAPE:
        assert_error_shape(resp)
    _record(f"{method.upper()} {template}", status)
    return f"{method.upper()} {template}"


# Operations whose errors answer in their own schema (validated above), not the error collection.
OWN_ERROR_SHAPE = {("post", "/rest/api/3/issue/bulk")}


def assert_error_shape(resp: requests.Response) -> None:
    """Assert the body is Jira's error collection: errorMessages (list) and errors (object)."""
    body = resp.json()
    assert isinstance(body.get("errorMessages"), list), body
    assert isinstance(body.get("errors"), dict), body


def _record(operation: str, status: str) -> None:
    target = os.environ.get("KEEPSTONE_SPEC_COVERAGE")
    if target:
        with _lock, open(target, "a") as fh:
            fh.write(f"{operation} {status}\n")


def documented_operations() -> set[str]:
    """Return every "METHOD /template" in both specs."""
    out = set()
    for name in SPECS:
        for template, item in _spec(name)["paths"].items():
            for method in item:
                if method in {"get", "post", "put", "delete", "patch"}:
                    out.add(f"{method.upper()} {template}")
    return out


# Issue fields are free-form in IssueBean; these are the spec's schemas for the system fields' values.
FIELD_SCHEMAS = {
    "status": "StatusDetails",
    "issuetype": "IssueTypeDetails",
    "project": "ProjectDetails",
    "assignee": "UserDetails",
    "reporter": "UserDetails",
    "creator": "UserDetails",
    "priority": "Priority",
    "resolution": "Resolution",
    "comment": "PageOfComments",
    "worklog": "PageOfWorklogs",
    "timetracking": "TimeTrackingDetails",
    "votes": "Votes",
    "watches": "Watchers",
}
LIST_FIELD_SCHEMAS = {
    "attachment": "Attachment",
    "issuelinks": "IssueLink",
    "components": "ProjectComponent",
    "fixVersions": "Version",
    "versions": "Version",
}


@cache
def _component_validator(name: str) -> OAS30Validator:
    spec = _spec(SPECS[0])
    return OAS30Validator({"$ref": f"#/components/schemas/{name}", "components": spec["components"]})


def check_issue_fields(issue: dict[str, Any]) -> None:
    """Validate the system fields of one issue document against their component schemas, and its ADF."""
    fields = issue.get("fields") or {}
    for name, value in fields.items():
        if value is None:
            continue
        if name in FIELD_SCHEMAS:
            items = [value]
            schema = FIELD_SCHEMAS[name]
        elif name in LIST_FIELD_SCHEMAS:
            assert isinstance(value, list), f"{issue.get('key')}: {name} is not a list"
            items = value
            schema = LIST_FIELD_SCHEMAS[name]
        else:
            if isinstance(value, dict) and value.get("type") == "doc":
                assert_adf(value)
            continue
        for item in items:
            errors = list(_component_validator(schema).iter_errors(item))
            if name == "issuelinks":
                # In an issue's fields each link names only the other side (the spec's `required` is for
                # creating a link): exactly one of inwardIssue/outwardIssue is there.
                assert ("inwardIssue" in item) != ("outwardIssue" in item), item
                errors = [e for e in errors if not (e.validator == "required" and "wardIssue" in e.message)]
            assert not errors, f"{issue.get('key')}: fields.{name} vs {schema}: {errors[0].message[:300]}"
    if fields.get("description") is not None:
        assert_adf(fields["description"])


def assert_adf(doc: Any) -> None:
    """Assert the shape of an Atlassian Document Format document: a versioned doc of typed nodes."""
    assert isinstance(doc, dict) and doc.get("type") == "doc" and doc.get("version") == 1, doc

    def walk(node: Any) -> None:
        assert isinstance(node, dict) and isinstance(node.get("type"), str), node
        if node["type"] == "text":
            assert isinstance(node.get("text"), str) and node["text"], node
        for child in node.get("content", []):
            walk(child)

    assert isinstance(doc.get("content"), list)
    for child in doc["content"]:
        walk(child)
