"""`keepstone key list|add|remove|passwd` and `--password-file` as real processes on a repository folder.

The repository is a copy of tests/repository/data/legacy-v1, written by the code before key files had
fields: it opens, the first change gives its key the new fields, and no pack, index, snapshot or config
byte changes along the way. Refusals are one line on stderr and change no file at all.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from backend.repository import Repository, WrongPassword
from backend.repository.keys import list_keys
from backend.storage.local import LocalStorage
from tests.backup.test_cli_errors import fingerprint
from tests.conftest import ROOT

LEGACY = Path(__file__).parents[1] / "repository" / "data" / "legacy-v1"
LEGACY_PASSWORD = "legacy password 1"


def keepstone(
    *args: str, password: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """The real command, no terminal (stdin is /dev/null), KEEPSTONE_NEW_PASSWORD only when given."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("KEEPSTONE_")}
    full = {**base, "KEEPSTONE_REPO_PASSWORD": password, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "keepstone.cli", *args], env=full, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)  # fmt: skip


def data_files(folder: Path) -> dict[str, str]:
    return {
        name: digest
        for name, digest in fingerprint(folder).items()
        if not name.startswith(("keys/", "locks/"))
    }


@pytest.fixture
def legacy(tmp_path) -> tuple[str, Path, Path]:
    """A copy of the version 1 repository, its URL, and a file holding its password."""
    folder = tmp_path / "repo"
    shutil.copytree(LEGACY, folder)
    secret = tmp_path / "password.txt"
    secret.write_text(LEGACY_PASSWORD + "\n")
    return f"file://{folder}", folder, secret


