"""`keepstone run`: sandbox, backend and connector together on localhost (the demo)."""

from __future__ import annotations


def add_commands(sub) -> None:
    """Add this area's subcommands to the `keepstone` parser (none yet)."""
