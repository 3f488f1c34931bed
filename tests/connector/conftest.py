"""Connector fixtures: the stack of tests/connector/connector_stack.py, fresh per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.connector.connector_stack import Stack, start_stack


@pytest.fixture
def stack(tmp_path) -> Iterator[Stack]:
    s = start_stack(tmp_path)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def installed(stack) -> Stack:
    stack.install()
    return stack
