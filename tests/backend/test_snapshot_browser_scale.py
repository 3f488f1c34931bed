"""The snapshot browser at scale, on SQLite and PostgreSQL: a catalog filled straight through the ORM (a
snapshot of 20,000 issues, many projects), then /snapshots and a snapshot's issue list over real HTTP.
The pages must say exactly what the Python reference of the old in-memory code says (key order, pages,
search by key or summary in any case, facet filters, the filter choices), and the SQL statements a request
issues must be a fixed few: as many for 40 projects as for 2, for 20,000 issues as for 30, and none of
them may read a snapshot's issue rows without a bound."""

from __future__ import annotations

import hashlib
import html
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from sqlalchemy import event, insert, select

from backend.db.models import CatalogIssue, CatalogSnapshot, CatalogText, Organisation
from tests.backend.conftest import Backend
from tests.backend.test_runs_page import browser

TENANT = "11111111-2222-4333-8444-555555555555"
OTHER = "99999999-2222-4333-8444-555555555555"
PROJECT = "PLAT"
BIG = 20_000
PAGE = 100
STATUSES = ["To Do", "In Progress", "Done", "Über-prüfung"]
TYPES = ["Bug", "Task", "Story"]
BASE = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _db(b: Backend):
    return b.app.extensions["keepstone"].db


def _org_id(b: Backend, cloud_id: str) -> int:
    with _db(b).session() as s:
        return s.scalar(select(Organisation.id).where(Organisation.cloud_id == cloud_id))


