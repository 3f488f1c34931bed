"""The restore commands: `keepstone restore`, `keepstone diff`, `keepstone history`."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

from backend.audit.cli import record_cli as audit_cli
from backend.backup.cli import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    _guarded,
    _repo_args,
    jira_client,
    open_repository,
)
from backend.repository import RepositoryError
from backend.restore.plan import PARTS, RestoreError, RestoreRequest, build_plan
from backend.restore.progress import key_map_lines, run_on_terminal
from keepstone.options import jira_args, jira_credentials


def add_commands(sub) -> None:
    """Add the restore subcommands to the `keepstone` parser."""
    p = sub.add_parser("restore", help="restore issues, a project or configuration into Jira")
    _repo_args(p)
    p.add_argument("--snapshot", required=True, help="snapshot id (or a unique prefix)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--issues", help="comma-separated issue keys")
    what.add_argument("--project", action="store_true", help="every issue of the snapshot's project")
    what.add_argument("--filter", help="issues whose fields match, e.g. issuetype=Bug,labels=customer")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--original", action="store_true", help="into the original project (re-create what is gone)"
    )
    where.add_argument("--to-project", help="into another existing project")
    where.add_argument("--new-project", help="into a new project with this key")
    p.add_argument("--new-project-name")
    p.add_argument(
        "--only",
        help=f"comma-separated parts ({', '.join(PARTS)}); default all. configuration: components, versions, "
        "sprints and, with --project or alone, boards with their filters, the project's filters and dashboards, "
        "role members",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="with --original: overwrite fields of existing issues"
    )
    p.add_argument(
        "--dry-run", action="store_true", help="show the plan, conflicts and losses; change nothing"
    )
    p.add_argument("--report", action="store_true", help="compare the result with the backup, item by item")
    jira_args(p)
    p.add_argument("--journal", help="journal file (default: var/restores/<id>.sqlite, so a re-run resumes)")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_guarded(cmd_restore))

    p = sub.add_parser("diff", help="what changed in an issue between two snapshots")
    _repo_args(p)
    p.add_argument("issue")
    p.add_argument("first")
    p.add_argument("second")
    p.add_argument("--json", action="store_true", help="print the differences as JSON")
    p.set_defaults(func=_guarded(cmd_diff))

    p = sub.add_parser("history", help="an issue's versions across snapshots")
    _repo_args(p)
    p.add_argument("issue")
    p.set_defaults(func=_guarded(cmd_history))


def _request(args: argparse.Namespace) -> RestoreRequest:
    target, key = ("original", None)
    if args.to_project:
        target, key = "existing", args.to_project
    elif args.new_project:
        target, key = "new", args.new_project
    flt = {}
    if args.filter:
        for part in args.filter.split(","):
            name, sep, value = part.partition("=")
            if not sep:
                raise CliError(f"a filter looks like field=value, not {part!r}", EXIT_USAGE)
            flt[name.strip()] = value.strip()
    parts = {p.strip() for p in args.only.split(",")} if args.only else set(PARTS)
    if parts != {"configuration"}:  # --only configuration leaves every issue alone
        parts.add("issues")
    return RestoreRequest(
        args.snapshot,
        [k.strip() for k in args.issues.split(",")] if args.issues else None,
        bool(args.project),
        flt,
        target,
        key,
        args.new_project_name,
        parts,
        args.overwrite,
    )


def cmd_restore(args: argparse.Namespace) -> int:
    from backend.restore.execute import Restorer
    from backend.restore.fidelity import fidelity_report, format_report
    from backend.restore.journal import Journal

    if not args.dry_run and isinstance(problem := jira_credentials(args), str):
        raise CliError(problem, EXIT_USAGE)  # said before any work
    repo = open_repository(args)
    request = _request(args)
    try:
        plan = build_plan(repo, request)
    except RestoreError as e:
        raise CliError(str(e), EXIT_USAGE) from e
    if args.dry_run:
        for line in plan.describe():
            print(line)
        return EXIT_OK
    audit_cli("restore.start", args.repo, {"snapshot": plan.snapshot.id, "site": args.site})
    client = jira_client(args)
    ident = hashlib.sha256(
        json.dumps(
            [
                plan.snapshot.id,
                sorted(request.issues or []),
                request.whole_project,
                request.filter,
                request.target,
                request.target_key,
                args.site,
            ],
            sort_keys=True,
        ).encode()
    ).hexdigest()[:16]
    journal = Journal(args.journal or os.path.join("var", "restores", f"{ident}.sqlite"))
    try:
        result = run_on_terminal(
            lambda **kw: Restorer(client, repo, plan, journal, workers=args.workers, **kw),
            plan,
            client,
            args.json,
        )
    except RestoreError as e:
        raise CliError(str(e)) from e
    finally:
        journal.close()
    out = result.to_dict()
    if args.report:
        out["fidelity"] = fidelity_report(client, repo, plan, result)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(
            f"restored into {result.target_project}: "
            + ", ".join(f"{k} {v}" for k, v in result.created.items())
        )
        for k, v in result.skipped.items():
            print(f"  skipped {v} {k}")
        for line in result.lost[:50]:
            print(f"  lost: {line}")
        for line in result.errors:
            print(f"  error: {line}")
        print("keys (old -> new):")
        print("\n".join(key_map_lines(result.mapping)) or "  all unchanged")
        if args.report:
            for line in format_report(out["fidelity"]):
                print(line)
    return EXIT_OK if result.status == "ok" else EXIT_FAILED


def cmd_diff(args: argparse.Namespace) -> int:
    from backend.restore.diff import diff

    repo = open_repository(args)
    try:
        result = diff(repo, args.issue.upper(), args.first, args.second)
    except RepositoryError as e:
        raise CliError(str(e)) from e
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return EXIT_OK
    if not any(result[k] for k in ("fields", "comments_added", "comments_removed", "comments_changed")):
        print(f"{result['issue']}: no difference")
    for name, change in result["fields"].items():
        print(f"{change.get('name', name)}:")
        for line in change["changes"]:
            print(f"  {line}")
    for cid in result["comments_added"]:
        print(f"comment {cid}: added")
    for cid in result["comments_removed"]:
        print(f"comment {cid}: removed")
    for cid, lines in result["comments_changed"].items():
        print(f"comment {cid}: changed")
        for line in lines:
            print(f"  {line}")
    return EXIT_OK


def cmd_history(args: argparse.Namespace) -> int:
    from backend.restore.diff import history

    repo = open_repository(args)
    rows = history(repo, args.issue.upper())
    if not rows:
        print(f"keepstone: {args.issue.upper()} is in no snapshot", file=sys.stderr)
        return EXIT_FAILED
    for row in rows:
        print(f"{row['snapshot']}  {row['time']}  updated {row['updated']}  version {row['version']}")
    return EXIT_OK
