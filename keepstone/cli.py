"""The `keepstone` command: each area adds its own subcommands through `add_commands(subparsers)`."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from keepstone import __version__, logs
from keepstone.options import Parser, add_completion_command, add_examples

REPO = "--repo file:///backups/acme"
SITE = "--site https://acme.atlassian.net --email admin@acme.com"

# Shown under each command's --help (KEEPSTONE_REPO_PASSWORD and KEEPSTONE_JIRA_TOKEN set beforehand).
EXAMPLES: dict[str, list[str]] = {
    "": [
        f"keepstone backup {SITE} {REPO} --init",
        f"keepstone snapshots {REPO}",
        "keepstone run",
        "keepstone COMMAND --help",
    ],
    "run": ["keepstone run", "keepstone run --sandbox-port 9080 --var /tmp/keepstone-demo"],
    "sandbox": [
        "keepstone sandbox --projects 5 --issues 2000 --rate-limit 20/s",
        "keepstone sandbox --site-file site.json --port 9080",
    ],
    "backend": ["keepstone backend --port 8090"],
    "backend create-user": [
        "KEEPSTONE_USER_PASSWORD=... keepstone backend create-user ops@acme.com --org CLOUD-ID"
    ],
    "worker": [
        "KEEPSTONE_EXECUTOR=celery KEEPSTONE_BROKER_URL=redis://127.0.0.1:6379/0 keepstone worker",
        "keepstone worker --concurrency 4",
    ],
    "connector": ["keepstone connector --port 8020 --backend-url http://127.0.0.1:8090"],
    "init": [f"keepstone init {REPO}"],
    "backup": [
        f"keepstone backup {SITE} {REPO} --init",
        f"keepstone backup {SITE} {REPO} --projects ABC,OPS --exclude attachments",
        f"keepstone backup {SITE} {REPO} --json > run.json",
        f"keepstone backup {SITE} {REPO} --quiet   # only problems and the last line",
    ],
    "snapshots": [f"keepstone snapshots {REPO}", f"keepstone snapshots {REPO} --project ABC --json"],
    "ls": [f"keepstone ls 1a2b3c4d {REPO}"],
    "show": [
        f"keepstone show ABC-12 {REPO}",
        f"keepstone show ABC-12 {REPO} --snapshot 1a2b3c4d --json",
    ],
    "check": [f"keepstone check {REPO}", f"keepstone check {REPO} --read-data"],
    "unlock": [f"keepstone unlock {REPO}", f"keepstone unlock {REPO} --all"],
    "forget": [
        f"keepstone forget {REPO} --keep-daily 7 --keep-weekly 4 --time-zone Europe/Berlin --dry-run",
        f"keepstone forget {REPO} --keep-last 10 --prune",
        f"keepstone forget {REPO} 1a2b3c4d",
    ],
    "prune": [f"keepstone prune {REPO} --dry-run", f"keepstone prune {REPO} --max-unused 10%"],
    "keep": [f"keepstone keep 1a2b3c4d {REPO} --note audit", f"keepstone keep 1a2b3c4d {REPO} --remove"],
    "restore": [
        f"keepstone restore {REPO} --snapshot 1a2b3c4d --issues ABC-12,ABC-14 --original {SITE}",
        f"keepstone restore {REPO} --snapshot 1a2b3c4d --project --new-project ABCR {SITE} --report",
        f"keepstone restore {REPO} --snapshot 1a2b3c4d --project --original {SITE} --dry-run",
    ],
    "diff": [
        f"keepstone diff ABC-12 1a2b3c4d 5e6f7a8b {REPO}",
        f"keepstone diff ABC-12 1a2b 5e6f {REPO} --json",
    ],
    "history": [f"keepstone history ABC-12 {REPO}"],
    "completion": [
        "keepstone completion bash > ~/.local/share/bash-completion/completions/keepstone",
        'eval "$(keepstone completion zsh)"   # in ~/.zshrc',
    ],
}


def version() -> str:
    from backend.repository.model import FORMAT_VERSION

    return f"keepstone {__version__} (repository format {FORMAT_VERSION})"


def build_parser() -> argparse.ArgumentParser:
    from backend import cli as backend_cli
    from backend.backup import cli as backup_cli
    from backend.restore import cli as restore_cli
    from backend.workers import cli as worker_cli
    from connector import cli as connector_cli
    from keepstone import demo
    from sandbox import cli as sandbox_cli

    parser = Parser(prog="keepstone", description="Backup and restore for Jira Cloud.")
    parser.add_argument("--version", action="version", version=version())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for area in (demo, sandbox_cli, backend_cli, worker_cli, connector_cli, backup_cli, restore_cli):
        area.add_commands(sub)
    add_completion_command(sub, build_parser)
    add_examples(parser, EXAMPLES)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one `keepstone` subcommand and return its exit status."""
    logs.configure()
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # one clear line rather than the whole usage text
        name = f"keepstone {getattr(args, 'command', '') or ''}".strip()
        print(f"{name}: unknown option or argument {extra[0]!r} (see {name} --help)", file=sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("keepstone: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `keepstone ls ... | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as e:  # a bug, not a user's mistake: still one line; the traceback goes to the log file
        if (os.environ.get("KEEPSTONE_LOG_LEVEL") or "").lower() == "debug":
            raise
        _to_log_files(e)
        where = " (traceback in $KEEPSTONE_LOG_FILE)" if os.environ.get("KEEPSTONE_LOG_FILE") else ""
        print(
            f"keepstone {args.command}: unexpected {type(e).__name__}: {e}{where}; "
            "KEEPSTONE_LOG_LEVEL=debug shows the traceback",
            file=sys.stderr,
        )
        return 1


def _to_log_files(error: Exception) -> None:
    record = logging.LogRecord("keepstone", logging.ERROR, __file__, 0, "unexpected error", None,
                               (type(error), error, error.__traceback__))  # fmt: skip
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


if __name__ == "__main__":
    sys.exit(main())
