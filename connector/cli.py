"""The `keepstone connector` command."""

from __future__ import annotations


def add_commands(sub) -> None:
    """Add this area's subcommands to the `keepstone` parser (none yet)."""
