"""A hostile site file for restore tests: what a real site throws at a restore, small enough to run in seconds.

Unicode everywhere, 300 comments on one issue (some restricted to a role or a group), worklogs in five time
zones, a long changelog, links across projects and in cycles, an epic with 120 children, two attachments
with the same name and size but other bytes, path-like (Jira and the sandbox refuse '/' and '\\' in names: escaped
and look-alike separators instead) and non-Latin file names, media nodes in the
description and a comment, and an issue whose custom-field option was deleted after use (Jira refuses it
on create: the per-item error a restore must survive). A whitespace-only summary cannot be expressed: the
sandbox refuses it on load and on every write, as Jira does, so no backup of the sandbox can hold one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PROJECT = "HOST"
OTHER = "KEEP"
CHILDREN = 120
COMMENTS = 300
SAME_SIZE = (b"first  copy of the report\n", b"second copy of the report\n")  # same length, other bytes
ZONES = ("+0000", "+0530", "-0800", "+0900", "+1345")


def _doc(*nodes: dict[str, Any]) -> dict[str, Any]:
    return {"type": "doc", "version": 1, "content": list(nodes)}


def _para(text: str) -> dict[str, Any]:
    return {"type": "paragraph", "content": [{"type": "text", "text": text}]}


def _comments() -> list[dict[str, Any]]:
    out = []
    for i in range(COMMENTS):
        c: dict[str, Any] = {
            "author": ("ada@example.com", "zoe@example.com", "cleo@example.com")[i % 3],
            "body": f"Kommentar {i} — 日本語 ✓ «{i}» emoji 🚀",
            "created": f"2024-03-{1 + i % 28:02d}T{i % 24:02d}:00:00.000{ZONES[i % len(ZONES)]}",
        }
        if i % 50 == 7:
            c["visibility"] = {"type": "role", "value": "Developers"}
        if i % 50 == 9:
            c["visibility"] = {"type": "group", "value": "ops-team"}
        out.append(c)
    out[1] = {
        "author": "ada@example.com",
        "body": _doc(_para("Sieh dir das an:"), {"type": "media", "attrs": {"attachment": "日本語 図.png"}}),
    }
    return out


def site() -> dict[str, Any]:
    changelog = [
        {
            "author": "ada@example.com",
            "created": f"2024-02-{1 + i % 28:02d}T10:00:00.000+0100",
            "items": [
                {
                    "field": "summary",
                    "fieldId": "summary",
                    "fromString": f"Überschrift v{i}",
                    "toString": f"Überschrift v{i + 1} — ✓",
                }
            ],
        }
        for i in range(150)
    ]
    big = {
        "summary": "Ünïcödé 🚀 Überschrift — 日本語のタイトル",
        "type": "Story",
        "parent": f"{PROJECT}-1",
        "status": "In Progress",
        "labels": ["ünïcode", "日本"],
        "description": _doc(
            _para("Bericht, zweimal: ✓"),
            {"type": "media", "attrs": {"attachment": "report.txt"}},
            {"type": "media", "attrs": {"attachment": "日本語 図.png"}},
        ),
        "comments": _comments(),
        "worklogs": [
            {
                "author": "ada@example.com",
                "timeSpentSeconds": 900 * (i + 1),
                "started": f"2024-03-0{1 + i}T09:00:00.000{zone}",
                "comment": f"Arbeit in {zone} ✓",
                **({"visibility": {"type": "group", "value": "ops-team"}} if i == 2 else {}),
            }
            for i, zone in enumerate(ZONES)
        ],
        "attachments": [
            {"filename": "report.txt", "text": SAME_SIZE[0].decode()},
            {"filename": "report.txt", "text": SAME_SIZE[1].decode()},
            {"filename": "日本語 図.png", "base64": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB"},
            {"filename": "..%2F..%2Fetc%2Fpasswd", "text": "not a path"},
            {"filename": "C:∖Users∖zoë∖Отчёт .txt", "text": "Кириллица"},
        ],
        "links": [
            {"type": "Blocks", "outward": f"{PROJECT}-3"},
            {"type": "Relates", "outward": f"{OTHER}-1"},
        ],
        "changelog": changelog,
    }
    issues: list[dict[str, Any]] = [
        {"summary": "Épopée ✨ 史诗", "type": "Epic", "key": f"{PROJECT}-1"},
        {**big, "key": f"{PROJECT}-2"},
        {
            "summary": "Zyklus: blockiert die Geschichte",
            "type": "Task",
            "key": f"{PROJECT}-3",
            "status": "Done",
            "resolution": "Won't Do",
            "links": [
                {"type": "Blocks", "outward": f"{PROJECT}-2"},
                {"type": "Causes", "inward": f"{OTHER}-1"},
            ],
        },
        {"summary": "Erledigt ohne Lösung", "type": "Task", "key": f"{PROJECT}-4", "status": "Done"},
        {
            "summary": "Option gelöscht — refused on create",
            "type": "Bug",
            "key": f"{PROJECT}-5",
            "fields": {"Tier": "Bronze"},
            "comments": [{"author": "ada@example.com", "body": "never restored: the issue is refused"}],
        },
    ]
    issues += [
        {
            "summary": f"Kind {i} — 子供 {i}",
            "type": ("Story", "Task", "Bug")[i % 3],
            "parent": f"{PROJECT}-1",
            "status": ("To Do", "In Progress", "In Review", "Done")[i % 4],
            **({"links": [{"type": "Relates", "outward": f"{PROJECT}-{7 + i}"}]} if i < 3 else {}),
        }
        for i in range(CHILDREN)
    ]
    return {
        "users": [
            {
                "email": "ada@example.com",
                "displayName": "Ada Okafor",
                "groups": ["jira-software-users", "ops-team"],
            },
            {"email": "zoe@example.com", "displayName": "Zoë Ñúñez-Łukasiewicz 张伟"},
            {"email": "cleo@example.com", "displayName": "Cleo Tanaka", "deleted": True},
        ],
        "linkTypes": [{"name": "Causes", "inward": "is caused by", "outward": "causes"}],
        "customFields": [
            {
                "name": "Tier",
                "type": "radiobuttons",
                "options": ["Gold", {"value": "Bronze", "deleted": True}],
            }
        ],
        "projects": [
            {
                "key": PROJECT,
                "name": "Feindliche Seite — 敵対的",
                "type": "software",
                "lead": "ada@example.com",
                "roles": {"Developers": ["ada@example.com"]},
                "issues": issues,
            },
            {
                "key": OTHER,
                "name": "Keeps existing",
                "type": "software",
                "issues": [{"summary": "Bleibt da ✓"}],
            },
        ],
    }


def write(folder: Path) -> Path:
    path = folder / "hostile.json"
    path.write_text(json.dumps(site(), ensure_ascii=False, indent=1))
    return path