def _sid(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


def _snapshot(b: Backend, org: int, project: str, label: str, when: datetime, issues: int, size: int) -> int:
    with _db(b).session() as s:
        snap = CatalogSnapshot(organisation_id=org, repository="r-" + label[:8], snapshot_id=_sid(label),
                               project=project, time=when, issues=issues, size=size, counts={})  # fmt: skip
        s.add(snap)
        s.commit()
        return snap.id


@contextmanager
def statements(b: Backend) -> Iterator[list[str]]:
    """The SQL statements on the catalog's tables the backend's engine sends while inside (the server runs
    in this process). The sign-in's own statements are left out: a session is touched now and then, not on
    every request, so their number depends on the clock, not on the page."""
    seen: list[str] = []

    def count(_conn, _cursor, statement, _parameters, _context, _many) -> None:
        if "catalog_" in statement:
            seen.append(statement)

    engine = _db(b).engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _get(http: requests.Session, b: Backend, path: str, **params: str) -> str:
    r = http.get(b.url + path, params=params, timeout=60)
    assert r.status_code == 200, (path, params, r.status_code, r.text[:500])
    return r.text


# --- /snapshots: one row a project, a fixed number of statements however many projects ---


def _projects_shown(text: str) -> dict[str, dict[str, str]]:
    out = {}
    for key, cells in re.findall(r'<tr data-project="([^"]+)">(.*?)</tr>', text, re.S):
        link = re.search(r"/snapshots/[A-Z0-9_]+/([0-9a-f]{64})", cells)
        shown = dict(re.findall(r'<td data-label="([^"]+)">([^<]*)</td>', cells))
        out[key] = {"snapshots": shown["Snapshots"], "newest": link.group(1) if link else "",
                    "issues": shown["Issues in the newest"]}  # fmt: skip
    return out


def test_the_projects_page_is_one_grouped_question(backend):
    backend.install(TENANT, "https://acme.atlassian.net")
    backend.install(OTHER, "https://other.atlassian.net")
    org, other = _org_id(backend, TENANT), _org_id(backend, OTHER)
    http = browser(backend)
    expected: dict[str, dict[str, str]] = {}

    def add_project(project: str, n: int) -> None:
        """n snapshots a day apart; the newest has the most issues. The last two share the newest time:
        the one written later (the higher row id) is the newest, as the old per-project query said."""
        newest = ""
        for i in range(n):
            when = BASE + timedelta(days=min(i, n - 2) if n > 1 else i)
            label = f"{project}-{i}"
            _snapshot(backend, org, project, label, when, issues=10 * (i + 1), size=1000 * (i + 1))
            newest = _sid(label)
        expected[project] = {"snapshots": str(n), "newest": newest, "issues": str(10 * n)}

    add_project("ALPHA", 1)
    add_project("BETA", 3)
    _snapshot(backend, other, "SECRET", "other-org", BASE + timedelta(days=30), issues=5, size=5)
    _get(http, backend, "/snapshots")  # warm: first-request work is not the page's
    with statements(backend) as few:
        text = _get(http, backend, "/snapshots")
    assert _projects_shown(text) == expected
    assert "SECRET" not in text

    for n in range(40):
        add_project(f"P{n:02d}", 1 + n % 4)
    with statements(backend) as many:
        text = _get(http, backend, "/snapshots")
    shown = _projects_shown(text)
    assert list(shown) == sorted(expected) and shown == expected
    assert len(many) == len(few) <= 2, (len(few), len(many), many)


# --- a snapshot's issues: searched, filtered and paged in SQL ---


@dataclass
class Issue:
    n: int
    key: str
    summary: str
    facets: dict[str, Any] | None  # None: no text row, or a text row without facets


def _issue(n: int) -> Issue:
    summary = f"Issue number {n}"
    if n % 250 == 6:
        summary = f"Quarterly MARMALADE audit {n}"
    elif n % 2000 == 3:
        summary = f"ÄNDERUNG der Regeln {n}"
    elif n == 12345:
        summary = "50%_off sale"
    elif n == 4321:
        summary = "50 percent off sale"  # what % and _ would match if they were wildcards
    elif n == 4322:
        summary = "50%xoff sale"
    facets: dict[str, Any] | None = {"status": STATUSES[n % 4], "type": TYPES[n % 3], "labels": ["alpha"]}
    if n % 11:
        facets["assignee"] = f"User {n % 7}"
    if n % 50 == 0 or n % 97 == 0:
        facets = None
    return Issue(n, f"{PROJECT}-{n}", summary, facets)


def _fill(b: Backend, org: int, snapshot: int, issues: list[Issue], tag: str) -> None:
    """Issue rows (in a shuffled order, so that key order is the query's doing) and their texts, in bulk.
    An issue with n % 50 == 0 has no text row at all; n % 97 == 0 a text row without facets."""
    order = list(issues)
    random.Random(7).shuffle(order)
    texts = [
        {
            "version": f"{tag}-{i.n}",
            "organisation_id": org,
            "summary": i.summary,
            "description": "",
            "comments": "",
            "facets": i.facets,
        }
        for i in order
        if i.n % 50
    ]
    rows = [
        {
            "snapshot": snapshot,
            "key": i.key,
            "issue_id": str(10_000 + i.n),
            "summary": i.summary,
            "updated": "2026-10-01T10:00:00.000+0000",
            "version": f"{tag}-{i.n}",
        }
        for i in order
    ]
    with _db(b).session() as s:
        for start in range(0, len(rows), 5000):
            if texts[start : start + 5000]:
                s.execute(insert(CatalogText), texts[start : start + 5000])
            s.execute(insert(CatalogIssue), rows[start : start + 5000])
        s.commit()


def reference(issues: list[Issue], q: str = "", **facets: str) -> tuple[list[str], dict[str, list[str]]]:
    """What the old code showed (all matching keys in order, the filter choices): in Python, in memory."""
    options = {
        f: sorted({(i.facets or {}).get(f) for i in issues} - {None}) for f in ("status", "type", "assignee")
    }
    chosen = {f: v for f, v in facets.items() if f in options and v in options[f]}
    needle = q.strip().casefold()
    found = [
        i
        for i in issues
        if (not needle or needle in i.key.casefold() or needle in i.summary.casefold())
        and all((i.facets or {}).get(f) == v for f, v in chosen.items())
    ]
    return [i.key for i in sorted(found, key=lambda i: (len(i.key), i.key))], options


@dataclass
class Shown:
    keys: list[str]
    total: int
    options: dict[str, list[str]]
    selected: dict[str, str]
    next_page: str | None
    cells: dict[str, dict[str, str]]


def _shown(text: str) -> Shown:
    keys = re.findall(r'<tr data-key="([^"]+)">', text)
    total = re.search(r'<p class="muted">(\d+) of \d+ issues', text)
    options, selected = {}, {}
    for name, body in re.findall(r'<select id="f-(\w+)" name="\w+">(.*?)</select>', text, re.S):
        values = [html.unescape(v) for v in re.findall(r'<option value="([^"]*)"', body)]
        options[name] = [v for v in values if v]
        chosen = re.search(r'<option value="([^"]*)" selected>', body)
        if chosen:
            selected[name] = html.unescape(chosen.group(1))
    more = re.search(r'href="([^"]*page=\d+[^"]*)">Next issues', text)
    cells = {}
    for key, row in re.findall(r'<tr data-key="([^"]+)">(.*?)</tr>', text, re.S):
        found = re.findall(r'<td data-label="(Status|Type|Assignee|Summary)">([^<]*)</td>', row)
        cells[key] = {label: html.unescape(value) for label, value in found}
    return Shown(keys, int(total.group(1)) if total else -1, options, selected,
                 html.unescape(more.group(1)) if more else None, cells)  # fmt: skip


def test_a_snapshot_of_20000_issues_is_searched_filtered_and_paged_in_sql(backend):
    backend.install(TENANT, "https://acme.atlassian.net")
    org = _org_id(backend, TENANT)
    http = browser(backend)
    big = [_issue(n) for n in range(1, BIG + 1)]
    small = [_issue(n) for n in range(1, 31)]
    for i in small:  # an older snapshot: its own status and assignee must not leak into the big one's choices
        i.facets = None if i.facets is None else {**i.facets, "status": "Archived", "assignee": "Old Timer"}
    big_id = _snapshot(backend, org, PROJECT, "big", BASE + timedelta(days=2), issues=BIG, size=1)
    small_id = _snapshot(backend, org, PROJECT, "small", BASE, issues=len(small), size=1)
    _fill(backend, org, big_id, big, "big")
    _fill(backend, org, small_id, small, "small")
    path = f"/snapshots/{PROJECT}/{_sid('big')}"

    def check(**params: str) -> Shown:
        """The page as served against the reference: its keys, the total, the choices, the next link."""
        shown = _shown(_get(http, backend, path, **params))
        everything, options = reference(
            big, params.get("q", ""), **{k: v for k, v in params.items() if k != "q"}
        )
        number = (
            int(params["page"])
            if params.get("page", "").isascii() and params.get("page", "").isdigit()
            else 0
        )
        assert shown.total == len(everything), params
        assert shown.keys == everything[number * PAGE : (number + 1) * PAGE], params
        assert shown.options == options, params
        assert (shown.next_page is not None) == ((number + 1) * PAGE < len(everything)), params
        return shown

    # Page 1 and later pages: key order (PLAT-2 before PLAT-10), 100 a page, the total of all 20,000.
    first = check()
    assert first.keys == [f"{PROJECT}-{n}" for n in range(1, 101)] and first.total == BIG
    assert first.next_page is not None and "page=1" in first.next_page
    assert check(page="1").keys[0] == f"{PROJECT}-101"
    assert check(page="150").keys == [f"{PROJECT}-{n}" for n in range(15001, 15101)]
    last = check(page="199")
    assert last.keys[-1] == f"{PROJECT}-{BIG}" and last.next_page is None
    assert check(page="200").keys == []
    # The row of an issue shows its facets; one without a text row shows blanks, as before.
    assert first.cells[f"{PROJECT}-2"] == {"Summary": "Issue number 2", "Status": "Done", "Type": "Story",
                                            "Assignee": "User 2"}  # fmt: skip
    assert first.cells[f"{PROJECT}-50"] == {"Summary": "Issue number 50", "Status": "", "Type": "",
                                             "Assignee": ""}  # fmt: skip

    # The filter choices: this snapshot's distinct values only, sorted; no "Archived" of the older one.
    assert first.options == {"status": sorted(STATUSES), "type": sorted(TYPES),
                             "assignee": [f"User {n}" for n in range(7)]}  # fmt: skip

    # A facet filter and a search together: exactly the matching keys, and how many.
    done = check(status="Done", q="marmalade")
    expected = [f"{PROJECT}-{n}" for n in range(6, BIG, 250) if STATUSES[n % 4] == "Done" and n % 97]
    assert done.keys == expected and done.total == len(expected) > 0
    assert done.selected == {"status": "Done"} and done.next_page is None
    assert check(status="Über-prüfung", type="Story", assignee="User 3").total > 0
    # Any case, any letter: "änderung" finds "ÄNDERUNG"; a key by part of it; % and _ are no wildcards.
    assert check(q="änderung").total == BIG // 2000
    assert check(q="  plat-1234 ").keys == [f"{PROJECT}-1234"] + [
        f"{PROJECT}-{n}" for n in range(12340, 12350)
    ]
    assert check(q="50%_off").keys == [f"{PROJECT}-12345"]
    assert check(q="UMBER 19999").keys == [f"{PROJECT}-19999"]
    # A filtered result of several pages pages too.
    bugs = check(type="Bug", page="2")
    assert (
        bugs.total == len([i for i in big if i.facets and i.facets["type"] == "Bug"])
        and len(bugs.keys) == PAGE
    )

    # Bad parameters are ignored as before: an unknown value, a facet that is no filter, a page that is
    # no number or far past the end.
    assert (
        check(status="Nope").total == BIG and _shown(_get(http, backend, path, status="Nope")).selected == {}
    )
    assert check(labels="alpha", colour="red").total == BIG
    assert check(page="abc").keys == first.keys
    assert _shown(_get(http, backend, path, page="²")).keys == first.keys
    assert _shown(_get(http, backend, path, page="-3")).keys == first.keys
    assert _shown(_get(http, backend, path, page="9" * 40)).keys == []
    assert _shown(_get(http, backend, path, page="9" * 5000)).keys == []

    # The statements: the same few for 30 issues as for 20,000, searched and filtered or not, and no
    # statement on the issue rows without a bound (a count, the distinct choices, or a LIMIT).
    counted = {}
    for name, where, params in [
        ("small", f"/snapshots/{PROJECT}/{_sid('small')}", {}),
        ("big", path, {}),
        ("big, filtered", path, {"status": "Done", "type": "Task", "q": "Issue", "page": "3"}),
    ]:
        with statements(backend) as seen:
            _get(http, backend, where, **params)
        counted[name] = len(seen)
        for statement in seen:
            if "catalog_issues" in statement:
                flat = " ".join(statement.split()).lower()
                assert "count(" in flat or "distinct" in flat or " limit " in flat, statement
    assert len(set(counted.values())) == 1 and counted["big"] <= 5, counted