def keys_of(url: str, password_file: Path) -> list[dict]:
    done = keepstone("key", "list", "--repo", url, "--password-file", str(password_file), "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_key_add_passwd_remove_through_real_processes_rewrite_no_data(legacy, tmp_path):
    url, folder, secret = legacy
    data = data_files(folder)
    (legacy_key,) = keys_of(url, secret)
    assert legacy_key["kind"] == "legacy" and legacy_key["current"]

    ops = tmp_path / "ops.txt"
    ops.write_text("ops password\n")
    done = keepstone("key", "add", "--repo", url, "--password-file", str(secret), "--new-password-file",
                     str(ops), "--label", "ops", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    added = json.loads(done.stdout)
    assert added["added"]["label"] == "ops" and added["upgraded"]["kind"] == "password"  # the legacy key
    opened = Repository.open(LocalStorage(folder), "ops password")
    listed = {k.id: k.to_dict() for k in list_keys(opened)}
    assert set(listed) == {added["added"]["id"], added["upgraded"]["id"]}
    assert listed[added["added"]["id"]]["current"] and not listed[added["upgraded"]["id"]]["current"]

    # The ops key opens the repository for any command; passwd replaces it (from the environment).
    shown = keepstone("snapshots", "--repo", url, "--password-file", str(ops), "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)[0]["project"] == "ABC", shown.stderr
    done = keepstone("key", "passwd", "--repo", url, "--json", password="ops password",
                     env={"KEEPSTONE_NEW_PASSWORD": "ops password 2"})  # fmt: skip
    assert done.returncode == 0, done.stderr
    changed = json.loads(done.stdout)
    assert changed["removed"]["id"] == added["added"]["id"] and changed["added"]["label"] == "ops"
    refused = keepstone("snapshots", "--repo", url, "--password-file", str(ops))
    assert refused.returncode == 1 and "the password does not open this repository" in refused.stderr

    # With the new ops password, the (upgraded) first key can go; the old password opens nothing then.
    done = keepstone("key", "remove", added["upgraded"]["id"][:8], "--repo", url, password="ops password 2")
    assert done.returncode == 0, done.stderr
    assert f"removed key {added['upgraded']['id'][:8]}" in done.stdout
    with pytest.raises(WrongPassword):
        Repository.open(LocalStorage(folder), LEGACY_PASSWORD)
    assert data_files(folder) == data  # every pack, index, snapshot and the config: same names, same bytes
    checked = keepstone("check", "--repo", url, "--read-data", "--json", password="ops password 2")
    assert checked.returncode == 0 and json.loads(checked.stdout)["ok"], checked.stdout


REFUSALS = {
    "a wrong password": (["key", "list"], "wrong", "keepstone: the password does not open this repository"),
    "removing the key in use": (["key", "remove", "CURRENT"], None, "is the one this command opened"),
    "a key id too short": (["key", "remove", "abc"], None, "no key matches 'abc'"),
    "an unknown key id": (["key", "remove", "abcdef12"], None, "no key matches 'abcdef12'"),
    "an empty new password file": (
        ["key", "add", "--new-password-file", "EMPTY"],
        None,
        "the first line is empty",
    ),
    "a missing password file": (
        ["key", "list", "--password-file", "/nonexistent/pw"],
        None,
        "cannot be read",
    ),
    "an empty new password": (["key", "passwd"], None, "$KEEPSTONE_NEW_PASSWORD is empty"),
    "no new password at all": (["key", "add"], None, "give the new password with --new-password-file"),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_refusals_are_one_line_and_change_no_file(legacy, tmp_path, case):
    url, folder, secret = legacy
    args, password, message = REFUSALS[case]
    (current,) = [p.name for p in (folder / "keys").iterdir()]  # the fixture's one key
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not the password\n")
    args = [{"CURRENT": current[:8], "EMPTY": str(empty)}.get(a, a) for a in args]
    if "--password-file" not in args:
        args += ["--password-file", str(wrong if password == "wrong" else secret)]
    env = {"KEEPSTONE_NEW_PASSWORD": ""} if case == "an empty new password" else {}
    before = fingerprint(folder)
    done = keepstone(*args, "--repo", url, password="", env=env)
    assert done.returncode in (1, 2), done.stdout
    assert message in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert fingerprint(folder) == before


def on_a_terminal(args: list[str], answers: list[tuple[str, str]]) -> tuple[int, str]:
    """Run keepstone on a pseudo-terminal (its controlling tty, as a person's shell gives it), typing
    each answer once its prompt shows; the exit status and everything the terminal showed."""
    master, slave = os.openpty()

    def controlling_tty() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    base = {k: v for k, v in os.environ.items() if not k.startswith("KEEPSTONE_")}
    proc = subprocess.Popen([sys.executable, "-m", "keepstone.cli", *args], stdin=slave, stdout=slave,
                            stderr=slave, env={**base, "PYTHONPATH": str(ROOT)}, preexec_fn=controlling_tty,
                            close_fds=True)  # fmt: skip
    os.close(slave)
    shown, pending = b"", list(answers)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            if pending and shown.decode(errors="replace").rstrip().endswith(pending[0][0]):
                os.write(master, pending.pop(0)[1].encode() + b"\n")
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=30), shown.decode(errors="replace")


def test_key_add_asks_twice_on_a_terminal_and_refuses_two_different_answers(legacy, tmp_path):
    url, folder, secret = legacy
    before = fingerprint(folder)
    args = ["key", "add", "--repo", url, "--password-file", str(secret), "--label", "typed"]
    status, shown = on_a_terminal(
        args, [("New password:", "typed one"), ("New password again:", "typed two")]
    )
    assert status == 2 and "the two passwords differ; nothing was changed" in shown, shown
    assert "typed one" not in shown  # not echoed
    assert fingerprint(folder) == before
    status, shown = on_a_terminal(
        args, [("New password:", "typed one"), ("New password again:", "typed one")]
    )
    assert status == 0 and "added key" in shown, shown
    opened = keepstone("key", "list", "--repo", url, "--json", password="typed one")
    assert [k["label"] for k in json.loads(opened.stdout) if k["current"]] == ["typed"], opened.stderr
