"""Questions the catalog answers without reading a pack.

- `search`: which snapshots held a phrase in an issue's summary, description or comments (SQLite FTS5
  phrase query on the embedded default, PostgreSQL `phraseto_tsquery` over a stored tsvector);
- `issue_history`: every version of one issue across the snapshots, oldest first, and `issue_at`: the
  version a given moment saw (the newest snapshot at or before it);
- `snapshot_issues` and `facet_options`: one snapshot's issues found by key or summary, filtered by facet
  and paged, and the filter choices, all in SQL (a snapshot may hold 40,000 issues).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, literal, or_, select, text, union
from sqlalchemy.orm import Session

from backend.catalog.store import fold
from backend.db.models import CatalogIssue, CatalogSnapshot, CatalogText

MAX_QUERY = 200


class QueryError(ValueError):
    """A search phrase the index cannot take (empty, or too long)."""


@dataclass
class Hit:
    key: str
    summary: str
    version: str
    snippet: str
    snapshots: list[dict[str, Any]]  # {snapshot_id, project, time}, newest first

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "summary": self.summary,
            "version": self.version,
            "snippet": self.snippet,
            "snapshots": self.snapshots,
        }


def _phrase(query: str) -> str:
    """The user's words as one phrase: spaces collapsed, control characters (NUL ends an FTS5 string and
    is no PostgreSQL text) dropped."""
    words = " ".join("".join(" " if unicodedata.category(c) == "Cc" else c for c in query).split())
    if not words:
        raise QueryError("give a word or a phrase to search for")
    if len(words) > MAX_QUERY:
        raise QueryError(f"a search phrase has at most {MAX_QUERY} characters")
    return words


def _versions(s: Session, organisation_id: int, phrase: str, limit: int) -> list[tuple[str, str]]:
    """(version, snippet) of the texts holding the phrase, best first."""
    if s.get_bind().dialect.name == "postgresql":
        # The index holds folded text; the headline is drawn on the original, so it looks for any of the
        # words as typed or folded (an OR query built by websearch_to_tsquery, which never fails on input).
        words = {w for w in (phrase + " " + fold(phrase)).split() if w.lower() != "or"}
        rows = s.execute(
            text(
                "SELECT version, ts_headline('simple', summary || ' ' || description || ' ' || comments, "
                "websearch_to_tsquery('simple', :words), 'MaxWords=18, MinWords=6, StartSel=[, StopSel=]') "
                "FROM catalog_texts, phraseto_tsquery('simple', :phrase) q "
                "WHERE organisation_id = :org AND tsv @@ q ORDER BY ts_rank(tsv, q) DESC LIMIT :limit"
            ),
            {
                "phrase": fold(phrase),
                "words": " or ".join(sorted(words)),
                "org": organisation_id,
                "limit": limit,
            },
        )
    else:
        quoted = '"' + phrase.replace('"', '""') + '"'  # one FTS5 phrase: no operators from the user
        rows = s.execute(
            text(
                "SELECT t.version, snippet(catalog_fts, -1, '[', ']', '…', 12) FROM catalog_fts "
                "JOIN catalog_texts t ON t.rowid = catalog_fts.rowid "
                "WHERE catalog_fts MATCH :q AND t.organisation_id = :org ORDER BY rank LIMIT :limit"
            ),
            {"q": quoted, "org": organisation_id, "limit": limit},
        )
    return [(version, snippet or "") for version, snippet in rows]


def search(s: Session, organisation_id: int, query: str, limit: int = 50) -> list[Hit]:
    found = _versions(s, organisation_id, _phrase(query), limit)
    if not found:
        return []
    rows = s.execute(
        select(
            CatalogIssue.version,
            CatalogIssue.key,
            CatalogIssue.summary,
            CatalogSnapshot.snapshot_id,
            CatalogSnapshot.project,
            CatalogSnapshot.time,
        )
        .join(CatalogSnapshot, CatalogIssue.snapshot == CatalogSnapshot.id)
        .where(
            CatalogSnapshot.organisation_id == organisation_id,
            CatalogIssue.version.in_([v for v, _ in found]),
        )
        .order_by(CatalogSnapshot.time.desc())
    ).all()
    by_version: dict[str, Hit] = {}
    snippets = dict(found)
    for version, key, summary, snapshot_id, project, time in rows:
        hit = by_version.setdefault(version, Hit(key, summary, version, snippets[version], []))
        hit.snapshots.append({"snapshot_id": snapshot_id, "project": project, "time": _iso(time)})
    order = {v: n for n, (v, _) in enumerate(found)}
    return sorted(by_version.values(), key=lambda h: order[h.version])


def issue_history(s: Session, organisation_id: int, key: str) -> list[dict[str, Any]]:
    """Each snapshot that held the issue, oldest first, with its version (equal versions: unchanged)."""
    rows = s.execute(
        select(
            CatalogSnapshot.snapshot_id,
            CatalogSnapshot.time,
            CatalogIssue.version,
            CatalogIssue.summary,
            CatalogIssue.updated,
        )
        .join(CatalogSnapshot, CatalogIssue.snapshot == CatalogSnapshot.id)
        .where(CatalogSnapshot.organisation_id == organisation_id, CatalogIssue.key == key)
        .order_by(CatalogSnapshot.time, CatalogSnapshot.id)
    ).all()
    return [
        {"snapshot_id": sid, "time": _iso(time), "version": version, "summary": summary, "updated": updated}
        for sid, time, version, summary, updated in rows
    ]


def issue_at(s: Session, organisation_id: int, key: str, moment: datetime) -> dict[str, Any] | None:
    """The issue as the newest snapshot at or before `moment` held it, or None."""
    if moment.tzinfo is None:
        raise QueryError("give the moment with its UTC offset, e.g. 2026-11-30T12:00:00+00:00")
    seen = [h for h in issue_history(s, organisation_id, key) if datetime.fromisoformat(h["time"]) <= moment]
    return seen[-1] if seen else None


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


# --- One snapshot's issues, for the snapshot browser: searched, filtered and paged in SQL ---

LIKE_ESCAPE = "\\"


def _like_pattern(needle: str) -> str:
    """`needle` anywhere, its LIKE wildcards (% and _) and the escape character taken literally."""
    escaped = needle.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", LIKE_ESCAPE + "%")
    return "%" + escaped.replace("_", LIKE_ESCAPE + "_") + "%"


def _contains_folded(s: Session, column: ColumnElement[str], needle: str) -> ColumnElement[bool]:
    """`column` holds `needle` whatever the case, for any letter (not only ASCII). SQLite's own lower()
    folds only ASCII, so on SQLite the comparison uses Python's casefold (registered on every connection
    by backend.db.make_engine); PostgreSQL's lower() folds every letter of the database's UTF-8 locale."""
    if s.get_bind().dialect.name == "sqlite":
        return func.keepstone_casefold(column).like(_like_pattern(needle.casefold()), escape=LIKE_ESCAPE)
    return func.lower(column).like(func.lower(_like_pattern(needle)), escape=LIKE_ESCAPE)


def _facet(name: str) -> ColumnElement[str]:
    """One facet of an issue version as text (JSON_EXTRACT on SQLite, ->> on PostgreSQL)."""
    return CatalogText.facets[name].as_string()


def facet_options(s: Session, snapshot: int, names: Sequence[str]) -> dict[str, list[str]]:
    """Each facet's distinct values among the snapshot's issues (the filter choices), sorted; one
    statement for all of them. Issues without a text row or without that facet add nothing."""
    options: dict[str, list[str]] = {name: [] for name in names}
    if not names:
        return options
    parts = [
        select(literal(name).label("facet"), _facet(name).label("value"))
        .select_from(CatalogIssue)
        .join(CatalogText, CatalogText.version == CatalogIssue.version)
        .where(CatalogIssue.snapshot == snapshot, _facet(name).is_not(None))
        .distinct()
        for name in names
    ]
    for facet, value in s.execute(union(*parts) if len(parts) > 1 else parts[0]):
        if isinstance(value, str):
            options[facet].append(value)
    return {name: sorted(values) for name, values in options.items()}


@dataclass
class IssuePage:
    rows: list[Any]  # key, summary, updated, facets (None without a text row), in key order
    total: int  # issues matching, over all pages


def snapshot_issues(
    s: Session, snapshot: int, *, needle: str = "", facets: dict[str, str] | None = None,
    offset: int = 0, limit: int = 100,
) -> IssuePage:  # fmt: skip
    """The snapshot's issues whose key or summary holds `needle` (any case) and whose facets equal
    `facets`, in key order (PLAT-2 before PLAT-10), `limit` from `offset`, with how many match in all:
    a COUNT and, when the page is not past the end, one SELECT of at most `limit` rows."""
    conditions: list[ColumnElement[bool]] = [CatalogIssue.snapshot == snapshot]
    if needle:
        conditions.append(
            or_(
                _contains_folded(s, CatalogIssue.key, needle),
                _contains_folded(s, CatalogIssue.summary, needle),
            )
        )
    for name, value in (facets or {}).items():
        conditions.append(_facet(name) == value)
    joined = select(func.count()).select_from(CatalogIssue)
    if facets:  # a facet filter needs the text row; without one, the count is of the issue rows alone
        joined = joined.join(CatalogText, CatalogText.version == CatalogIssue.version)
    total = s.scalar(joined.where(*conditions)) or 0
    if offset >= total:
        return IssuePage([], total)
    key = CatalogIssue.key
    if s.get_bind().dialect.name == "postgresql":
        key = key.collate("C")  # code point order, as SQLite's BINARY and Python sort
    rows = s.execute(
        select(CatalogIssue.key, CatalogIssue.summary, CatalogIssue.updated, CatalogText.facets)
        .outerjoin(CatalogText, CatalogText.version == CatalogIssue.version)
        .where(*conditions)
        .order_by(func.length(CatalogIssue.key), key)
        .offset(offset)
        .limit(limit)
    ).all()
    return IssuePage(list(rows), total)
