"""Finding issues: /search/jql with cursor paging, approximate count, bulk fetch, and the removed legacy search."""

from __future__ import annotations

import hashlib
from typing import Any

from flask import Blueprint, jsonify, request

from sandbox import jql, render
from sandbox.model import Issue
from sandbox.web import (
    JiraHTTPError,
    base,
    caller,
    decode_token,
    encode_token,
    json_body,
    list_arg,
    site,
    state,
)

bp = Blueprint("platform_search", __name__)
ID_ONLY_MAX = 5000
FEW_FIELDS_MAX = 1000
FULL_MAX = 100
LEGACY_GONE = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. A full "
    "migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
)


def matching_issues(text: str) -> list[Issue]:
    """Every live issue the caller may browse that a JQL query selects, in the query's order."""
    if not text or not text.strip():
        raise JiraHTTPError(
            400, "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
        )
    try:
        query = jql.parse(text)
        if not query.bounded:
            raise JiraHTTPError(
                400,
                "Unbounded JQL queries are not allowed here. Please add a search restriction to your query.",
            )
        predicate = jql.compile_query(site(), query, caller().account_id)
        scope = jql.project_scope(query, site())
        s = site()
        project_ids = scope if scope is not None else [p.id for p in s.projects.values()]
        found: list[Issue] = []
        for pid in sorted(project_ids):
            project = s.projects[pid]
            # Archived projects keep their issues, but search does not show them (as in Jira).
            if project.deleted or project.archived or caller().account_id in project.hidden_from:
                continue
            for issue_id in s.issues_by_project.get(pid, []):
                issue = s.issues[issue_id]
                if not issue.deleted and predicate(issue):
                    found.append(issue)
        key = jql.sort_key(s, query.order)
        if key is not None:
            found.sort(key=key)
        return found
    except jql.JqlError as e:
        raise JiraHTTPError(400, str(e)) from None


def _page_limit(fields: list[str], expand: set[str]) -> int:
    if not fields or set(fields) <= {"id", "key"}:
        return ID_ONLY_MAX
    if (
        len(fields) <= 5
        and not any(f.startswith("*") for f in fields)
        and not expand & {"changelog", "renderedFields"}
    ):
        return FEW_FIELDS_MAX
    return FULL_MAX


def _search(
    text: str, token: str | None, max_results: int, fields: list[str], expand: set[str]
) -> dict[str, Any]:
    digest = hashlib.sha1(f"{text}|{','.join(fields)}".encode()).hexdigest()[:12]
    offset = 0
    if token:
        data = decode_token(token)
        if data.get("q") != digest or not isinstance(data.get("o"), int):
            raise JiraHTTPError(400, "The provided next page token is invalid or expired.")
        offset = data["o"]
    limit = max(1, min(max_results, _page_limit(fields, expand)))
    found = matching_issues(text)
    page = found[offset : offset + limit]
    only_ids = not fields or set(fields) <= {"id", "key"}
    issues = []
    for issue in page:
        if only_ids and not fields:
            issues.append({"id": str(issue.id)})
        else:
            issues.append(render.issue_bean(site(), base(), issue, fields, expand))
    out: dict[str, Any] = {"issues": issues, "isLast": offset + limit >= len(found)}
    if not out["isLast"]:
        out["nextPageToken"] = encode_token({"o": offset + limit, "q": digest})
    if "names" in expand:
        out["names"] = {}
    return out


def _max_results(raw: Any) -> int:
    try:
        value = int(raw if raw is not None else 50)
    except (TypeError, ValueError):
        raise JiraHTTPError(400, f"The value '{raw}' is not valid for the parameter 'maxResults'.") from None
    if value < 0:
        raise JiraHTTPError(400, "The value of 'maxResults' must be at least 0.")
    return value


@bp.get("/rest/api/3/search/jql")
def search_jql_get():
    return jsonify(
        _search(
            request.args.get("jql", ""),
            request.args.get("nextPageToken"),
            _max_results(request.args.get("maxResults")),
            list_arg("fields"),
            set(list_arg("expand")),
        )
    )


