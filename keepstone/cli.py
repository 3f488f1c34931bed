"""The `keepstone` command: each area adds its own subcommands through `add_commands(subparsers)`."""

from __future__ import annotations

import argparse
import sys

from keepstone import __version__, logs


def build_parser() -> argparse.ArgumentParser:
    from backend import cli as backend_cli
    from backend.backup import cli as backup_cli
    from backend.restore import cli as restore_cli
    from connector import cli as connector_cli
    from keepstone import demo
    from sandbox import cli as sandbox_cli

    parser = argparse.ArgumentParser(prog="keepstone", description="Backup and restore for Jira Cloud.")
    parser.add_argument("--version", action="version", version=f"keepstone {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for area in (demo, sandbox_cli, backend_cli, connector_cli, backup_cli, restore_cli):
        area.add_commands(sub)
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
        return 130


if __name__ == "__main__":
    sys.exit(main())
