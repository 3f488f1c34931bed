"""REST v2 (and /rest/api/latest, and everything on Data Center) spoken at the edge of the v3 routes.

The agile API's issue lists (board and sprint issues) carry v2's plain-text fields on Cloud as well.

The routes are written once, for v3. A v2 request is routed to them marked `sandbox.api = 2`; its
answer is then rewritten as Jira's v2 writes it: every ADF document (description, environment, comment
bodies, worklog comments, multi-line text fields) becomes wiki markup, and every link to the site's
/rest/api/3/ becomes /rest/api/2/. Input goes the other way in `rich_input`: v2 takes plain text.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response, request

from sandbox.web import JiraHTTPError, base, site, state
from sandbox.wiki import adf_to_wiki, is_adf, wiki_to_adf

API_VERSION = "sandbox.api"
V2_PREFIXES = ("/rest/api/2/", "/rest/api/latest/")


def api_version() -> int:
    """The REST version the caller speaks: 2 (v2, latest, any Data Center call) or 3."""
    if state().config.flavor == "datacenter":
        return 2
    return 2 if request.environ.get(API_VERSION) == 2 else 3


def rich_input(value: Any, what: str) -> Any:
    """A rich-text value as the caller sent it, as stored ADF (v2: wiki text; v3: an ADF document)."""
    if value is None:
        return None
    if api_version() == 2:
        if not isinstance(value, str):
            raise ValueError(f"The {what} must be a string (REST v2 takes wiki markup text).")
        return wiki_to_adf(value)
    if not is_adf(value):
        raise ValueError("Operation value must be an Atlassian Document (see the Atlassian Document Format).")
    return value


def refuse_v3_on_datacenter() -> None:
    """Data Center has no REST v3: /rest/api/3/... is not there."""
    if state().config.flavor == "datacenter" and request.environ.get(API_VERSION) == 3:
        raise JiraHTTPError(404, "Not Found")


def speak_v2(response: Response) -> Response:
    """Rewrite a JSON answer of a v2 call into v2's shape (after_request hook)."""
    if not request.path.startswith(("/rest/api/", "/rest/agile/")) or response.direct_passthrough:
        return response
    # The agile API's issue lists carry v2's plain-text fields on Cloud too (its links stay as they are).
    agile_text = request.path.startswith("/rest/agile/") and request.path.endswith("/issue")
    if request.path.startswith("/rest/agile/") and state().config.flavor != "datacenter" and not agile_text:
        return response
    if (api_version() != 2 and not agile_text) or response.mimetype != "application/json":
        return response
    if not response.get_data():
        return response
    data = json.loads(response.get_data())
    links = api_version() == 2
    v3, v2 = f"{base()}/rest/api/3/", f"{base()}/rest/api/2/"
    names: dict[str, str] | None = None

    def media_names() -> dict[str, str]:
        nonlocal names
        if names is None:
            names = {a.media_id: a.filename for a in site().attachments.values() if a.media_id}
        return names

    properties = "/properties/" in request.path

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if not properties and is_adf(node) and node.get("version") == 1:
                return adf_to_wiki(node, media_names() if _has_media(node) else {})
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if links and isinstance(node, str) and node.startswith(v3):
            return v2 + node[len(v3) :]
        return node

    response.set_data(json.dumps(walk(data), separators=(",", ":")))
    return response


def _has_media(node: Any) -> bool:
    if isinstance(node, dict):
        return node.get("type") in ("media", "mediaInline") or any(_has_media(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_media(v) for v in node)
    return False
