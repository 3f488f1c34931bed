"""One conformance suite that every storage backend passes (restic's backend tests, in spirit)."""

from __future__ import annotations

import threading
import uuid

import pytest

from backend.storage import (
    AlreadyExists,
    MemoryStorage,
    NotFound,
    PermanentError,
    RetryableError,
    open_storage,
)
from backend.storage.base import Storage
from backend.storage.retry import RetryingStorage


@pytest.fixture(
    params=[
        "memory",
        "local",
        pytest.param("azure", marks=pytest.mark.azurite),
        pytest.param("s3", marks=pytest.mark.s3),
    ]
)
def storage(request, tmp_path) -> Storage:
    kind = request.param
    if kind == "memory":
        return MemoryStorage()
    if kind == "local":
        return open_storage(f"file://{tmp_path}/repo")
    if kind == "azure":
        conn = request.getfixturevalue("azurite")
        from urllib.parse import quote

        return open_storage(f"azure://c{uuid.uuid4().hex[:12]}/some/prefix?connection_string={quote(conn)}")
    request.getfixturevalue("aws_keys")
    endpoint = request.getfixturevalue("s3_server")
    return open_storage(f"s3://b{uuid.uuid4().hex[:12]}/pre?endpoint_url={endpoint}")


def test_saved_objects_load_back_whole_and_in_ranges(storage):
    data = bytes(range(256)) * 40
    storage.save("data", "ab" + "0" * 62, data)
    assert storage.load("data", "ab" + "0" * 62) == data
    assert storage.load("data", "ab" + "0" * 62, offset=100, length=50) == data[100:150]
    assert storage.load("data", "ab" + "0" * 62, offset=10000) == data[10000:]
    assert storage.stat("data", "ab" + "0" * 62) == len(data)


def test_empty_objects_are_objects(storage):
    storage.save("locks", "empty", b"")
    assert storage.load("locks", "empty") == b""
    assert storage.stat("locks", "empty") == 0


def test_missing_objects_are_not_found(storage):
    with pytest.raises(NotFound):
        storage.load("index", "nope")
    with pytest.raises(NotFound):
        storage.stat("index", "nope")
    with pytest.raises(NotFound):
        storage.remove("index", "nope")


def test_list_is_per_kind_and_remove_removes(storage):
    storage.save("index", "one", b"1")
    storage.save("index", "two", b"2")
    storage.save("snapshots", "three", b"3")
    assert sorted(storage.list("index")) == ["one", "two"]
    assert list(storage.list("snapshots")) == ["three"]
    storage.remove("index", "one")
    assert list(storage.list("index")) == ["two"]


def test_exclusive_save_refuses_an_existing_object_and_keeps_it(storage):
    storage.save("locks", "mine", b"first", exclusive=True)
    with pytest.raises(AlreadyExists):
        storage.save("locks", "mine", b"second", exclusive=True)
    assert storage.load("locks", "mine") == b"first"


def test_exclusive_save_lets_exactly_one_of_many_racers_win(storage):
    wins, losses = [], []

    def race(i: int) -> None:
        try:
            storage.save("locks", "race", str(i).encode(), exclusive=True)
            wins.append(i)
        except AlreadyExists:
            losses.append(i)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(losses) == 7
    assert storage.load("locks", "race") == str(wins[0]).encode()


@pytest.mark.parametrize("name", ["../escape", "a/b", "", ".hidden"])
def test_names_that_could_escape_are_refused(storage, name):
    with pytest.raises(PermanentError):
        storage.save("data", name, b"x")


def test_unknown_kinds_are_refused(storage):
    with pytest.raises(PermanentError):
        storage.save("secrets", "x", b"x")


def test_retry_wrapper_retries_transient_failures_then_gives_up():
    calls = []

    class Flaky(MemoryStorage):
        def load(self, kind, name, offset=0, length=None):
            calls.append(1)
            if len(calls) < 3:
                raise RetryableError("try again")
            return super().load(kind, name, offset, length)

    inner = Flaky()
    inner.save("config", "c", b"ok")
    wrapped = RetryingStorage(inner, attempts=3, sleep=lambda s: None)
    assert wrapped.load("config", "c") == b"ok"
    calls.clear()
    with pytest.raises(RetryableError):
        RetryingStorage(inner, attempts=2, sleep=lambda s: None).load("config", "c")


def test_bad_storage_urls_are_clear_errors():
    with pytest.raises(PermanentError, match="unknown storage URL"):
        open_storage("ftp://x")
    with pytest.raises(PermanentError, match="absolute path"):
        open_storage("file://relative/path")
    with pytest.raises(PermanentError, match="connection string"):
        open_storage("azure://container")
