"""Keep the catalog in line with a repository: index the snapshots it lacks, drop the ones forgotten.

`sync` is what runs after every run (and what `rebuild` does from nothing): it lists the repository's
snapshots, removes catalog rows of snapshots no longer there, and indexes each new one from its trees. An
issue's text (summary, description, comments) is read from the packs only for a version the catalog has
not seen: a version is the digest of the issue document's and its comments' blob ids, so an incremental
snapshot that carries 99% of its issues reads only the 1% that changed.
"""

from __future__ import annotations

import hashlib
import logging
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.orm import Session

from backend.db import Database
from backend.db.models import CatalogIssue, CatalogSnapshot, CatalogText, Plan
from backend.repository import Repository, SnapshotInfo
from backend.repository.model import Entry
from keepstone.render import adf_text

log = logging.getLogger(__name__)
BATCH = 500
TEXT_LIMIT = 200_000  # characters of one version's comments kept for search


@dataclass
class SyncResult:
    added: int = 0
    removed: int = 0
    texts_read: int = 0  # issue versions whose documents were read from the packs
    issues: int = 0  # catalog rows written


def fold(value: str) -> str:
    """Text as the PostgreSQL index and its queries see it: case folded, diacritics removed (as SQLite's
    FTS5 tokenizer `unicode61 remove_diacritics 2` does)."""
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


FACETS = {"status": "status", "type": "issuetype", "priority": "priority", "assignee": "assignee"}


def facets_of(fields: dict[str, Any]) -> dict[str, Any]:
    """What the snapshot browser filters by, by the names Jira shows (labels as a list)."""
    out: dict[str, Any] = {}
    for facet, name in FACETS.items():
        value = fields.get(name)
        if isinstance(value, dict):
            shown = value.get("displayName") or value.get("name")
            if isinstance(shown, str):
                out[facet] = shown[:255]
    labels = fields.get("labels")
    if isinstance(labels, list):
        out["labels"] = [str(x)[:255] for x in labels[:50]]
    return out


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        return adf_text(value)
    return value if isinstance(value, str) else ""


def _version(issue: Entry, comments: Entry | None) -> str:
    digest = hashlib.sha256(",".join(issue.blobs).encode())
    if comments is not None:
        digest.update(b"|" + ",".join(comments.blobs).encode())
    return digest.hexdigest()[:40]


def _is_sqlite(s: Session) -> bool:
    return s.get_bind().dialect.name == "sqlite"


def sync(db: Database, organisation_id: int, repo: Repository, full: bool = False) -> SyncResult:
    """Bring the catalog of `repo` in line with it; `full` first forgets everything it held (rebuild)."""
    result = SyncResult()
    repository = repo.config["id"]
    listed = {info.id: info for info in repo.snapshots()}
    with db.session() as s:
        held = dict(
            s.execute(
                select(CatalogSnapshot.snapshot_id, CatalogSnapshot.id).where(
                    CatalogSnapshot.repository == repository
                )
            ).all()
        )
        gone = list(held.values()) if full else [row for sid, row in held.items() if sid not in listed]
        if gone:
            s.execute(delete(CatalogIssue).where(CatalogIssue.snapshot.in_(gone)))
            s.execute(delete(CatalogSnapshot).where(CatalogSnapshot.id.in_(gone)))
            result.removed = len(gone)
        plans = dict(
            s.execute(select(Plan.public_id, Plan.id).where(Plan.organisation_id == organisation_id)).all()
        )
        s.commit()
    fresh = sorted((i for sid, i in listed.items() if full or sid not in held), key=lambda i: (i.time, i.id))
    for info in fresh:
        _index(db, organisation_id, repo, repository, info, plans, result)
        result.added += 1
    if result.removed:
        with db.session() as s:
            _drop_unused_texts(s, organisation_id)
            s.commit()
    return result


