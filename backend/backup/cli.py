"""The engine without the web services: keepstone init, backup, snapshots, ls, show, check, unlock,
forget, keep and prune."""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from backend.audit.cli import record_cli as audit_cli
from backend.backup.spec import DATA_DEFAULTS, BackupSpec, SpecError
from backend.jira import JiraAuthError, JiraClient, JiraCredentials, JiraError, JiraUnavailable
from backend.repository import Repository, RepositoryError, RepositoryLocked, WrongPassword
from backend.repository.prune import PruneResult, parse_max_unused, prune
from backend.repository.retention import COUNT_RULES, Policy, PolicyError, forget
from backend.storage import StorageError, open_storage
from backend.storage.base import KINDS
from keepstone.options import jira_args, jira_credentials
from keepstone.terminal import Terminal, counts_text, duration, grouped, output_args, plural, size

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
    p.add_argument(
        "--password-file",
        metavar="FILE",
        help="read the repository password (or the recovery passphrase) from the first line of FILE",
    )


def read_password_file(path: str, option: str = "--password-file") -> str:
    """The first line of a password file (as restic's --password-file); CliError if unreadable or empty."""
    try:
        with open(path, encoding="utf-8") as f:
            value = f.readline().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as e:
        raise CliError(f"{option} {path}: cannot be read ({e.__class__.__name__})", EXIT_USAGE) from e
    if not value:
        raise CliError(f"{option} {path}: the first line is empty", EXIT_USAGE)
    return value


def _password(args: argparse.Namespace) -> str:
    if getattr(args, "password_file", None):
        return read_password_file(args.password_file)
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


def _local_folders(url: str) -> list[Path]:
    """The folders a file:// storage at `url` would create (deepest first); [] for other storages."""
    parsed = urlparse(url)
    if parsed.scheme != "file":
        return []
    root = Path(unquote(parsed.path))
    wanted = [root / kind for kind in KINDS] + [root, *root.parents]
    return sorted((p for p in wanted if not p.exists()), key=lambda p: -len(p.parts))


@contextmanager
def leave_nothing_behind(url: str) -> Iterator[None]:
    """Remove the (still empty) folders opening a local storage created when what follows fails."""
    created = _local_folders(url)
    try:
        yield
    except BaseException:
        for folder in created:
            with suppress(OSError):
                folder.rmdir()  # only an empty folder: never anything a run wrote
        raise