@bp.post("/rest/api/3/search/jql")
def search_jql_post():
    body = json_body()
    expand = body.get("expand") or ""
    expand_set = set(expand.split(",")) if isinstance(expand, str) else set(expand)
    fields = body.get("fields") or []
    if not isinstance(fields, list):
        raise JiraHTTPError(400, "'fields' must be a list of field ids.")
    return jsonify(
        _search(
            str(body.get("jql") or ""),
            body.get("nextPageToken"),
            _max_results(body.get("maxResults")),
            [str(f) for f in fields],
            {e.strip() for e in expand_set if e.strip()},
        )
    )


@bp.post("/rest/api/3/search/approximate-count")
def approximate_count():
    return jsonify({"count": len(matching_issues(str(json_body().get("jql") or "")))})


@bp.post("/rest/api/3/issue/bulkfetch")
def bulkfetch():
    body = json_body()
    ids = body.get("issueIdsOrKeys")
    if not isinstance(ids, list) or not ids:
        raise JiraHTTPError(400, "The list of issue IDs or keys must not be empty.")
    fields = [str(f) for f in body.get("fields") or ["*navigable"]]
    expand = body.get("expand") or []
    expand_set = set(expand.split(",")) if isinstance(expand, str) else set(expand)
    # 1000 issues a call only for <= 100 named fields and no heavy expansions; 100 otherwise.
    few_named = len(fields) <= 100 and not any(f.startswith("*") for f in fields)
    limit = 1000 if few_named and not expand_set & {"changelog", "renderedFields"} else 100
    if len(ids) > limit:
        raise JiraHTTPError(400, f"The number of issue IDs or keys must be between 1 and {limit}.")
    issues, errors = [], []
    s = site()
    for ident in ids:
        issue = s.issue(str(ident))
        if issue is None or caller().account_id in s.projects[issue.project_id].hidden_from:
            errors.append(
                {
                    "id": str(ident),
                    "errorMessage": "Issue does not exist or you do not have permission to see it.",
                }
            )
            continue
        issues.append(render.issue_bean(s, base(), issue, fields, expand_set))
    out: dict[str, Any] = {"issues": issues}
    if errors:
        out["issueErrors"] = errors
    return jsonify(out)


@bp.route("/rest/api/3/search", methods=["GET", "POST"])
@bp.route("/rest/api/2/search", methods=["GET", "POST"])
def legacy_search():
    if state().config.flavor == "datacenter" and request.path.startswith("/rest/api/2/"):
        return _datacenter_search()
    raise JiraHTTPError(410, LEGACY_GONE)


def _datacenter_search():
    """Data Center's offset search: startAt, maxResults, total."""
    if request.method == "POST":
        body = json_body()
        text, start, limit = (
            str(body.get("jql") or ""),
            int(body.get("startAt") or 0),
            _max_results(body.get("maxResults")),
        )
        fields = [str(f) for f in body.get("fields") or []]
    else:
        text = request.args.get("jql", "")
        start = int(request.args.get("startAt") or 0)
        limit, fields = _max_results(request.args.get("maxResults")), list_arg("fields")
    found = matching_issues(text) if text.strip() else []
    limit = min(limit, 1000)
    page = found[start : start + limit]
    return jsonify(
        {
            "expand": "schema,names",
            "startAt": start,
            "maxResults": limit,
            "total": len(found),
            "issues": [render.issue_bean(site(), base(), i, fields or ["*navigable"], set()) for i in page],
        }
    )


@bp.post("/rest/api/3/jql/parse")
def jql_parse():
    """Parse and validate JQL queries as Jira does: each query answered with its errors, or its structure.

    strict and warn check the field names and values against the site (compile_query), none only the
    syntax. The structure is answered empty ({}): nothing here reads the syntax tree."""
    validation = request.args.get("validation", "strict")
    if validation not in ("strict", "warn", "none"):
        raise JiraHTTPError(400, f"The value '{validation}' is not valid for the parameter 'validation'.")
    queries = json_body().get("queries")
    if not isinstance(queries, list) or not queries or not all(isinstance(q, str) and q for q in queries):
        raise JiraHTTPError(400, "'queries' must be a non-empty list of JQL queries.")
    out: list[dict[str, Any]] = []
    for text in queries:
        try:
            query = jql.parse(text)
            if validation != "none":
                jql.compile_query(site(), query, caller().account_id)
        except jql.JqlError as e:
            out.append({"query": text, "errors": [str(e)]})
            continue
        out.append({"query": text, "structure": {}})
    return jsonify({"queries": out})
