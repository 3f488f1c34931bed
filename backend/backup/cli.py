"""The engine without the web services: keepstone init, backup, snapshots, ls, show, check, unlock."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from typing import Any

from backend.backup.spec import DATA_DEFAULTS, BackupSpec, SpecError
from backend.jira import JiraAuthError, JiraClient, JiraCredentials, JiraError, JiraUnavailable
from backend.repository import Repository, RepositoryError, WrongPassword
from backend.storage import StorageError, open_storage

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """A problem to print as one clear line (exit status 2 for usage, 1 otherwise)."""

    def __init__(self, message: str, status: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.status = status


def _repo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--repo",
        default=os.environ.get("KEEPSTONE_REPO"),
        help="repository location: file:///path, azure://container, s3://bucket (or KEEPSTONE_REPO)",
    )
    p.add_argument(
        "--password-env",
        default="KEEPSTONE_REPO_PASSWORD",
        help="environment variable holding the repository password (default KEEPSTONE_REPO_PASSWORD)",
    )


def _password(args: argparse.Namespace) -> str:
    value = os.environ.get(args.password_env)
    if value:
        return value
    if sys.stdin.isatty():
        return getpass.getpass("Repository password: ")
    raise CliError(f"set the repository password in ${args.password_env}", EXIT_USAGE)


def _storage_url(args: argparse.Namespace) -> str:
    if not args.repo:
        raise CliError("name the repository with --repo (or KEEPSTONE_REPO)", EXIT_USAGE)
    url = args.repo
    if "://" not in url:
        url = "file://" + os.path.abspath(url)
    return url


def open_repository(args: argparse.Namespace) -> Repository:
    try:
        return Repository.open(open_storage(_storage_url(args)), _password(args))
    except WrongPassword as e:
        raise CliError(str(e)) from e
    except (RepositoryError, StorageError) as e:
        raise CliError(f"cannot open the repository: {e}") from e


def add_commands(sub) -> None:
    """Add the engine's subcommands to the `keepstone` parser."""
    p = sub.add_parser("init", help="create a repository")
    _repo_args(p)
    p.set_defaults(func=_guarded(cmd_init))

    p = sub.add_parser("backup", help="back up Jira projects into a repository")
    _repo_args(p)
    p.add_argument("--site", required=True, help="Jira site URL, e.g. https://example.atlassian.net")
    p.add_argument("--email", default=os.environ.get("KEEPSTONE_JIRA_EMAIL", ""))
    p.add_argument(
        "--token-env",
        default="KEEPSTONE_JIRA_TOKEN",
        help="environment variable holding the API token (default KEEPSTONE_JIRA_TOKEN)",
    )
    p.add_argument("--token", help="API token (prefer --token-env: arguments show up in process lists)")
    p.add_argument("--projects", help="comma-separated project keys (default: all the account can browse)")
    p.add_argument(
        "--include", help=f"comma-separated data to add to the defaults ({', '.join(DATA_DEFAULTS)})"
    )
    p.add_argument("--exclude", help="comma-separated data to leave out")
    p.add_argument("--exclude-jql", help="leave out issues matching this JQL")
    p.add_argument("--corrupt-attachments", choices=("skip", "fail"), default="skip")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--full", action="store_true", help="read everything again instead of only changes")
    p.add_argument("--init", action="store_true", help="create the repository if it does not exist")
    p.add_argument("--json", action="store_true", help="print the run result as JSON")
    p.set_defaults(func=_guarded(cmd_backup))

    p = sub.add_parser("snapshots", help="list snapshots")
    _repo_args(p)
    p.add_argument("--project")
    p.set_defaults(func=_guarded(cmd_snapshots))

    p = sub.add_parser("ls", help="list what a snapshot holds")
    _repo_args(p)
    p.add_argument("snapshot")
    p.set_defaults(func=_guarded(cmd_ls))

    p = sub.add_parser("show", help="print a backed-up issue")
    _repo_args(p)
    p.add_argument("issue", help="issue key, e.g. ABC-12")
    p.add_argument("--snapshot", help="snapshot id (default: the latest holding the issue)")
    p.set_defaults(func=_guarded(cmd_show))

    p = sub.add_parser("check", help="verify a repository")
    _repo_args(p)
    p.add_argument("--read-data", action="store_true", help="also read back and decrypt every blob")
    p.set_defaults(func=_guarded(cmd_check))

    p = sub.add_parser("unlock", help="remove stale repository locks")
    _repo_args(p)
    p.add_argument("--all", action="store_true", help="remove every lock, not only stale ones")
    p.set_defaults(func=_guarded(cmd_unlock))


def _guarded(fn):
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except CliError as e:
            print(f"keepstone: {e}", file=sys.stderr)
            return e.status

    return run


def cmd_init(args: argparse.Namespace) -> int:
    try:
        repo = Repository.init(open_storage(_storage_url(args)), _password(args))
    except (RepositoryError, StorageError) as e:
        raise CliError(str(e)) from e
    print(f"created repository {repo.config['id'][:8]} at {repo.storage.location}")
    return EXIT_OK


def _spec(args: argparse.Namespace) -> BackupSpec:
    raw: dict[str, Any] = {
        "corrupt_attachments": args.corrupt_attachments,
        "max_workers": args.workers,
        "incremental": not args.full,
    }
    if args.projects:
        raw["projects"] = {
            "mode": "selected",
            "keys": [k.strip() for k in args.projects.split(",") if k.strip()],
        }
    data = dict(DATA_DEFAULTS)
    for name, value in ((args.include, True), (args.exclude, False)):
        for kind in (name or "").split(","):
            if kind.strip():
                data[kind.strip()] = value
    raw["data"] = data
    if args.exclude_jql:
        raw["exclude_jql"] = args.exclude_jql
    try:
        return BackupSpec.from_dict(raw)
    except SpecError as e:
        raise CliError("; ".join(f"{k}: {v}" for k, v in e.fields.items()), EXIT_USAGE) from e


