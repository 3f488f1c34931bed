"""`keepstone copy --from REPO --to REPO`: the snapshots the destination lacks, only the blobs it lacks.

The destination's password comes as every command's repository password does (--to-password-env, default
KEEPSTONE_REPO_PASSWORD, as restic's RESTIC_PASSWORD); the source's from --from-password-env (default
KEEPSTONE_FROM_PASSWORD, as restic's RESTIC_FROM_PASSWORD). Both repositories are opened before anything
is written: a wrong password, a missing repository or an unreachable storage is one line, nothing changed.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys

from backend.backup.cli import EXIT_OK, EXIT_USAGE, CliError, leave_nothing_behind
from backend.repository import Repository, RepositoryError, RepositoryLocked, WrongPassword
from backend.repository.copy import CopyError, copy
from backend.storage import StorageError, open_storage

EXAMPLES = [
    "KEEPSTONE_FROM_PASSWORD=... KEEPSTONE_REPO_PASSWORD=... "
    "keepstone copy --from file:///backups/acme --to s3://bucket/acme --init",
    "keepstone copy --from file:///backups/acme --to azure://acme/keepstone --project ABC --json",
]


def add_commands(sub) -> None:
    p = sub.add_parser(
        "copy",
        help="copy the snapshots another repository lacks into it (replication, 3-2-1)",
        description="Copy every snapshot of --from that --to has no copy of (only one project's with\n"
        "--project), writing only the blobs --to lacks, sealed with --to's own keys; each snapshot is\n"
        "read back before its file is written, last. A copy stopped part way is resumed by the next one.\n"
        "See docs/storage-format.md, 'Copy'.",
        epilog="examples:\n" + "\n".join(f"  {line}" for line in EXAMPLES),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--from", dest="source", metavar="REPO", required=True, help="the source repository")
    p.add_argument("--to", dest="destination", metavar="REPO", required=True, help="the destination")
    p.add_argument(
        "--from-password-env",
        default="KEEPSTONE_FROM_PASSWORD",
        metavar="VAR",
        help="environment variable holding the source's password (default KEEPSTONE_FROM_PASSWORD)",
    )
    p.add_argument(
        "--to-password-env",
        default="KEEPSTONE_REPO_PASSWORD",
        metavar="VAR",
        help="environment variable holding the destination's password (default KEEPSTONE_REPO_PASSWORD)",
    )
    p.add_argument("--project", help="only this project's snapshots")
    p.add_argument("--init", action="store_true", help="create the destination if it does not exist")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        return cmd_copy(args)
    except CliError as e:
        print(f"keepstone: {e}", file=sys.stderr)
        return e.status


def _url(value: str) -> str:
    return value if "://" in value else "file://" + os.path.abspath(value)


def _password(var: str, what: str) -> str:
    value = os.environ.get(var)
    if value:
        return value
    if sys.stdin.isatty():
        return getpass.getpass(f"Password of the {what}: ")
    raise CliError(f"set the {what}'s password in ${var}", EXIT_USAGE)


def _open(url: str, password: str, what: str, init: bool = False) -> Repository:
    with leave_nothing_behind(url):  # a refused copy leaves no folder behind
        try:
            storage = open_storage(url)
        except StorageError as e:
            raise CliError(f"cannot open the {what} {url}: {e}; nothing was copied") from e
        try:
            return Repository.open(storage, password)
        except WrongPassword as e:
            raise CliError(f"the {what} {storage.location}: {e}; nothing was copied") from e
        except RepositoryError as e:
            if "no repository" not in str(e) or not init:
                hint = (
                    "; add --init to create it" if "no repository" in str(e) and what == "destination" else ""
                )
                raise CliError(f"the {what} {storage.location}: {e}{hint}; nothing was copied") from e
        except StorageError as e:
            raise CliError(f"the {what} {storage.location} cannot be read: {e}; nothing was copied") from e
        try:
            return Repository.init(storage, password)
        except (RepositoryError, StorageError) as e:
            raise CliError(f"cannot create the {what} {storage.location}: {e}; nothing was copied") from e


def cmd_copy(args: argparse.Namespace) -> int:
    source, destination = _url(args.source), _url(args.destination)
    if source.rstrip("/") == destination.rstrip("/"):
        raise CliError("--from and --to name the same repository", EXIT_USAGE)
    from_password = _password(args.from_password_env, "source")
    to_password = _password(args.to_password_env, "destination")
    src = _open(source, from_password, "source")
    project = args.project.strip().upper() if args.project else None
    if project is not None and not src.snapshots(project):
        raise CliError(f"the source has no snapshots of project {project}; nothing was copied")
    dst = _open(destination, to_password, "destination", init=args.init)
    try:
        result = copy(src, dst, include=(lambda s: s.project == project) if project else None)
    except RepositoryLocked as e:
        raise CliError(f"{e}; nothing was copied") from e
    except (CopyError, RepositoryError, StorageError) as e:
        raise CliError(f"copy stopped: {e} (what was copied is valid; run the copy again to finish)") from e
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        for item in result.copied:
            print(f"{item['source'][:8]} -> {item['destination'][:8]}  {item['time']}  {item['project']}")
        print(result.summary())
    return EXIT_OK
