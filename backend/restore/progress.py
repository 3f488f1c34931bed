"""On the terminal: a progress bar for a restore, a first Ctrl-C that stops after the current step and says
how to resume, and the old -> new key map.

The Restorer reports events (`{"phase": ..., "done": n, "total": n}` and `{"created": part}`) through its
progress callback and checks `stop.is_set()` between steps; this module turns both into what a person sees.
"""

from __future__ import annotations

import shlex
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class RestoreProgress:
    """A rich progress bar fed by Restorer events: issues, comments, attachments, requests, time left."""

    def __init__(self, plan_counts: dict[str, int], requests: Any, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.requests = requests  # a callable giving the client's request count so far
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[extra]}"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.tasks = {
            part: self.bar.add_task(part, total=plan_counts.get(part, 0) or None, extra="")
            for part in ("issues", "comments", "worklogs", "attachments", "links")
            if plan_counts.get(part)
        }
        self.started = time.monotonic()
        self.lock = threading.Lock()

    def __enter__(self) -> RestoreProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def __call__(self, event: dict[str, Any]) -> None:
        with self.lock:
            part = event.get("created") or event.get("phase")
            if part not in self.tasks:
                return
            if "done" in event:
                self.bar.update(self.tasks[part], completed=event["done"])
            else:
                self.bar.advance(self.tasks[part], event.get("n", 1))
            seconds = max(0.001, time.monotonic() - self.started)
            n = self.requests()
            self.bar.update(
                self.tasks["issues"] if "issues" in self.tasks else self.tasks[part],
                extra=f"{n} requests, {n / seconds:.0f}/s",
            )


@contextmanager
def first_interrupt_stops(stop: threading.Event) -> Iterator[None]:
    """The first Ctrl-C sets `stop` (the restore ends after its current step); a second one interrupts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("stopping after the current step (Ctrl-C again to interrupt at once)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def resume_command(argv: list[str]) -> str:
    """The command that resumes this restore: the same one (the journal is found from its arguments)."""
    return "keepstone " + " ".join(shlex.quote(a) for a in argv)


def key_map_lines(mapping: dict[str, str]) -> list[str]:
    """The old -> new key map, one line each, in key order (unchanged keys left out)."""

    def order(key: str) -> tuple[str, int]:
        project, _, num = key.rpartition("-")
        return project, int(num) if num.isdigit() else 0

    return [
        f"  {old} -> {new}" for old, new in sorted(mapping.items(), key=lambda kv: order(kv[0])) if old != new
    ]


def run_on_terminal(make: Any, plan: Any, client: Any, quiet: bool) -> Any:
    """Run a restore with the progress bar (on a terminal, unless `quiet`) and the first-Ctrl-C stop.

    `make(progress=..., stop=...)` builds the Restorer. When stopped, the resume command goes to stderr.
    """
    stop = threading.Event()
    show = not quiet and sys.stderr.isatty()
    with first_interrupt_stops(stop):
        if not show:
            result = make(stop=stop).run()
        else:
            with RestoreProgress(plan.counts, lambda: client.stats.requests) as bar:
                result = make(progress=bar, stop=stop).run()
    if result.stopped:
        print(f"stopped; resume with: {resume_command(sys.argv[1:])}", file=sys.stderr)
    return result
