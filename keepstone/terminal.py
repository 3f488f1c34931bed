"""What the engine commands print for people: progress bars (rich) on stderr while log records are printed
above them, never through them; summaries with human sizes and durations and grouped warnings on stdout.

Modes: normal (warnings and errors logged), `-v` (info records too), `--quiet` (errors and the last line
only), `--json` (one JSON document on stdout and nothing else there). Without a terminal there are no
bars and no escape codes: plain lines only.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from keepstone.logs import HumanFormatter


def output_args(p: argparse.ArgumentParser, json_help: str = "print the result as one JSON document") -> None:
    """--json, --quiet and -v for a command that reports progress or a summary."""
    g = p.add_argument_group("output")
    g.add_argument("--json", action="store_true", help=json_help + " (nothing else on stdout)")
    g.add_argument("-q", "--quiet", action="store_true", help="print only problems and the last line")
    g.add_argument("-v", "--verbose", action="store_true", help="also show progress details and info logs")


def size(n: float) -> str:
    """1536 -> '1.5 KiB' (the units `keepstone prune` uses)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def duration(seconds: float) -> str:
    """0.42 -> '0.4 s', 75 -> '1 min 15 s', 3720 -> '1 h 2 min'."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


_CUT = re.compile(
    r"(?:attachment \S+: )?download cut short after \d+ bytes: .*?IncompleteRead\((\d+) bytes read, (\d+) more"
)
_SHORT = re.compile(r"got (\d+) bytes where Jira announced (\d+)")
_BROKE = re.compile(r"(?:attachment \S+: )?the connection broke after (\d+)(?: of (\d+))? bytes")


def reason(text: str) -> str:
    """A download problem as what really happened (the client's own text keeps the low-level detail)."""
    m = _CUT.search(text)
    if m:
        got, more = int(m.group(1)), int(m.group(2))
        return f"the connection broke after {size(got)} of {size(got + more)}"
    m = _BROKE.search(text)
    if m:
        of = f" of {size(int(m.group(2)))}" if m.group(2) else ""
        return f"the connection broke after {size(int(m.group(1)))}{of}"
    m = _SHORT.search(text)
    if m:
        return f"the download ended at {size(int(m.group(1)))} of the {size(int(m.group(2)))} Jira announced"
    return text


_SKIPPED = re.compile(r"attachment (\S+) \((.*)\) of (\S+) skipped: (.*)")


def grouped(warnings: list[str], first: int = 3) -> list[str]:
    """'27 attachments skipped:', the first few named ('  a.png (ABC-1): why'), '  and 24 more', then the
    other warnings, the first few and a count of the rest."""
    skipped, other = [], []
    for line in warnings:
        m = _SKIPPED.fullmatch(line)
        if m:
            skipped.append(f"{m.group(2)} ({m.group(3)}): {reason(m.group(4))}")
        else:
            other.append(line)
    out = []
    if skipped:
        out.append(f"{plural(len(skipped), 'attachment')} skipped:")
        out += [f"  {line}" for line in skipped[:first]]
        if len(skipped) > first:
            out.append(f"  and {len(skipped) - first} more (--json lists them all)")
    out += other[:first]
    if len(other) > first:
        out.append(f"and {plural(len(other) - first, 'other warning')} (--json lists them all)")
    return out


def counts_text(counts: dict[str, int], new_bytes: int = 0) -> str:
    """'150 issues (12 changed), 451 comments, 71 attachments (6.0 MiB), 7 skipped' from raw counters."""
    c = dict(counts)
    parts = []
    issues, fetched = c.pop("issues", 0), c.pop("fetched", 0)
    carried, deleted = c.pop("carried", 0), c.pop("deleted", 0)
    detail = []
    if carried:
        detail.append(f"{fetched} read, {carried} unchanged")
    if deleted:
        detail.append(f"{deleted} deleted")
    parts.append(plural(issues, "issue") + (f" ({', '.join(detail)})" if detail else ""))
    for name in ("comments", "worklogs"):
        if c.get(name):
            parts.append(f"{c.pop(name)} {name}")
        c.pop(name, None)
    attachments, data = c.pop("attachments", 0), c.pop("attachment_bytes", 0)
    skipped = c.pop("attachments_skipped", 0)
    if attachments or skipped:
        parts.append(plural(attachments, "attachment") + (f" ({size(data)})" if data else ""))
    if skipped:
        parts.append(f"{skipped} skipped")
    for name, value in sorted(c.items()):
        if value and not name.endswith("_bytes"):
            parts.append(f"{value} {name.replace('_', ' ')}")
    if new_bytes:
        parts.append(f"{size(new_bytes)} new")
    return ", ".join(parts)


class Terminal:
    """Where one command's output goes, by mode; `console` is stderr (progress), `out` stdout."""

    def __init__(self, args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None):
        self.json = bool(getattr(args, "json", False))
        self.quiet = bool(getattr(args, "quiet", False))
        self.verbose = bool(getattr(args, "verbose", False))
        self.console = Console(file=stderr or sys.stderr, highlight=False, soft_wrap=True)
        self.out = Console(file=stdout or sys.stdout, highlight=False, soft_wrap=True)
        self._level()

    @property
    def live(self) -> bool:
        """Whether progress bars are drawn: a terminal, and neither --quiet nor --json."""
        return self.console.is_terminal and not (self.quiet or self.json)

    def _level(self) -> None:
        if os.environ.get("KEEPSTONE_LOG_LEVEL"):
            return  # asked for explicitly
        level = logging.ERROR if self.quiet else logging.INFO if self.verbose else logging.WARNING
        for handler in _terminal_handlers():
            handler.setLevel(level)

    def line(self, text: str = "", style: str | None = None) -> None:
        """A summary line on stdout (not with --json: stdout then holds the document alone)."""
        if not self.json:
            self.out.print(Text(text, style=style or ""))

    def note(self, text: str) -> None:
        """A detail that --quiet leaves out."""
        if not (self.quiet or self.json):
            self.line(text)

    def problem(self, text: str) -> None:
        """A problem on stdout even with --quiet (not with --json, whose document holds it)."""
        self.line(text, "yellow")

    @contextmanager
    def logs_above(self) -> Iterator[None]:
        """While a bar is live, log records print above it through the console (never inside a bar)."""
        handlers = _terminal_handlers()
        swapped = []
        for handler in handlers:
            through = _ConsoleHandler(self.console)
            through.setLevel(handler.level)
            through.setFormatter(handler.formatter or HumanFormatter())
            swapped.append((handler, through))
        root = logging.getLogger()
        for old, new in swapped:
            root.removeHandler(old)
            root.addHandler(new)
        try:
            yield
        finally:
            for old, new in swapped:
                root.removeHandler(new)
                root.addHandler(old)

    @contextmanager
    def spinner(self, text: str) -> Iterator[None]:
        """A spinner with the elapsed time on a terminal; nothing otherwise."""
        if not self.live:
            yield
            return
        with self.logs_above(), self.console.status(text):
            yield

    @contextmanager
    def backup_progress(self) -> Iterator[Callable[[dict[str, Any]], None]]:
        """A callback for run_backup's progress events: one bar per project, removed when it is done."""
        if not self.live:
            yield lambda event: None
            return
        progress = Progress(
            TextColumn("[bold]{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("issues"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[state]}"),
            console=self.console,
            transient=True,
        )
        tasks: dict[str, Any] = {}
        lock = threading.Lock()
        started = time.monotonic()

        def show(event: dict[str, Any]) -> None:
            project, phase = event.get("project"), event.get("phase")
            with lock:
                if project and project not in tasks and phase in ("project", "listing", "fetching"):
                    tasks[project] = progress.add_task(project, total=None, state="listing")
                task = tasks.get(project) if project else None
                if task is None:
                    return
                if phase == "fetching":
                    first = progress.tasks[progress.task_ids.index(task)].total is None
                    progress.update(
                        task,
                        total=event.get("total") or 0,
                        completed=event.get("done", 0),
                        state="reading",
                        refresh=first,  # drawn at once with its total, even when the project is quick
                    )
                elif phase == "project-done":
                    progress.remove_task(task)
                    if self.verbose:
                        self.console.print(
                            Text(
                                f"{project}: {event.get('status')} in {duration(time.monotonic() - started)}"
                            )
                        )

        with self.logs_above(), progress:
            yield show


class _ConsoleHandler(logging.Handler):
    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.console.print(Text(self.format(record)))
        except Exception:
            self.handleError(record)


def _terminal_handlers() -> list[logging.Handler]:
    """The root logger's handlers that write to the terminal (stderr), not to a log file."""
    return [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.StreamHandler)
        and not isinstance(h, logging.FileHandler)
        and getattr(h, "stream", None) in (sys.stderr, sys.__stderr__)
    ]