def open_repository(args: argparse.Namespace) -> Repository:
    url = _storage_url(args)
    root = Path(unquote(urlparse(url).path))
    if url.startswith("file://") and not (root / "config").exists():
        raise CliError(f"there is no repository at {root} (create one with `keepstone init`)")
    try:
        with leave_nothing_behind(url):
            return Repository.open(open_storage(url), _password(args))
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
    jira_args(p)
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
    output_args(p, "print the run result as JSON")
    p.add_argument(
        "--time",
        help="record the snapshots at this moment (ISO 8601 with its offset, e.g. 2026-03-29T01:30:00+01:00)",
    )
    p.set_defaults(func=_guarded(cmd_backup))

    p = sub.add_parser("snapshots", help="list snapshots")
    _repo_args(p)
    p.add_argument("--project")
    p.add_argument("--json", action="store_true", help="print the snapshots as JSON")
    p.set_defaults(func=_guarded(cmd_snapshots))

    p = sub.add_parser(
        "forget",
        help="forget snapshots by a retention policy (or by id); the data stays until a prune",
        description="Keep what the --keep-* rules keep (per project, calendar periods in --time-zone) and "
        "forget the other snapshots. The newest snapshot of each project and snapshots marked with "
        "`keepstone keep` are always kept. Naming snapshot ids forgets exactly those. See docs/retention.md.",
    )
    _repo_args(p)
    p.add_argument("snapshots", nargs="*", metavar="SNAPSHOT", help="forget exactly these snapshots")
    for rule in COUNT_RULES:
        p.add_argument(f"--keep-{rule}", metavar="N", help=f"keep the newest snapshot of the last N {rule} periods"
                       if rule != "last" else "keep the N newest snapshots")  # fmt: skip
    p.add_argument(
        "--keep-within",
        metavar="DURATION",
        help="keep snapshots younger than DURATION (30d, 12h, 2w, 6m, 1y) before the newest",
    )
    p.add_argument("--project", help="only this project's snapshots")
    p.add_argument("--time-zone", default=os.environ.get("KEEPSTONE_TIME_ZONE", "UTC"),
                   help="time zone of the calendar periods (default UTC or $KEEPSTONE_TIME_ZONE)")  # fmt: skip
    p.add_argument("--dry-run", action="store_true", help="say what would be forgotten; change nothing")
    output_args(p, "print what is kept (and why) and forgotten as JSON")
    p.add_argument("--prune", action="store_true", help="prune after forgetting (see `keepstone prune`)")
    _max_unused_arg(p)
    p.set_defaults(func=_guarded(cmd_forget))

    p = sub.add_parser(
        "prune",
        help="delete data no snapshot needs (takes the exclusive lock)",
        description="Delete the packs no snapshot needs and repack the packs whose unused share is above "
        "--max-unused; the new index is written before anything is deleted (docs/storage-format.md).",
    )
    _repo_args(p)
    _max_unused_arg(p)
    p.add_argument("--dry-run", action="store_true", help="say what would be deleted; change nothing")
    output_args(p, "print the figures as JSON")
    p.set_defaults(func=_guarded(cmd_prune))

    p = sub.add_parser(
        "keep", help="mark snapshots kept: no policy forgets them (--remove takes the mark off)"
    )
    _repo_args(p)
    p.add_argument("snapshots", nargs="+", metavar="SNAPSHOT")
    p.add_argument("--note", default="", help="why it is kept")
    p.add_argument("--remove", action="store_true", help="take the keep mark off")
    p.set_defaults(func=_guarded(cmd_keep))

    p = sub.add_parser("ls", help="list what a snapshot holds")
    _repo_args(p)
    p.add_argument("snapshot")
    p.add_argument("--json", action="store_true", help="print the entries as JSON")
    p.set_defaults(func=_guarded(cmd_ls))

    p = sub.add_parser("show", help="print a backed-up issue")
    _repo_args(p)
    p.add_argument("issue", help="issue key, e.g. ABC-12")
    p.add_argument("--snapshot", help="snapshot id (default: the latest holding the issue)")
    p.add_argument("--json", action="store_true", help="print the backed-up document as JSON instead")
    p.set_defaults(func=_guarded(cmd_show))

    p = sub.add_parser("check", help="verify a repository")
    _repo_args(p)
    p.add_argument("--read-data", action="store_true", help="also read back and decrypt every blob")
    output_args(p, "print what was found as JSON")
    p.set_defaults(func=_guarded(cmd_check))

    p = sub.add_parser("unlock", help="remove stale repository locks")
    _repo_args(p)
    p.add_argument("--all", action="store_true", help="remove every lock, not only stale ones")
    p.set_defaults(func=_guarded(cmd_unlock))

    from backend.backup import copy_cli  # keepstone copy (replication), in a module of its own

    copy_cli.add_commands(sub)

    from backend.backup import key_cli  # keepstone key list|add|remove|passwd, in a module of its own

    key_cli.add_commands(sub)


def _guarded(fn):
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except CliError as e:
            print(f"keepstone: {e}", file=sys.stderr)
            return e.status

    return run


def cmd_init(args: argparse.Namespace) -> int:
    url = _storage_url(args)
    try:
        with leave_nothing_behind(url):
            repo = Repository.init(open_storage(url), _password(args))
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


def jira_client(args: argparse.Namespace) -> JiraClient:
    """A checked client from the shared Jira options (keepstone.options.jira_args)."""
    creds = jira_credentials(args)
    if isinstance(creds, str):
        raise CliError(creds, EXIT_USAGE)
    return connect_jira(*creds)


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(
            f"--time: {text!r} is not an ISO 8601 time, e.g. 2026-03-29T01:30:00+01:00", EXIT_USAGE
        ) from None
    if moment.tzinfo is None:
        raise CliError(f"--time: give {text!r} with its UTC offset (e.g. +01:00 or Z)", EXIT_USAGE)
    return moment