def _index(
    db: Database,
    organisation_id: int,
    repo: Repository,
    repository: str,
    info: SnapshotInfo,
    plans: dict[str, int],
    result: SyncResult,
) -> None:
    issues: dict[str, Entry] = {}
    comments: dict[str, Entry] = {}
    for entry in repo.snapshot(info.id).iter_entries():
        if entry.kind == "issue" and entry.name.startswith("issues/"):
            issues[entry.name[len("issues/") :]] = entry
        elif entry.name.startswith("comments/"):
            comments[entry.name[len("comments/") :]] = entry
    versions = {key: _version(entry, comments.get(key)) for key, entry in issues.items()}
    with db.session() as s:
        known: dict[str, str] = {}
        wanted = sorted(set(versions.values()))
        for start in range(0, len(wanted), BATCH):
            chunk = wanted[start : start + BATCH]
            query = select(CatalogText.version, CatalogText.summary).where(CatalogText.version.in_(chunk))
            known.update((version, summary) for version, summary in s.execute(query))
        snapshot = CatalogSnapshot(
            organisation_id=organisation_id,
            plan_id=plans.get(str(info.meta.get("plan") or "")),
            repository=repository,
            snapshot_id=info.id,
            project=info.project,
            time=datetime.fromisoformat(info.time),
            issues=len(issues),
            size=info.size,
            counts=dict(info.meta.get("counts") or {}),
        )
        s.add(snapshot)
        s.flush()
        rows: list[dict[str, Any]] = []
        texts: list[dict[str, Any]] = []
        for key, entry in sorted(issues.items()):
            version = versions[key]
            summary = known.get(version)
            if summary is None:
                texts.append(_text_of(organisation_id, repo, version, entry, comments.get(key)))
                summary = known[version] = texts[-1]["summary"]
                result.texts_read += 1
                if len(texts) >= BATCH:
                    _add_texts(s, texts)
                    texts = []
            rows.append(
                {
                    "snapshot": snapshot.id,
                    "key": key,
                    "issue_id": str(entry.attrs.get("id") or ""),
                    "summary": summary,
                    "updated": str(entry.attrs.get("updated") or ""),
                    "version": version,
                }
            )
            if len(rows) >= BATCH:
                s.execute(insert(CatalogIssue), rows)
                result.issues += len(rows)
                rows = []
        if texts:
            _add_texts(s, texts)
        if rows:
            s.execute(insert(CatalogIssue), rows)
            result.issues += len(rows)
        s.commit()


def _text_of(
    organisation_id: int, repo: Repository, version: str, issue: Entry, comments: Entry | None
) -> dict[str, Any]:
    """The catalog_texts row of one issue version, read from its documents."""
    doc = repo.read_json(issue)
    fields = (doc.get("fields") if isinstance(doc, dict) else None) or {}
    summary = fields.get("summary") if isinstance(fields.get("summary"), str) else ""
    description = _plain(fields.get("description"))
    said = ""
    if comments is not None:
        listed = repo.read_json(comments)
        items = listed.get("comments", listed) if isinstance(listed, dict) else listed
        said = "\n".join(_plain(c.get("body")) for c in items or [] if isinstance(c, dict))[:TEXT_LIMIT]
    return {
        "version": version,
        "organisation_id": organisation_id,
        "summary": summary,
        "description": description,
        "comments": said,
        "facets": facets_of(fields),
    }


def _add_texts(s: Session, texts: list[dict[str, Any]]) -> None:
    """Write text rows and their search index, a batch in a few statements (one INSERT and one index
    statement, each executed for many rows) instead of two round trips an issue version."""
    s.execute(insert(CatalogText), texts)
    versions = [{"v": t["version"]} for t in texts]
    if _is_sqlite(s):
        s.execute(
            text(
                "INSERT INTO catalog_fts(rowid, version, summary, description, comments) "
                "SELECT rowid, version, summary, description, comments FROM catalog_texts WHERE version = :v"
            ),
            versions,
        )
    else:
        s.execute(
            text("UPDATE catalog_texts SET tsv = to_tsvector('simple', :folded) WHERE version = :v"),
            [
                {"v": t["version"], "folded": fold(" ".join((t["summary"], t["description"], t["comments"])))}
                for t in texts
            ],
        )


def _drop_unused_texts(s: Session, organisation_id: int) -> None:
    """Texts no catalog issue names any more (their snapshots were all forgotten)."""
    used = select(CatalogIssue.version).distinct()
    unused = select(CatalogText.version).where(
        CatalogText.organisation_id == organisation_id, CatalogText.version.not_in(used)
    )
    if _is_sqlite(s):
        s.execute(
            text(
                "DELETE FROM catalog_fts WHERE rowid IN (SELECT t.rowid FROM catalog_texts t WHERE "
                "t.organisation_id = :org AND t.version NOT IN (SELECT DISTINCT version FROM catalog_issues))"
            ),
            {"org": organisation_id},
        )
    s.execute(delete(CatalogText).where(CatalogText.version.in_(unused)))


def counts(s: Session, organisation_id: int) -> dict[str, int]:
    """How much the catalog holds for an organisation (snapshots, issue rows, distinct texts)."""
    return {
        "snapshots": s.scalar(
            select(func.count())
            .select_from(CatalogSnapshot)
            .where(CatalogSnapshot.organisation_id == organisation_id)
        )
        or 0,
        "texts": s.scalar(
            select(func.count())
            .select_from(CatalogText)
            .where(CatalogText.organisation_id == organisation_id)
        )
        or 0,
    }
