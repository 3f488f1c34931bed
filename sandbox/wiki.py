"""Jira wiki markup for REST v2: ADF rendered to text on reads, text turned into ADF on writes.

v2 carries descriptions, environments, comment bodies, worklog comments and multi-line text fields as
plain text in Jira's wiki markup; v3 carries the same values as ADF. The sandbox stores ADF and converts at
the edge, as Jira does. The conversion covers what the sandbox's documents hold: paragraphs, hard breaks,
strong/em/code/strike marks, links, mentions, headings, lists, code blocks, quotes, rules, tables and media.
Plain text without markup comes back from v2 exactly as it went in.
"""

from __future__ import annotations

import re
from typing import Any


def is_adf(value: Any) -> bool:
    """True for an ADF document: {"type": "doc", "version": 1, "content": [...]}."""
    return isinstance(value, dict) and value.get("type") == "doc" and isinstance(value.get("content"), list)


# --- ADF -> wiki ---------------------------------------------------------------------------------------

_MARKS = {"strong": "*", "em": "_", "strike": "-", "underline": "+", "subsup": "~"}


def _inline(node: dict[str, Any], media_names: dict[str, str]) -> str:
    kind = node.get("type")
    if kind == "text":
        text = str(node.get("text", ""))
        for mark in node.get("marks") or []:
            mtype = mark.get("type")
            if mtype == "code":
                text = "{{" + text + "}}"
            elif mtype == "link":
                text = f"[{text}|{(mark.get('attrs') or {}).get('href', '')}]"
            elif mtype in _MARKS:
                text = _MARKS[mtype] + text + _MARKS[mtype]
        return text
    if kind == "hardBreak":
        return "\n"
    if kind == "mention":
        return f"[~accountid:{(node.get('attrs') or {}).get('id', '')}]"
    if kind == "emoji":
        return str((node.get("attrs") or {}).get("text") or (node.get("attrs") or {}).get("shortName", ""))
    if kind == "inlineCard":
        url = (node.get("attrs") or {}).get("url", "")
        return f"[{url}|{url}|smart-link]"
    if kind in ("media", "mediaInline"):
        attrs = node.get("attrs") or {}
        name = media_names.get(str(attrs.get("id", ""))) or attrs.get("alt") or attrs.get("id", "")
        return f"!{name}|thumbnail!"
    return "".join(_inline(child, media_names) for child in node.get("content") or [])


def _block(node: dict[str, Any], media_names: dict[str, str], bullet: str = "") -> str:
    kind = node.get("type")
    children = node.get("content") or []
    if kind == "paragraph":
        return "".join(_inline(c, media_names) for c in children)
    if kind == "heading":
        level = (node.get("attrs") or {}).get("level", 1)
        return f"h{level}. " + "".join(_inline(c, media_names) for c in children)
    if kind in ("bulletList", "orderedList"):
        mark = bullet + ("*" if kind == "bulletList" else "#")
        return "\n".join(_block(item, media_names, mark) for item in children)
    if kind == "listItem":
        parts = []
        for c in children:
            if c.get("type") in ("bulletList", "orderedList"):
                parts.append(_block(c, media_names, bullet))
            else:
                parts.append(f"{bullet} " + _block(c, media_names))
        return "\n".join(parts)
    if kind == "codeBlock":
        language = (node.get("attrs") or {}).get("language")
        text = "".join(str(c.get("text", "")) for c in children)
        return ("{code:" + language + "}" if language else "{code}") + text + "{code}"
    if kind == "blockquote":
        return "{quote}" + "\n\n".join(_block(c, media_names) for c in children) + "{quote}"
    if kind == "rule":
        return "----"
    if kind == "panel":
        return "{panel}" + "\n\n".join(_block(c, media_names) for c in children) + "{panel}"
    if kind in ("mediaSingle", "mediaGroup"):
        return "".join(_inline(c, media_names) for c in children)
    if kind == "table":
        rows = []
        for row in children:
            cells = row.get("content") or []
            header = all(c.get("type") == "tableHeader" for c in cells)
            sep = "||" if header else "|"
            texts = [" ".join(_block(p, media_names) for p in c.get("content") or []) for c in cells]
            rows.append(sep + sep.join(texts) + sep)
        return "\n".join(rows)
    return "".join(_inline(c, media_names) for c in children)


def adf_to_wiki(doc: Any, media_names: dict[str, str] | None = None) -> str | None:
    """Render an ADF document as wiki markup (None stays None; a string is already wiki text)."""
    if doc is None or isinstance(doc, str):
        return doc
    if not is_adf(doc):
        return str(doc)
    return "\n\n".join(_block(node, media_names or {}) for node in doc["content"])


# --- wiki -> ADF ---------------------------------------------------------------------------------------

_INLINE = re.compile(
    r"\[~accountid:(?P<mention>[^\]]+)\]"
    r"|\{\{(?P<code>[^}]+)\}\}"
    r"|(?<![\w*])\*(?P<strong>[^*\s](?:[^*]*[^*\s])?)\*(?![\w*])"
    r"|(?<![\w_])_(?P<em>[^_\s](?:[^_]*[^_\s])?)_(?![\w_])"
    r"|\[(?P<label>[^|\]\n]+)\|(?P<href>https?://[^\]\s]+)\]"
)


def _text_nodes(line: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    pos = 0
    for m in _INLINE.finditer(line):
        if m.start() > pos:
            out.append({"type": "text", "text": line[pos : m.start()]})
        if m.group("mention"):
            out.append(
                {"type": "mention", "attrs": {"id": m.group("mention"), "text": "@" + m.group("mention")}}
            )
        elif m.group("code"):
            out.append({"type": "text", "text": m.group("code"), "marks": [{"type": "code"}]})
        elif m.group("strong"):
            out.append({"type": "text", "text": m.group("strong"), "marks": [{"type": "strong"}]})
        elif m.group("em"):
            out.append({"type": "text", "text": m.group("em"), "marks": [{"type": "em"}]})
        else:
            mark = {"type": "link", "attrs": {"href": m.group("href")}}
            out.append({"type": "text", "text": m.group("label"), "marks": [mark]})
        pos = m.end()
    if pos < len(line):
        out.append({"type": "text", "text": line[pos:]})
    return out


def wiki_to_adf(text: str | None) -> dict[str, Any] | None:
    """Turn v2 text into the ADF document Jira stores: paragraphs at blank lines, hard breaks within."""
    if text is None:
        return None
    text = text.replace("\r\n", "\n")
    if text == "":
        return {"type": "doc", "version": 1, "content": []}
    content = []
    for para in text.split("\n\n"):
        nodes: list[dict[str, Any]] = []
        for n, line in enumerate(para.split("\n")):
            if n:
                nodes.append({"type": "hardBreak"})
            nodes.extend(_text_nodes(line))
        content.append({"type": "paragraph", "content": nodes} if nodes else {"type": "paragraph"})
    return {"type": "doc", "version": 1, "content": content}


def convert_tree(node: Any, media_names: dict[str, str] | None = None) -> Any:
    """Return a copy of a JSON tree with every ADF document rendered as wiki text (a v2 answer)."""
    if isinstance(node, dict):
        if is_adf(node) and node.get("version") == 1:
            return adf_to_wiki(node, media_names)
        return {k: convert_tree(v, media_names) for k, v in node.items()}
    if isinstance(node, list):
        return [convert_tree(v, media_names) for v in node]
    return node