def _progress_printer(stream=sys.stderr):
    bars: dict[str, Any] = {}
    if not stream.isatty():
        return lambda event: None, bars
    from tqdm import tqdm

    def show(event: dict[str, Any]) -> None:
        project = event.get("project")
        if event.get("phase") == "fetching" and project:
            bar = bars.get(project)
            if bar is None:
                bar = bars[project] = tqdm(
                    total=event.get("total", 0), desc=project, unit="issue", file=stream
                )
            bar.n = event.get("done", 0)
            bar.refresh()
        elif event.get("phase") == "project-done" and project in bars:
            bars.pop(project).close()

    return show, bars


def connect_jira(site: str, email: str, token: str) -> JiraClient:
    """A client for the site whose credentials were just checked; CliError with the reason if not."""
    client = JiraClient(JiraCredentials(site, email, token))
    try:
        client.myself(attempts=3)  # a site that is down is said so in seconds, not after a minute of retries
    except JiraAuthError as e:
        raise CliError(f"Jira refused the credentials for {email}: {e}") from e
    except JiraUnavailable as e:
        raise CliError(str(e)) from e
    except JiraError as e:
        raise CliError(f"{site} does not answer like a Jira site: {e}") from e
    return client


def cmd_backup(args: argparse.Namespace) -> int:
    from backend.backup.run import run_backup

    spec = _spec(args)
    token = args.token or os.environ.get(args.token_env)
    if not token:
        raise CliError(f"give the Jira API token in ${args.token_env} (or --token)", EXIT_USAGE)
    if not args.email:
        raise CliError("give the Jira account's email with --email", EXIT_USAGE)
    storage = open_storage(_storage_url(args))
    repo: Repository | None = None
    try:
        repo = Repository.open(storage, _password(args))
    except RepositoryError as e:
        if not args.init or "no repository" not in str(e):
            raise CliError(f"cannot open the repository: {e}") from e
    except WrongPassword as e:
        raise CliError(str(e)) from e
    client = connect_jira(args.site, args.email, token)
    if repo is None:  # created only once Jira has taken the credentials: a refused run leaves nothing behind
        repo = Repository.init(storage, _password(args))
    show, bars = _progress_printer()
    try:
        result = run_backup(client, repo, spec, progress=show)
    except RepositoryError as e:
        raise CliError(str(e)) from e
    finally:
        for bar in bars.values():
            bar.close()
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        for p in result.projects:
            counts = ", ".join(f"{k} {v}" for k, v in p.counts.items())
            snap = p.snapshot_id[:8] if p.snapshot_id else "-"
            print(f"{p.project:10} {p.status:9} snapshot {snap}  {counts}  ({p.requests} requests)")
            for line in p.warnings[:20] + p.errors:
                print(f"    {line}")
        for line in result.errors:
            print(f"error: {line}")
        print(f"run {result.status}: {len(result.projects)} projects, {result.requests} requests")
    return EXIT_OK if result.status in ("ok", "warning") else EXIT_FAILED


def cmd_snapshots(args: argparse.Namespace) -> int:
    repo = open_repository(args)
    for s in repo.snapshots(args.project):
        counts = s.meta.get("counts") or {}
        print(
            f"{s.short_id}  {s.time}  {s.project:10} {counts.get('issues', 0):>6} issues  "
            f"{len(s.meta.get('deleted') or [])} deleted  {s.site}"
        )
    return EXIT_OK


def cmd_ls(args: argparse.Namespace) -> int:
    repo = open_repository(args)
    try:
        snapshot = repo.snapshot(args.snapshot)
    except RepositoryError as e:
        raise CliError(str(e)) from e
    for entry in snapshot.iter_entries():
        print(f"{entry.kind:11} {entry.size:>10}  {entry.name}")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    repo = open_repository(args)
    key = args.issue.upper()
    project = key.rsplit("-", 1)[0]
    if args.snapshot:
        candidates = [repo.snapshot(args.snapshot)]
    else:
        candidates = [repo.snapshot(s.id) for s in reversed(repo.snapshots(project))]
    for snapshot in candidates:
        entry = snapshot.entry(f"issues/{key}")
        if entry is None:
            continue
        doc = repo.read_json(entry)
        for part in ("comments", "worklogs", "changelog"):
            extra = snapshot.entry(f"{part}/{key}")
            if extra is not None:
                doc[part] = repo.read_json(extra)
        doc["attachments"] = [
            e.attrs for e in snapshot.entries.values() if e.name.startswith(f"attachments/{key}/")
        ]
        print(f"# {key} in snapshot {snapshot.info.short_id} of {snapshot.info.time}", file=sys.stderr)
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return EXIT_OK
    raise CliError(f"{key} is in no snapshot" + (f" {args.snapshot}" if args.snapshot else ""))


def cmd_check(args: argparse.Namespace) -> int:
    repo = open_repository(args)
    result = repo.check(read_data=args.read_data)
    for warning in result.warnings:
        print(f"warning: {warning}")
    for error in result.errors:
        print(f"error: {error}")
    read = f", {result.blobs_read} blobs read back" if args.read_data else ""
    print(
        f"{'no errors' if result.ok else f'{len(result.errors)} errors'}: {result.snapshots} snapshots, "
        f"{result.packs} packs{read}"
    )
    return EXIT_OK if result.ok else EXIT_FAILED


def cmd_unlock(args: argparse.Namespace) -> int:
    repo = open_repository(args)
    for line in repo.unlock_stale(everything=args.all):
        print(f"removed {line}")
    return EXIT_OK
