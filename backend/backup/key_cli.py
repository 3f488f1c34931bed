"""`keepstone key list|add|remove|passwd`: a repository's key files, as restic's `key` command.

The repository is opened as every command opens it (--password-file, or $KEEPSTONE_REPO_PASSWORD, or a
prompt); the new password of add/passwd comes from --new-password-file, else $KEEPSTONE_NEW_PASSWORD
(--new-password-env), else a prompt asked twice. Only key files are written or removed (data, index and
snapshots stay byte for byte); a refused change (the last key, the key in use, an empty password) says
why in one line and changes nothing. See backend/repository/keys.py and docs/storage-format.md.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys

from backend.backup.cli import (
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    _guarded,
    _repo_args,
    open_repository,
    read_password_file,
)
from backend.repository import Repository, RepositoryError, RepositoryLocked
from backend.repository.keys import (
    KeyInfo,
    KeyRefused,
    add_key,
    change_password,
    list_keys,
    remove_key,
    upgrade_legacy,
)
from backend.storage import StorageError

EXAMPLES = {
    "list": [
        "keepstone key list --repo file:///backups/acme",
        "keepstone key list --repo s3://bucket/acme --json",
    ],
    "add": [
        "keepstone key add --repo file:///backups/acme --new-password-file ~/.keepstone-ops --label ops",
        "KEEPSTONE_NEW_PASSWORD=... keepstone key add --repo file:///backups/acme --label laptop --json",
    ],
    "remove": ["keepstone key remove 1a2b3c4d --repo file:///backups/acme"],
    "passwd": ["keepstone key passwd --repo file:///backups/acme --new-password-file new.txt"],
}


def _epilog(name: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in EXAMPLES[name])


def _new_password_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--new-password-file", metavar="FILE", help="read the new password from FILE's first line")
    p.add_argument(
        "--new-password-env",
        default="KEEPSTONE_NEW_PASSWORD",
        metavar="VAR",
        help="environment variable holding the new password (default KEEPSTONE_NEW_PASSWORD)",
    )


def add_commands(sub) -> None:
    key = sub.add_parser(
        "key",
        help="list, add, remove or change a repository's keys (passwords)",
        description="Every key file wraps the repository's master keys under one password (or the\n"
        "organisation's recovery passphrase). Adding, removing or changing a key rewrites no data.\n"
        "See docs/storage-format.md, 'Key files'.",
        epilog="examples:\n" + "\n".join(f"  {line}" for lines in EXAMPLES.values() for line in lines[:1]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = key.add_subparsers(dest="key_command", required=True, metavar="ACTION")
    fmt = argparse.RawDescriptionHelpFormatter

    p = actions.add_parser("list", help="list the key files (* the one this password opened)",
                           epilog=_epilog("list"), formatter_class=fmt)  # fmt: skip
    _repo_args(p)
    p.add_argument("--json", action="store_true", help="print the keys as JSON")
    p.set_defaults(func=_guarded(cmd_list))

    p = actions.add_parser(
        "add", help="add a key for another password", epilog=_epilog("add"), formatter_class=fmt
    )
    _repo_args(p)
    _new_password_args(p)
    p.add_argument("--label", default="", help="what the key is for (shown by `key list`)")
    p.add_argument("--host", help="host name to record (default this machine's)")
    p.add_argument("--user", help="user name to record (default the current user)")
    p.add_argument("--json", action="store_true", help="print the new key as JSON")
    p.set_defaults(func=_guarded(cmd_add))

    p = actions.add_parser("remove", help="remove a key (never the last one, never the one in use)",
                           epilog=_epilog("remove"), formatter_class=fmt)  # fmt: skip
    _repo_args(p)
    p.add_argument("id", metavar="ID", help="the key's id or a prefix of at least 4 characters")
    p.add_argument("--json", action="store_true", help="print the removed key as JSON")
    p.set_defaults(func=_guarded(cmd_remove))

    p = actions.add_parser("passwd", help="replace the key in use by one for a new password",
                           epilog=_epilog("passwd"), formatter_class=fmt)  # fmt: skip
    _repo_args(p)
    _new_password_args(p)
    p.add_argument("--json", action="store_true", help="print the old and new key as JSON")
    p.set_defaults(func=_guarded(cmd_passwd))


def new_password(args: argparse.Namespace) -> str:
    """The new password from --new-password-file, the environment, or a prompt asked twice."""
    if args.new_password_file:
        return read_password_file(args.new_password_file, "--new-password-file")
    value = os.environ.get(args.new_password_env)
    if value is not None:
        if not value:
            raise CliError(f"${args.new_password_env} is empty: a key needs a non-empty password", EXIT_USAGE)
        return value
    if sys.stdin.isatty():
        first = getpass.getpass("New password: ")
        if not first:
            raise CliError("a key needs a non-empty password; nothing was changed", EXIT_USAGE)
        if getpass.getpass("New password again: ") != first:
            raise CliError("the two passwords differ; nothing was changed", EXIT_USAGE)
        return first
    raise CliError(
        f"give the new password with --new-password-file or ${args.new_password_env}; nothing was changed",
        EXIT_USAGE,
    )


def _line(key: KeyInfo) -> str:
    who = "@".join(x for x in (key.username, key.host) if x) or "-"
    label = key.label or (f"recovery {key.fingerprint[:8]}" if key.fingerprint else "-")
    return (
        f"{'*' if key.current else ' '}{key.id[:8]}  {key.kind:8}  {label:20}  {who:24}  {key.created or '-'}"
    )


def _changing(repo: Repository, exclusive: bool):
    try:
        return repo.lock(exclusive=exclusive)
    except RepositoryLocked as e:
        raise CliError(f"{e}; nothing was changed") from e


def _refused(e: Exception) -> CliError:
    if isinstance(e, KeyRefused):
        return CliError(f"{e}; nothing was changed")
    return CliError(f"the keys could not be changed: {e}")


def cmd_list(args: argparse.Namespace) -> int:
    repo = open_repository(args)
    keys = list_keys(repo)
    if args.json:
        print(json.dumps([k.to_dict() for k in keys], indent=2))
        return EXIT_OK
    print(f" {'ID':8}  {'KIND':8}  {'LABEL':20}  {'USER@HOST':24}  CREATED")
    for key in keys:
        print(_line(key))
    return EXIT_OK


def cmd_add(args: argparse.Namespace) -> int:
    password = new_password(args)  # before opening: a refused password has touched nothing
    repo = open_repository(args)
    try:
        with _changing(repo, exclusive=False):
            upgraded = upgrade_legacy(repo)
            added = add_key(repo, password, args.label, args.host, args.user)
    except (RepositoryError, StorageError) as e:
        raise _refused(e) from e
    if args.json:
        print(
            json.dumps(
                {"added": added.to_dict(), "upgraded": upgraded.to_dict() if upgraded else None}, indent=2
            )
        )
        return EXIT_OK
    if upgraded:
        print(f"the key in use had no fields (version 1): now key {upgraded.id[:8]}, same wrap")
    print(f"added key {added.id[:8]}" + (f" ({added.label})" if added.label else ""))
    return EXIT_OK


def cmd_remove(args: argparse.Namespace) -> int:
    repo = open_repository(args)
    try:
        with _changing(repo, exclusive=True):
            removed = remove_key(repo, args.id)
    except (RepositoryError, StorageError) as e:
        raise _refused(e) from e
    if args.json:
        print(json.dumps({"removed": removed.to_dict()}, indent=2))
    else:
        print(f"removed key {removed.id[:8]}")
    return EXIT_OK


def cmd_passwd(args: argparse.Namespace) -> int:
    password = new_password(args)
    repo = open_repository(args)
    try:
        with _changing(repo, exclusive=True):
            old, new = change_password(repo, password)
    except (RepositoryError, StorageError) as e:
        raise _refused(e) from e
    if args.json:
        print(json.dumps({"removed": old.to_dict(), "added": new.to_dict()}, indent=2))
    else:
        print(f"replaced key {old.id[:8]} by key {new.id[:8]} (the old password no longer opens it)")
    return EXIT_OK
