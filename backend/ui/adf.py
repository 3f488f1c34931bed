"""Atlassian Document Format as safe HTML for the snapshot browser.

Every text is escaped; only known nodes and marks become elements; links keep http, https and mailto
addresses only; media become links to the backed-up attachment they name (`media_href(media id, alt)`: the backup knows
an attachment's id and file name, not its media id, so the alt text ties them, as restore does), else a
named placeholder. Unknown nodes show their children (or their text), so nothing
that was backed up is silently hidden.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from markupsafe import Markup, escape

PANEL_KINDS = {"info", "note", "warning", "success", "error", "tip", "custom"}
MAX_DEPTH = 64  # deeper documents are cut here with a note, never a RecursionError


def _safe_href(href: Any) -> str | None:
    if not isinstance(href, str):
        return None
    scheme = urlsplit(href.strip()).scheme.lower()
    return href.strip() if scheme in ("http", "https", "mailto") else None


def _marks(text: Markup, marks: list[Any]) -> Markup:
    for mark in marks or []:
        if not isinstance(mark, dict):
            continue
        kind, attrs = mark.get("type"), mark.get("attrs") or {}
        if kind == "strong":
            text = Markup("<strong>%s</strong>") % text
        elif kind == "em":
            text = Markup("<em>%s</em>") % text
        elif kind == "code":
            text = Markup("<code>%s</code>") % text
        elif kind == "strike":
            text = Markup("<s>%s</s>") % text
        elif kind == "underline":
            text = Markup("<u>%s</u>") % text
        elif kind == "subsup":
            tag = "sup" if attrs.get("type") == "sup" else "sub"
            text = Markup(f"<{tag}>%s</{tag}>") % text
        elif kind == "link":
            href = _safe_href(attrs.get("href"))
            if href:
                text = Markup('<a href="%s" rel="noopener noreferrer nofollow">%s</a>') % (href, text)
    return text


class Renderer:
    def __init__(self, media_href: Callable[[str, str], tuple[str, str] | None] | None = None) -> None:
        self.media_href = media_href or (lambda _id, _alt: None)

    def __call__(self, doc: Any) -> Markup:
        if not isinstance(doc, dict):
            return Markup("<p>%s</p>") % (doc if isinstance(doc, str) else "")
        return self._node(doc, 0)

    def _children(self, node: dict[str, Any], depth: int) -> Markup:
        content = node.get("content")
        if not isinstance(content, list):
            return Markup("")
        return Markup("").join(self._node(c, depth + 1) for c in content if isinstance(c, dict))

    def _node(self, node: dict[str, Any], depth: int) -> Markup:
        if depth > MAX_DEPTH:
            return Markup('<p class="muted">(nested too deep to show)</p>')
        kind, attrs = node.get("type"), node.get("attrs") or {}
        if not isinstance(attrs, dict):
            attrs = {}
        inner = self._children(node, depth)
        if kind == "doc":
            return Markup('<div class="adf">%s</div>') % inner
        if kind == "text":
            return _marks(escape(node.get("text") or ""), node.get("marks") or [])
        if kind == "paragraph":
            return Markup("<p>%s</p>") % inner
        if kind == "heading":
            level = attrs.get("level") if attrs.get("level") in (1, 2, 3, 4, 5, 6) else 3
            level = min(6, level + 2)  # below the page's own headings
            return Markup(f"<h{level}>%s</h{level}>") % inner
        if kind == "bulletList":
            return Markup("<ul>%s</ul>") % inner
        if kind == "orderedList":
            return Markup("<ol>%s</ol>") % inner
        if kind == "listItem":
            return Markup("<li>%s</li>") % inner
        if kind == "taskList":
            return Markup('<ul class="tasks">%s</ul>') % inner
        if kind == "taskItem":
            box = "☑" if attrs.get("state") == "DONE" else "☐"
            return Markup("<li>%s %s</li>") % (box, inner)
        if kind == "codeBlock":
            language = attrs.get("language") if isinstance(attrs.get("language"), str) else ""
            text = "".join(c.get("text", "") for c in node.get("content") or [] if isinstance(c, dict))
            label = Markup(' data-language="%s"') % language if language else Markup("")
            return Markup("<pre%s><code>%s</code></pre>") % (label, text)
        if kind == "blockquote":
            return Markup("<blockquote>%s</blockquote>") % inner
        if kind == "panel":
            panel = attrs.get("panelType") if attrs.get("panelType") in PANEL_KINDS else "info"
            return Markup('<div class="panel panel-%s" role="note">%s</div>') % (panel, inner)
        if kind == "rule":
            return Markup("<hr>")
        if kind == "hardBreak":
            return Markup("<br>")
        if kind == "table":
            return Markup('<div class="table-wrap"><table class="adf-table">%s</table></div>') % inner
        if kind == "tableRow":
            return Markup("<tr>%s</tr>") % inner
        if kind in ("tableHeader", "tableCell"):
            tag = "th" if kind == "tableHeader" else "td"
            return Markup(f"<{tag}>%s</{tag}>") % inner
        if kind == "mention":
            name = str(attrs.get("text") or attrs.get("id") or "someone")
            return Markup('<span class="mention">%s</span>') % (name if name.startswith("@") else "@" + name)
        if kind == "emoji":
            return escape(str(attrs.get("text") or attrs.get("shortName") or ""))
        if kind == "status":
            return Markup('<span class="tag">%s</span>') % str(attrs.get("text") or "")
        if kind == "date":
            return Markup("<time>%s</time>") % str(attrs.get("timestamp") or "")
        if kind in ("inlineCard", "blockCard", "embedCard"):
            href = _safe_href(attrs.get("url"))
            if href:
                return Markup('<a href="%s" rel="noopener noreferrer nofollow">%s</a>') % (href, href)
            return Markup("")
        if kind in ("mediaSingle", "mediaGroup"):
            return Markup('<div class="media">%s</div>') % inner
        if kind in ("media", "mediaInline"):
            found = self.media_href(str(attrs.get("id") or ""), str(attrs.get("alt") or ""))
            if found:
                href, name = found
                return Markup('<a class="attachment" href="%s">📎 %s</a>') % (href, name)
            label = attrs.get("alt") or attrs.get("id") or "attachment"
            return Markup('<span class="muted">(attachment %s, not in this snapshot)</span>') % str(label)
        if inner:
            return inner
        return escape(str(node.get("text") or ""))


def render(doc: Any, media_href: Callable[[str, str], tuple[str, str] | None] | None = None) -> Markup:
    return Renderer(media_href)(doc)