def cmd_backup(args: argparse.Namespace) -> int:
    from backend.backup.run import run_backup

    spec = _spec(args)
    moment = _moment(args.time) if args.time else None
    creds = jira_credentials(args)
    if isinstance(creds, str):
        raise CliError(creds, EXIT_USAGE)
    url = _storage_url(args)
    with leave_nothing_behind(url):  # a refused run leaves no folder behind
        storage = open_storage(url)
        repo: Repository | None = None
        try:
            repo = Repository.open(storage, _password(args))
        except WrongPassword as e:
            raise CliError(str(e)) from e
        except RepositoryError as e:
            if "no repository" not in str(e):
                raise CliError(f"cannot open the repository: {e}") from e
            if not args.init:
                raise CliError(
                    f"there is no repository at {storage.location}; add --init to create one"
                ) from e
        client = connect_jira(*creds)
        if repo is None:  # created only once Jira has taken the credentials
            repo = Repository.init(storage, _password(args))
    term = Terminal(args)
    cancel = threading.Event()
    outcome: dict[str, Any] = {}
    finished = threading.Event()  # not Thread.join: a join cut short by Ctrl-C can lose track of the thread
    t0 = time.monotonic()

    def work(show) -> None:
        try:
            outcome["result"] = run_backup(
                client, repo, spec, progress=show, snapshot_time=moment, cancel=cancel
            )
        except BaseException as e:  # handed to the main thread
            outcome["error"] = e
        finally:
            finished.set()

    with term.backup_progress() as show:
        worker = threading.Thread(target=work, args=(show,), name="backup", daemon=True)
        worker.start()
        try:
            while not finished.wait(0.1):
                pass
        except KeyboardInterrupt:
            cancel.set()  # projects not finished write no snapshot; a second Ctrl-C stops at once
            term.console.print("stopping: finishing the requests in flight (Ctrl-C again to quit at once)")
            finished.wait(30)
            if "result" in outcome and not args.json:
                _backup_summary(term, outcome["result"], time.monotonic() - t0)
            raise
    if isinstance(outcome.get("error"), RepositoryError):
        raise CliError(str(outcome["error"])) from outcome["error"]
    if "error" in outcome:
        raise outcome["error"]
    result = outcome["result"]
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        _backup_summary(term, result, time.monotonic() - t0)
    return EXIT_OK if result.status in ("ok", "warning") else EXIT_FAILED


STATUS_STYLE = {"ok": "green", "warning": "yellow", "failed": "red", "partial": "red", "cancelled": "red"}


def _backup_summary(term: Terminal, result: Any, seconds: float) -> None:
    for p in result.projects:
        snap = f"snapshot {p.snapshot_id[:8]}" if p.snapshot_id else "no snapshot"
        counts = counts_text(p.counts, p.new_bytes)
        line = (
            f"{p.project:10} {p.status:9} {snap}  {counts}"
            if counts and p.counts
            else f"{p.project:10} {p.status:9} {snap}"
        )
        if p.status == "ok":
            term.note(line)
        else:
            term.line(line, STATUS_STYLE.get(p.status))
        for warning in grouped(p.warnings):
            term.problem(f"    {warning}")
        for error in p.errors:
            term.line(f"    error: {error}", "red")
    for error in result.errors:
        term.line(f"error: {error}", "red")
    term.line(
        f"run {result.status}: {plural(len(result.projects), 'project')} in {duration(seconds)}, "
        f"{result.requests} requests",
        STATUS_STYLE.get(result.status),
    )


def cmd_snapshots(args: argparse.Namespace) -> int:
    repo = open_repository(args)
    marks = repo.keep_marks()
    snapshots = repo.snapshots(args.project)
    if args.json:
        print(json.dumps([
            {"id": s.id, "time": s.time, "project": s.project, "site": s.site, "parent": s.parent,
             "keep": s.id in marks, "counts": s.meta.get("counts") or {}}
            for s in snapshots
        ], indent=2))  # fmt: skip
        return EXIT_OK
    for s in snapshots:
        counts = s.meta.get("counts") or {}
        print(
            f"{s.short_id}  {s.time}  {s.project:10} {counts.get('issues', 0):>6} issues  "
            f"{len(s.meta.get('deleted') or [])} deleted  {s.site}" + ("  [keep]" if s.id in marks else "")
        )
    return EXIT_OK


