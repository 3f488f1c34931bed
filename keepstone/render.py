"""Backed-up Jira documents as text for people: ADF as plain text, an issue as fields, description,
attachments, comments and worklogs (`keepstone show`), and field-by-field structural differences
(`keepstone diff`): list items added and removed, ADF text line by line, nothing cut short."""

from __future__ import annotations

import difflib
from collections import Counter
from typing import Any

from keepstone.terminal import size

# Fields shown in the header, in this order, under these names; the rest follow by name.
HEADER = [
    ("issuetype", "Type"),
    ("status", "Status"),
    ("priority", "Priority"),
    ("resolution", "Resolution"),
    ("assignee", "Assignee"),
    ("reporter", "Reporter"),
    ("created", "Created"),
    ("updated", "Updated"),
    ("duedate", "Due"),
    ("parent", "Parent"),
    ("labels", "Labels"),
    ("components", "Components"),
    ("fixVersions", "Fix versions"),
    ("versions", "Affects versions"),
    ("issuelinks", "Links"),
    ("subtasks", "Sub-tasks"),
    ("timetracking", "Time tracking"),
    ("environment", "Environment"),
]
# Shown elsewhere (summary, description, the lists) or noise to a reader.
HIDDEN = {
    "summary", "description", "comment", "worklog", "attachment", "project", "votes", "watches", "creator",
    "statuscategorychangedate", "lastViewed", "aggregateprogress", "progress", "workratio",
    "aggregatetimespent", "aggregatetimeestimate", "aggregatetimeoriginalestimate", "timespent",
    "timeestimate", "timeoriginalestimate", "thumbnail",
}  # fmt: skip
RANK = "com.atlassian.jira.plugin.system.customfieldtypes:rank"


