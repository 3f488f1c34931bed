"""`keepstone backup` on a pseudo-terminal (progress bars, Ctrl-C) and without one (plain lines), as real
processes against sandbox sites; and the terminal module's wording of sizes, durations and warnings."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import sys
import time
from collections.abc import Iterator

import pytest

from keepstone.terminal import counts_text, duration, grouped, reason, size
from tests.backup.test_cli_errors import PASSWORD, backup, keepstone
from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN, ROOT, start_sandbox

ANSI = re.compile(r"\x1b\[")
ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def plain(text: str) -> str:
    """What a terminal would show, roughly: escape codes out, carriage returns as line ends."""
    return ESCAPES.sub("", text).replace("\r\n", "\n").replace("\r", "\n")


class Pty:
    """`keepstone ARGS` with a pseudo-terminal as its controlling terminal (stdin, stdout and stderr)."""

    def __init__(self, *args: str) -> None:
        env = {
            **os.environ,
            "KEEPSTONE_REPO_PASSWORD": PASSWORD,
            "KEEPSTONE_JIRA_TOKEN": ADMIN_TOKEN,
            "PYTHONPATH": str(ROOT),
            "COLUMNS": "120",
            "TERM": "xterm-256color",
        }
        env.pop("KEEPSTONE_LOG_LEVEL", None)
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: a session of its own whose terminal is the pty
            os.execve(sys.executable, [sys.executable, "-m", "keepstone.cli", *args], env)
        self.output = b""

    def read_until(self, pattern: bytes, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while pattern not in self.output and time.monotonic() < deadline:
            if not self._read(0.1):
                return pattern in self.output
        return pattern in self.output

    def _read(self, wait: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], wait)
        if ready:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                return False
            if not chunk:
                return False
            self.output += chunk
        return True

    def wait(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._read(0.1)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                while self._read(0.05):
                    pass
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        raise AssertionError(f"still running after {timeout} s: {self.text[-2000:]}")

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")


@pytest.fixture(scope="module")
def slow_site() -> Iterator:
    """A site slow enough (30 ms a request) that a backup is still running when it is interrupted."""
    with start_sandbox(projects=2, issues_per_project=120, seed=5, latency_ms=30, corrupt_share=0) as site:
        yield site


def test_progress_bars_on_a_terminal_and_no_log_through_them(sandbox_site, tmp_path):
    term = Pty(
        "backup",
        "--site",
        sandbox_site.url,
        "--email",
        ADMIN_EMAIL,
        "--repo",
        f"file://{tmp_path}/repo",
        "--init",
        "-v",
    )
    assert term.wait(60) == 0, term.text
    out = plain(term.text)
    logged = [line for line in out.splitlines() if re.search(r"\d\d:\d\d:\d\d (info|warning) ", line)]
    assert any("project backed up" in line for line in logged), out[-3000:]  # -v: info records too
    for line in logged:  # each record on a line of its own, above the bars, never inside one
        assert re.match(r"\d\d:\d\d:\d\d (info|warning) ", line) and "━" not in line, line
    assert ANSI.search(term.text)  # drawn for a terminal
    assert re.search(r"\d+/30\b.*issues", out), out[-3000:]  # the bar: done/total issues
    assert re.search(r"^run (ok|warning): 3 projects in \d+\.\d s", out, re.M), out[-2000:]
    assert not re.search(r"^\s*\{", out, re.M)  # no JSON log line
    summary = [line for line in out.splitlines() if line not in logged]
    assert not [line for line in summary if "attachment_bytes" in line] and "Traceback" not in out


def test_ctrl_c_stops_cleanly_with_exit_130(slow_site, tmp_path):
    url = f"file://{tmp_path}/repo"
    term = Pty("backup", "--site", slow_site.url, "--email", ADMIN_EMAIL, "--repo", url, "--init")
    assert term.read_until(b"issues", 30), term.text  # a bar is up: the backup is under way
    os.write(term.fd, b"\x03")  # Ctrl-C, as typed: the terminal sends SIGINT
    started = time.monotonic()
    assert term.wait(30) == 130, term.text[-2000:]
    assert time.monotonic() - started < 20
    shown = plain(term.text)
    assert "stopping:" in shown and "keepstone: interrupted" in shown
    assert re.search(r"^run cancelled: 2 projects", shown, re.M), shown[-1500:]
    assert "Traceback" not in shown and "KeyboardInterrupt" not in shown
    check = keepstone("check", "--repo", url)  # what was written is a sound repository, lock released
    assert check.returncode == 0, check.stdout + check.stderr
    again = keepstone("unlock", "--repo", url)
    assert again.returncode == 0 and "removed" not in again.stdout


def test_without_a_terminal_plain_lines_and_json_only_with_json(sandbox_site, tmp_path):
    url = f"file://{tmp_path}/repo"
    done = backup(sandbox_site.url, url, "--init")
    assert done.returncode == 0, done.stderr
    assert not ANSI.search(done.stdout + done.stderr)
    assert not [line for line in done.stderr.splitlines() if line.lstrip().startswith("{")]
    lines = done.stdout.splitlines()
    assert lines[-1].startswith("run ") and "3 projects" in lines[-1]
    assert len(lines) <= 3 + 3 * 5, lines  # a line a project, grouped warnings, the last line
    assert "attachment_bytes" not in done.stdout and "cut short after 0 bytes" not in done.stdout

    as_json = backup(sandbox_site.url, url, "--json")
    assert as_json.returncode == 0
    document = json.loads(as_json.stdout)  # stdout is the one document, nothing else
    assert {p["project"] for p in document["projects"]} == {"PLAT", "MOB", "OPS"} or len(
        document["projects"]
    ) == 3

    quiet = backup(sandbox_site.url, url, "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert quiet.stdout.splitlines()[-1].startswith("run ok")
    assert len(quiet.stdout.splitlines()) == 1, quiet.stdout  # nothing changed: no problem to show

    verbose = backup(sandbox_site.url, url, "-v")
    assert "info" in verbose.stderr and "project backed up" in verbose.stderr  # info logs, human lines


def test_sizes_durations_and_grouped_warnings():
    assert (size(0), size(1536), size(6267197)) == ("0 B", "1.5 KiB", "6.0 MiB")
    assert (duration(0.42), duration(75), duration(3720)) == ("0.4 s", "1 min 15 s", "1 h 2 min")
    cut = (
        "attachment 10130: download cut short after 0 bytes: ('Connection broken: IncompleteRead(28518 bytes "
        "read, 28519 more expected)', IncompleteRead(28518 bytes read, 28519 more expected))"
    )
    assert reason(cut) == "the connection broke after 27.8 KiB of 55.7 KiB"
    warnings = [f"attachment {i} (file-{i}.png) of ABC-{i} skipped: {cut}" for i in range(27)] + ["odd"]
    lines = grouped(warnings)
    assert lines[0] == "27 attachments skipped:"
    assert lines[1] == "  file-0.png (ABC-0): the connection broke after 27.8 KiB of 55.7 KiB"
    assert lines[4] == "  and 24 more (--json lists them all)" and lines[5:] == ["odd"]
    counts = {"attachment_bytes": 82089752, "attachments": 71, "attachments_skipped": 7, "carried": 120,
              "comments": 451, "deleted": 0, "fetched": 30, "issues": 150, "worklogs": 0}  # fmt: skip
    assert counts_text(counts) == (
        "150 issues (30 read, 120 unchanged), 451 comments, 71 attachments (78.3 MiB), 7 skipped"
    )
