"""A plan checked against the tenant's Jira before it is saved: its project keys exist, its JQL parses.

One path for both writers of plans, the API (backend/api/plans.py) and the plan form (backend/ui/pages.py),
after the schema (PlanIn) and before anything is stored. `jira_problems` answers the problems as
marshmallow-shaped messages ({"spec": {"projects": {"keys": [...]}}}) and whether Jira could be asked at
all; `check_plan` raises them:

ApiError
├── PlanRefused (400)   Jira answered and refused a key or the exclusion JQL, or there are no credentials
│                       to ask with (set the API token first)
└── Upstream (502)      Jira could not be asked (unreachable, kept failing, refused the stored token)

Either way nothing is saved (docs/decisions.md: why an unreachable Jira refuses rather than warns).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend import vault
from backend.db.models import JiraAccount, Organisation
from backend.errors import ApiError, Upstream
from backend.jira import JiraAuthError, JiraClient, JiraCredentials, JiraError

KEYS_A_REQUEST = 50  # /project/search takes at most 50 keys


class PlanRefused(ApiError):
    """Jira does not know a project key of the plan, or refuses its JQL; `fields` names which."""

    status, code = 400, "refused_by_jira"


@dataclass
class Problems:
    """What Jira said of a plan: messages per field (nested like marshmallow's), and whether it was asked."""

    fields: dict[str, Any] = field(default_factory=dict)
    unreachable: bool = False

    def add(self, path: tuple[str, ...], message: str, unreachable: bool) -> None:
        node = self.fields
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node.setdefault(path[-1], []).append(message)
        self.unreachable = self.unreachable or unreachable


def jira_client(s: Session, org: Organisation, quick: bool = False) -> tuple[JiraClient | None, str]:
    """A Jira client with the tenant's stored credentials (few retries, short timeouts; `quick`: one
    attempt, shorter still, for a page that can do without Jira's answer), or why there is none."""
    from backend.services import services

    account = s.scalar(select(JiraAccount).where(JiraAccount.organisation_id == org.id))
    if account is None:
        return None, "no Jira credentials yet: set the API token (Settings)"
    token = vault.jira_token(services().config.secret_key, account.token_sealed, org.cloud_id)
    credentials = JiraCredentials(account.site_url, account.email, token)
    if quick:
        return JiraClient(credentials, max_attempts=1, timeout=(3, 5)), ""
    return JiraClient(credentials, max_attempts=2, timeout=(5, 15)), ""


def site_projects(s: Session, org: Organisation, quick: bool = False) -> tuple[list[dict[str, Any]], str]:
    """The site's projects, live from Jira with the tenant's stored credentials; or why they cannot be listed."""
    client, why = jira_client(s, org, quick)
    if client is None:
        return [], why
    try:
        projects = client.projects()
    except JiraAuthError:
        return [], "Jira refused the stored API token: set a new one (Settings)"
    except JiraError as e:
        return [], f"Jira at {org.site_url} could not list its projects: {e}"
    finally:
        client.close()
    return sorted(projects, key=lambda p: p.get("key", "")), ""


def unknown_keys(client: JiraClient, keys: list[str]) -> list[str]:
    """The keys Jira shows no project for (live or archived), asked 50 keys a request."""
    found: set[str] = set()
    for start in range(0, len(keys), KEYS_A_REQUEST):
        batch = keys[start : start + KEYS_A_REQUEST]
        page = client.get_json(
            "/rest/api/3/project/search",
            keys=",".join(batch),
            status="live,archived",
            maxResults=KEYS_A_REQUEST,
        )
        found |= {str(p.get("key", "")).upper() for p in page.get("values") or []}
    return [k for k in keys if k not in found]


def jql_errors(client: JiraClient, jql: str) -> list[str]:
    """Jira's errors for this JQL (POST /rest/api/3/jql/parse, strict: fields and values checked too)."""
    try:
        answer = client.request(
            "POST", "/rest/api/3/jql/parse", params={"validation": "strict"}, json={"queries": [jql]}
        ).json()
    except JiraError as e:
        if e.status == 400 and not isinstance(e, JiraAuthError):
            return [str(m) for m in e.messages] or [str(e)]
        raise
    queries = answer.get("queries") or [{}]
    return [str(m) for m in queries[0].get("errors") or []]


def jira_problems(s: Session, org: Organisation, spec: dict[str, Any]) -> Problems:
    """Ask Jira about the spec's selected keys and exclusion JQL (a schema-valid spec); nothing is stored."""
    problems = Problems()
    projects = spec.get("projects") or {}
    keys = list(dict.fromkeys(str(k).strip().upper() for k in projects.get("keys") or [] if str(k).strip()))
    if projects.get("mode") != "selected":
        keys = []
    jql = (spec.get("exclude_jql") or "").strip()
    if not keys and not jql:
        return problems
    key_path, jql_path = ("spec", "projects", "keys"), ("spec", "exclude_jql")
    client, why = jira_client(s, org)
    if client is None:
        if keys:
            problems.add(key_path, f"the keys could not be checked with Jira: {why}", False)
        if jql:
            problems.add(jql_path, f"the JQL could not be checked with Jira: {why}", False)
        return problems
    try:
        if keys:
            try:
                unknown = unknown_keys(client, keys)
            except JiraAuthError:
                problems.add(
                    key_path, "the keys could not be checked: Jira refused the stored API token", True
                )
            except JiraError as e:
                problems.add(key_path, f"the keys could not be checked: {e}", True)
            else:
                if unknown:
                    names = ", ".join(unknown)
                    problems.add(
                        key_path,
                        f"no project {names} in Jira at {org.site_url} (or the stored account may not browse it)",
                        False,
                    )
        if jql and problems.unreachable:  # one wait for an unreachable Jira is enough
            problems.add(jql_path, "the JQL could not be checked either: Jira did not answer", True)
        elif jql:
            try:
                errors = jql_errors(client, jql)
            except JiraAuthError:
                problems.add(
                    jql_path, "the JQL could not be checked: Jira refused the stored API token", True
                )
            except JiraError as e:
                problems.add(jql_path, f"the JQL could not be checked: {e}", True)
            else:
                if errors:
                    problems.add(jql_path, "Jira refused this JQL: " + "; ".join(errors), False)
    finally:
        client.close()
    return problems


def check_plan(s: Session, org: Organisation, spec: dict[str, Any]) -> None:
    """Raise PlanRefused (400) or Upstream (502, Jira could not be asked) naming the fields; else return."""
    problems = jira_problems(s, org, spec)
    if not problems.fields:
        return
    if problems.unreachable:
        raise Upstream("Jira could not check the plan, so it was not saved", problems.fields)
    raise PlanRefused("Jira refused the plan's project keys or JQL", problems.fields)