def is_adf(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "doc" and isinstance(value.get("content"), list)


def adf_text(node: Any) -> str:
    """An Atlassian Document Format node as plain text: blocks on their own lines, list items with
    bullets, links with their address, mentions, emoji, cards and media by what they show."""
    return "\n".join(_blocks(node)).strip("\n")


def _inline(node: dict[str, Any]) -> str:
    kind, attrs = node.get("type"), node.get("attrs") or {}
    if kind == "text":
        text = node.get("text", "")
        for mark in node.get("marks") or []:
            href = (mark.get("attrs") or {}).get("href")
            if mark.get("type") == "link" and href and href != text:
                text = f"{text} ({href})"
            elif mark.get("type") == "code":
                text = f"`{text}`"
        return text
    if kind == "hardBreak":
        return "\n"
    if kind == "mention":
        text = attrs.get("text") or attrs.get("id", "")
        return text if text.startswith("@") else f"@{text}"
    if kind == "emoji":
        return attrs.get("text") or attrs.get("shortName", "")
    if kind in ("inlineCard", "blockCard", "embedCard"):
        return attrs.get("url") or str(attrs.get("data", ""))
    if kind == "status":
        return f"[{attrs.get('text', '')}]"
    if kind == "date":
        return str(attrs.get("timestamp", ""))
    if kind in ("media", "mediaInline"):
        return f"[media {attrs.get('alt') or attrs.get('id', '')}]"
    return "".join(_inline(c) for c in node.get("content") or [])


def _blocks(node: Any, prefix: str = "") -> list[str]:
    if not isinstance(node, dict):
        return [str(node)] if node else []
    kind, content = node.get("type"), node.get("content") or []
    if kind in ("doc", "panel", "expand", "nestedExpand", "layoutSection", "layoutColumn", "mediaSingle",
                "mediaGroup", "bodiedExtension"):  # fmt: skip
        out = []
        if kind in ("expand", "nestedExpand") and (node.get("attrs") or {}).get("title"):
            out.append(prefix + node["attrs"]["title"])
        for child in content:
            lines = _blocks(child, prefix)
            if out and lines and child.get("type") not in ("mediaSingle", "mediaGroup"):
                out.append("")
            out += lines
        return out or ([prefix + _inline(node)] if kind.startswith("media") else [])
    if kind in ("paragraph", "heading"):
        text = "".join(_inline(c) for c in content)
        if kind == "heading":
            text = "#" * int((node.get("attrs") or {}).get("level", 1)) + " " + text
        return [prefix + line for line in text.split("\n")]
    if kind in ("bulletList", "orderedList", "taskList", "decisionList"):
        out = []
        for n, item in enumerate(content, start=int((node.get("attrs") or {}).get("order", 1))):
            mark = f"{n}. " if kind == "orderedList" else "- "
            if kind == "taskList":
                mark = "[x] " if (item.get("attrs") or {}).get("state") == "DONE" else "[ ] "
            lines = _item(item)
            out += [prefix + (mark if i == 0 else " " * len(mark)) + line for i, line in enumerate(lines)]
        return out
    if kind == "codeBlock":
        return [prefix + "    " + line for line in "".join(_inline(c) for c in content).split("\n")]
    if kind == "blockquote":
        return [line for child in content for line in _blocks(child, prefix + "> ")]
    if kind == "rule":
        return [prefix + "---"]
    if kind == "table":
        rows = []
        for row in content:
            cells = [" ".join(line for c in cell.get("content") or [] for line in _blocks(c)) for cell in
                     row.get("content") or []]  # fmt: skip
            rows.append(prefix + " | ".join(cells))
        return rows
    return [prefix + line for line in _inline(node).split("\n")] if content or kind == "text" else []


def _item(item: dict[str, Any]) -> list[str]:
    if item.get("type") in ("taskItem", "decisionItem"):
        return ["".join(_inline(c) for c in item.get("content") or [])]
    return [line for child in item.get("content") or [] for line in _blocks(child)]


def value_text(value: Any) -> str:
    """A field's value as a reader names it: people by name, options by value, lists joined."""
    if value is None or value == [] or value == "":
        return ""
    if is_adf(value):
        return adf_text(value)
    if isinstance(value, list):
        return ", ".join(t for t in (value_text(v) for v in value) if t)
    if isinstance(value, dict):
        if "outwardIssue" in value or "inwardIssue" in value:  # an issue link
            kind = value.get("type") or {}
            if "outwardIssue" in value:
                return f"{kind.get('outward', 'links to')} {value['outwardIssue'].get('key')}"
            return f"{kind.get('inward', 'is linked from')} {value['inwardIssue'].get('key')}"
        if "originalEstimate" in value or "remainingEstimate" in value:
            parts = [f"{k.removesuffix('Estimate')} {value[k]}" for k in ("originalEstimate",
                     "remainingEstimate", "timeSpent") if value.get(k)]  # fmt: skip
            return ", ".join(parts)
        if "key" in value and "fields" in value:  # a parent or sub-task
            return f"{value['key']} {(value['fields'] or {}).get('summary', '')}".strip()
        for name in ("displayName", "value", "name", "key", "accountId", "id"):
            if name in value:
                text = str(value[name])
                child = value.get("child")
                return f"{text} / {value_text(child)}" if isinstance(child, dict) else text
        return ", ".join(f"{k}: {value_text(v)}" for k, v in value.items() if value_text(v))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def field_names(fields_doc: Any) -> tuple[dict[str, str], set[str]]:
    """From a snapshot's site/fields: id -> name, and the ids of rank fields (an ordering, not data)."""
    names, hidden = {}, set()
    for f in fields_doc or []:
        if isinstance(f, dict) and f.get("id"):
            names[f["id"]] = f.get("name") or f["id"]
            if (f.get("schema") or {}).get("custom") == RANK:
                hidden.add(f["id"])
    return names, hidden


def _indent(text: str, by: str = "    ") -> list[str]:
    return [by + line if line else "" for line in text.split("\n")]


def issue_lines(
    doc: dict[str, Any], names: dict[str, str] | None = None, hidden: set[str] | None = None
) -> list[str]:
    """An issue document as `keepstone show` prints it."""
    names, hidden = names or {}, (hidden or set()) | HIDDEN
    fields = doc.get("fields") or {}
    out = [f"{doc.get('key')}  {fields.get('summary', '')}", ""]
    shown = {name for name, _ in HEADER}
    rows = [(label, name) for name, label in HEADER] + sorted(
        (names.get(k, k), k) for k in fields if k not in shown and k not in hidden
    )
    rows = [(label, text) for label, key in rows if (text := value_text(fields.get(key)))]
    width = max((len(label) for label, text in rows if "\n" not in text), default=0) + 2
    for label, text in rows:
        if label in ("Created", "Updated"):
            text = _when(text)
        if "\n" in text:
            out += [f"{label}:", *_indent(text)]
        else:
            out.append(f"{label + ':':<{width}}{text}")
    description = adf_text(fields.get("description")) if is_adf(fields.get("description")) else ""
    if not description and isinstance(fields.get("description"), str):
        description = fields["description"]
    if description:
        out += ["", "Description:", *_indent(description)]
    attachments = doc.get("attachments") or []
    if attachments:
        out += ["", f"Attachments ({len(attachments)}):"]
        for a in attachments:
            when = str(a.get("created", ""))[:10]
            out.append(f"    {a.get('filename', a.get('id'))}  {size(int(a.get('size') or 0))}  "
                       f"{a.get('mimeType', '')}  {when}".rstrip())  # fmt: skip
    comments = doc.get("comments") or []
    if comments:
        out += ["", f"Comments ({len(comments)}):"]
        for c in comments:
            who = value_text(c.get("author")) or "unknown"
            out.append(f"  {who}, {_when(c.get('created'))}:")
            body = c.get("body")
            out += _indent(adf_text(body) if is_adf(body) else value_text(body))
    worklogs = doc.get("worklogs") or []
    if worklogs:
        total = sum(int(w.get("timeSpentSeconds") or 0) for w in worklogs)
        out += ["", f"Worklogs ({len(worklogs)}, {_hours(total)} in all):"]
        for w in worklogs:
            note = w.get("comment")
            note = adf_text(note) if is_adf(note) else value_text(note)
            out.append(f"    {value_text(w.get('author'))}, {_when(w.get('started'))}: "
                       f"{w.get('timeSpent') or _hours(int(w.get('timeSpentSeconds') or 0))}"
                       + (f"  {note.splitlines()[0]}" if note else ""))  # fmt: skip
    return out


def _when(stamp: Any) -> str:
    text = str(stamp or "")
    return text[:16].replace("T", " ") if len(text) >= 16 else text


def _hours(seconds: int) -> str:
    h, m = divmod(seconds // 60, 60)
    return f"{h}h {m}m" if h and m else f"{h}h" if h else f"{m}m"


# --- structural differences -------------------------------------------------------------------------


def _items(value: Any) -> list[str] | None:
    """A list value's items as text (None if the value is not a list)."""
    if isinstance(value, list):
        return [value_text(v) for v in value]
    return None


def changes(old: Any, new: Any) -> list[str]:
    """What changed in one field, as lines: '- item'/'+ item' for lists, a line diff for text and ADF,
    '- old'/'+ new' for single values. Never cut short."""
    old_items, new_items = _items(old), _items(new)
    if old_items is not None or new_items is not None:
        before, after = Counter(old_items or []), Counter(new_items or [])
        removed = list((before - after).elements())
        added = list((after - before).elements())
        if not removed and not added and old_items != new_items:
            return ["  order changed: " + ", ".join(new_items or [])]
        return [f"- {i}" for i in removed] + [f"+ {i}" for i in added]
    a, b = value_text(old), value_text(new)
    if "\n" in a or "\n" in b or len(a) > 80 or len(b) > 80:
        diff = difflib.ndiff(a.split("\n") if a else [], b.split("\n") if b else [])
        return [line for line in diff if line[:1] in "-+"]
    if a == b:  # the same to a reader: a detail inside changed
        return [f"  {a} (details changed)"] if a else ["  (details changed)"]
    return ([f"- {a}"] if a else []) + ([f"+ {b}"] if b else [])