def _policy(args: argparse.Namespace) -> Policy | None:
    """The policy the --keep-* flags give (a custom scheme), None if none was given."""
    raw: dict[str, Any] = {"scheme": "custom"}
    for rule in COUNT_RULES:
        value = getattr(args, f"keep_{rule}")
        if value is None:
            continue
        try:
            raw[f"keep_{rule}"] = int(value)
        except ValueError:
            raise CliError(f"--keep-{rule}: {value!r} is not a whole number", EXIT_USAGE) from None
    if args.keep_within is not None:
        raw["keep_within"] = args.keep_within
    if len(raw) == 1:
        return None
    try:
        return Policy.from_dict(raw)
    except PolicyError as e:
        flag = "--" + e.field.replace("_", "-")
        if e.field == "keep_last" and "at least one rule" in e.message:
            raise CliError("every --keep-* rule given is 0: give at least one above 0", EXIT_USAGE) from None
        raise CliError(f"{flag}: {e.message}", EXIT_USAGE) from None


def _max_unused_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--max-unused",
        default="5%",
        metavar="PERCENT",
        help="repack a pack when more than this share of its bytes is unused (0%%-100%%, default 5%%)",
    )


def _max_unused(args: argparse.Namespace) -> float:
    try:
        return parse_max_unused(args.max_unused)
    except RepositoryError as e:
        raise CliError(f"--max-unused: {e}", EXIT_USAGE) from None


def _run_prune(
    repo: Repository, max_unused: float, dry_run: bool, ignore: set[str] | None = None
) -> PruneResult:
    try:
        return prune(repo, max_unused, dry_run, ignore or set())
    except RepositoryLocked as e:
        raise CliError(f"{e}; nothing was pruned") from e
    except (RepositoryError, StorageError) as e:
        raise CliError(f"prune: {e}") from e


def cmd_prune(args: argparse.Namespace) -> int:
    max_unused = _max_unused(args)
    repo = open_repository(args)
    term = Terminal(args)
    with term.spinner("pruning: reading the index and the snapshots"):
        result = _run_prune(repo, max_unused, args.dry_run)
    audit_cli("prune", args.repo, {"summary": result.summary()}, skip=args.dry_run)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        term.line(result.summary())
    # A deletion the storage refused (retention prune did not know of) is a failure to see, not to skip.
    return EXIT_FAILED if result.refused else EXIT_OK


