"""Roles and the least role each route needs (viewer < operator < admin), checked centrally, deny by default.

- viewer: reads everything of its organisation; operator: also runs backups and restores and cancels runs;
  admin: also edits plans, storages, members, Jira tokens and notifications. The connector's service
  token acts as admin of its one tenant.
- Every route needs a rule, or everyone is refused (403). Declare a route's least role with the decorator
  (any position among the route's decorators), the words finishing "Viewers cannot ...":

      from backend.auth.roles import least_role

      @bp.post("/storages/<storage_id>/edit")
      @member
      @least_role("admin", "edit storages")
      def edit_storage(storage_id: str): ...

  or add the endpoint to RULES below. Routes anyone may open (sign-in, static files, the SSO hand-off,
  an invitation link) go in PUBLIC or use `@least_role(PUBLIC_ROLE)`.
- Where it is checked: the API's guard (backend/api/__init__.py) after authorising the tenant and the
  objects in the URL (404 first, then 403); `init_app`'s hook for every other route, after the session's
  CSRF check. The organisation is the one the URL's object (plan_id, run_id, storage_id) belongs to, else
  the page's current one (?org=, the switcher): so a page's view must look up any other object it names
  in that same current organisation (as backend/ui/settings.py does), or add its URL parameter to
  OBJECTS in backend/auth/access.py. Templates get `may("ui.edit_plan")` to hide what the role may not do. tests/backend/test_roles.py walks app.url_map: a route without a rule fails it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, g

ROLES = ("viewer", "operator", "admin")  # each may do all the ones before it may
RANK = {role: n for n, role in enumerate(ROLES)}
PUBLIC_ROLE = "public"
ROLE_TEXT = {
    "viewer": "read only: sees plans, runs and settings",
    "operator": "also runs backups and restores, cancels runs",
    "admin": "also edits plans, storages, members and the Jira account",
}


@dataclass(frozen=True)
class Rule:
    """The least role a route needs, and what it does in words ("edit plans") for the refusal."""

    role: str
    action: str = "do this"


def _rule(role: str, action: str = "do this") -> Rule:
    if role != PUBLIC_ROLE and role not in RANK:
        raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)} or {PUBLIC_ROLE!r}")
    return Rule(role, action)


PUBLIC = {
    "static",
    "sso.sso",
    "ui.login",
    "ui.login_post",
    "ui.logout",
    "api.openapi.document",
}

# endpoint -> the least role. Routes declared with @least_role need no line here.
RULES: dict[str, Rule] = {
    # the API (backend/api/)
    "api.organisations.my_organisations": _rule("viewer"),
    "api.organisations.put_organisation": _rule("admin", "change the organisation"),
    "api.organisations.status": _rule("viewer"),
    "api.organisations.suspend": _rule("admin", "suspend the organisation"),
    "api.accounts.get_account": _rule("viewer"),
    "api.accounts.put_account": _rule("admin", "replace the Jira token"),
    "api.accounts.check_account_now": _rule("operator", "check the Jira token"),
    "api.members.list_members": _rule("viewer"),
    "api.members.change_role": _rule("admin", "change roles"),
    "api.members.delete_member": _rule("admin", "remove members"),
    "api.members.list_invitations": _rule("admin", "see invitations"),
    "api.members.create_invitation": _rule("admin", "invite members"),
    "api.members.delete_invitation": _rule("admin", "withdraw invitations"),
    "api.plans.list_plans": _rule("viewer"),
    "api.plans.get_plan": _rule("viewer"),
    "api.plans.create_plan": _rule("admin", "edit plans"),
    "api.plans.patch_plan": _rule("admin", "edit plans"),
    "api.plans.delete_plan": _rule("admin", "edit plans"),
    "api.runs.list_runs": _rule("viewer"),
    "api.runs.get_run": _rule("viewer"),
    "api.runs.run_logs": _rule("viewer"),
    "api.runs.start_run": _rule("operator", "run backups"),
    "api.runs.cancel_run": _rule("operator", "cancel runs"),
    "api.storages.list_storages": _rule("viewer"),
    "api.storages.get_storage": _rule("viewer"),
    "api.storages.create_storage": _rule("admin", "edit storages"),
    "api.storages.patch_storage": _rule("admin", "edit storages"),
    "api.storages.delete_storage": _rule("admin", "edit storages"),
    "api.storages.test_storage": _rule("operator", "test storages"),
    # the pages (backend/ui/)
    "ui.dashboard": _rule("viewer"),
    "ui.switch_org": _rule("viewer"),
    "ui.plans": _rule("viewer"),
    "ui.new_plan": _rule("admin", "edit plans"),
    "ui.create_plan": _rule("admin", "edit plans"),
    "ui.edit_plan": _rule("admin", "edit plans"),
    "ui.update_plan": _rule("admin", "edit plans"),
    "ui.duplicate_plan": _rule("admin", "edit plans"),
    "ui.toggle_plan": _rule("admin", "edit plans"),
    "ui.confirm_delete": _rule("admin", "edit plans"),
    "ui.delete_plan": _rule("admin", "edit plans"),
    "ui.run_plan": _rule("operator", "run backups"),
    "ui.runs": _rule("viewer"),
    "ui.storages": _rule("viewer"),
    "ui.snapshots": _rule("viewer"),
    "ui.restore": _rule("viewer"),
    "ui.notifications": _rule("viewer"),
    "ui.audit": _rule("admin", "see the audit log"),  # declared on the view too (backend/ui/audit.py)
}


def least_role(role: str, action: str = "do this") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a view's least role (see the module's docstring); the view itself is returned unchanged."""
    rule = _rule(role, action)

    def mark(view: Callable[..., Any]) -> Callable[..., Any]:
        # An attribute, not a wrapper: functools.wraps (login_required) copies it to any outer wrapper.
        view.least_role = rule  # type: ignore[attr-defined]
        return view

    return mark


def rule_for(endpoint: str | None) -> Rule | None:
    """The rule of an endpoint: its decorator's, else RULES', else PUBLIC; None means refused (no rule)."""
    if endpoint is None:
        return None
    view = current_app.view_functions.get(endpoint)
    declared = getattr(view, "least_role", None)
    if isinstance(declared, Rule):
        return declared
    if endpoint in RULES:
        return RULES[endpoint]
    if endpoint in PUBLIC:
        return Rule(PUBLIC_ROLE)
    return None


def allows(role: str | None, least: str) -> bool:
    """Whether `role` (None: no role at all) is at least `least`."""
    if least == PUBLIC_ROLE:
        return True
    return role in RANK and RANK[role] >= RANK[least]


def refusal(role: str | None, rule: Rule) -> str:
    """The words of a 403: "Viewers cannot edit plans: that needs the admin role."."""
    who = f"{role.capitalize()}s" if role else "Only members"
    if role is None:
        return f"Only members with the {rule.role} role may {rule.action}."
    return f"{who} cannot {rule.action}: that needs the {rule.role} role."


def may(endpoint: str) -> bool:
    """For templates: may the current caller use this endpoint, in the organisation of this request?"""
    rule = rule_for(endpoint)
    return rule is not None and allows(g.get("role"), rule.role)


def init_app(app: Flask) -> None:
    """Check every non-API route's rule before its view (the API's guard checks its own routes)."""
    from backend.auth.access import guard_page

    app.before_request(guard_page)
    app.context_processor(lambda: {"may": may, "current_role": g.get("role")})
