"""Fixtures shared by every area: a running sandbox site and free ports. Area fixtures live beside their tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from keepstone.servers import RunningServer, serve_in_thread

ROOT = Path(__file__).resolve().parents[1]
ADMIN_EMAIL = "admin@example.com"
ADMIN_TOKEN = "sandbox-admin-token"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sandbox(**options) -> RunningServer:
    """Start a sandbox site on a free port with the given SandboxConfig options."""
    from sandbox.app import create_app
    from sandbox.config import SandboxConfig

    return serve_in_thread(create_app(SandboxConfig(**options)))


@pytest.fixture(scope="session")
def sandbox_site() -> Iterator[RunningServer]:
    """A small deterministic site shared read-only by a whole test session (do not mutate it)."""
    with start_sandbox(projects=3, issues_per_project=30, seed=7) as site:
        yield site


@pytest.fixture
def fresh_site() -> Iterator[RunningServer]:
    """A small site of a test's own, free to mutate."""
    with start_sandbox(projects=2, issues_per_project=15, seed=11) as site:
        yield site