def cmd_forget(args: argparse.Namespace) -> int:
    max_unused = _max_unused(args)
    policy = _policy(args)
    try:
        tz = ZoneInfo(args.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CliError(
            f"--time-zone: {args.time_zone!r} is not a known time zone (e.g. Europe/Berlin)", EXIT_USAGE
        ) from None
    if policy is None and not args.snapshots:
        raise CliError("give at least one --keep-* rule, or the ids of the snapshots to forget", EXIT_USAGE)
    if policy is not None and args.snapshots:
        raise CliError("give snapshot ids or --keep-* rules, not both", EXIT_USAGE)
    repo = open_repository(args)
    if args.snapshots:
        return _forget_ids(repo, args, max_unused)
    assert policy is not None
    project = args.project.upper() if args.project else None
    try:
        result = forget(
            repo, policy, tz, include=lambda s: project is None or s.project == project, dry_run=args.dry_run
        )
    except RepositoryLocked as e:
        raise CliError(f"{e}; nothing was forgotten") from e
    except RepositoryError as e:
        raise CliError(str(e)) from e
    audit_cli("forget", args.repo, {"forgotten": [v.id for v in result.forgotten]}, skip=args.dry_run)
    pruned = None
    if args.prune:
        with Terminal(args).spinner("pruning: reading the index and the snapshots"):
            pruned = _run_prune(repo, max_unused, args.dry_run, {v.id for v in result.forgotten})
    if args.json:
        out = result.to_dict()
        if pruned is not None:
            out["prune"] = pruned.to_dict()
        print(json.dumps(out, indent=2))
        return EXIT_OK
    term = Terminal(args)
    term.note(f"{'dry run: ' if args.dry_run else ''}policy {policy.describe()}, periods in {args.time_zone}")
    for line in result.summary():
        term.line(line)
    if not result.verdicts:
        term.line("no snapshots" + (f" of {project}" if project else ""))
    if pruned is not None:
        term.line(pruned.summary())
    return EXIT_OK


def _forget_ids(repo: Repository, args: argparse.Namespace, max_unused: float) -> int:
    """Forget exactly the named snapshots (even a project's newest: the admin asked), never a marked one."""
    try:
        ids = [repo.snapshot(name).id for name in args.snapshots]
    except RepositoryError as e:
        raise CliError(f"{e}; nothing was forgotten") from e
    marks = repo.keep_marks()
    marked = [i[:8] for i in ids if i in marks]
    if marked:
        raise CliError(
            f"{', '.join(marked)} marked kept (`keepstone keep --remove` first); nothing was forgotten"
        )
    if not args.dry_run:
        try:
            with repo.lock(exclusive=True):
                for snapshot_id in ids:
                    repo.forget(snapshot_id)
        except RepositoryLocked as e:
            raise CliError(f"{e}; nothing was forgotten") from e
        audit_cli("forget", args.repo, {"forgotten": ids})
    pruned = None
    if args.prune:
        with Terminal(args).spinner("pruning: reading the index and the snapshots"):
            pruned = _run_prune(repo, max_unused, args.dry_run, set(ids))
    if args.json:
        out: dict[str, Any] = {"dry_run": args.dry_run, "forget": ids, "removed": [] if args.dry_run else ids}
        if pruned is not None:
            out["prune"] = pruned.to_dict()
        print(json.dumps(out))
    else:
        verb = "would forget" if args.dry_run else "forgot"
        print(f"{verb} {len(ids)} snapshots: {' '.join(i[:8] for i in ids)}")
        if pruned is not None:
            print(pruned.summary())
    return EXIT_OK


def cmd_keep(args: argparse.Namespace) -> int:
    repo = open_repository(args)
    try:
        ids = [repo.snapshot(name).id for name in args.snapshots]
    except RepositoryError as e:
        raise CliError(str(e)) from e
    for snapshot_id in ids:
        if args.remove:
            had = repo.unmark_keep(snapshot_id)
            print(f"{snapshot_id[:8]}: {'keep mark removed' if had else 'was not marked'}")
        else:
            repo.mark_keep(snapshot_id, args.note)
            print(f"{snapshot_id[:8]}: marked kept")
    return EXIT_OK


def cmd_ls(args: argparse.Namespace) -> int:
    repo = open_repository(args)
    try:
        snapshot = repo.snapshot(args.snapshot)
    except RepositoryError as e:
        raise CliError(str(e)) from e
    if args.json:
        print(json.dumps([{"name": e.name, "kind": e.kind, "size": e.size} for e in snapshot.iter_entries()]))
        return EXIT_OK
    for entry in snapshot.iter_entries():
        print(f"{entry.kind:11} {size(entry.size):>10}  {entry.name}")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    repo = open_repository(args)
    key = args.issue.upper()
    project = key.rsplit("-", 1)[0]
    if args.snapshot:
        try:
            candidates = [repo.snapshot(args.snapshot)]
        except RepositoryError as e:
            raise CliError(str(e)) from e
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
        if args.json:
            print(json.dumps(doc, indent=2, ensure_ascii=False))
            return EXIT_OK
        from keepstone.render import field_names, issue_lines

        site_fields = snapshot.entry("site/fields")
        names, hidden = field_names(repo.read_json(site_fields) if site_fields else [])
        lines = issue_lines(doc, names, hidden)
        lines.insert(1, f"in snapshot {snapshot.info.short_id} of {snapshot.info.time}")
        Terminal(args).line("\n".join(lines))
        return EXIT_OK
    raise CliError(f"{key} is in no snapshot" + (f" {args.snapshot}" if args.snapshot else ""))


def cmd_check(args: argparse.Namespace) -> int:
    repo = open_repository(args)
    term = Terminal(args)
    what = "reading back every blob" if args.read_data else "checking indexes, packs and snapshots"
    t0 = time.monotonic()
    with term.spinner(f"check: {what}"):
        result = repo.check(read_data=args.read_data)
    if args.json:
        print(json.dumps({**dataclasses.asdict(result), "ok": result.ok}, indent=2))
        return EXIT_OK if result.ok else EXIT_FAILED
    for warning in result.warnings:
        term.note(f"warning: {warning}")
    for error in result.errors:
        term.line(f"error: {error}", "red")
    read = f", {result.blobs_read} blobs read back" if args.read_data else ""
    term.line(
        f"{'no errors' if result.ok else plural(len(result.errors), 'error')}: "
        f"{plural(result.snapshots, 'snapshot')}, {plural(result.packs, 'pack')}{read} "
        f"in {duration(time.monotonic() - t0)}",
        None if result.ok else "red",
    )
    return EXIT_OK if result.ok else EXIT_FAILED


def cmd_unlock(args: argparse.Namespace) -> int:
    repo = open_repository(args)
    for line in repo.unlock_stale(everything=args.all):
        print(f"removed {line}")
    return EXIT_OK
