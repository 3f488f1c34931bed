"""Logging for every Keepstone process: JSON lines for machines, one short line each for people.

Switches (environment):
- KEEPSTONE_LOG_LEVEL   debug | info | warning | error (default: info; `keepstone run` shows warnings)
- KEEPSTONE_LOG_FORMAT  human | json for the terminal (default: human; servers in production set json)
- KEEPSTONE_LOG_FILE    a file that gets every record as JSON lines as well (`keepstone run`: var/log)
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _extra(record: logging.LogRecord) -> dict:
    return {k: v for k, v in vars(record).items() if k not in _RESERVED and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object; `extra=` fields become top-level keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(_extra(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class HumanFormatter(logging.Formatter):
    """`12:03:04 warning  the message  key=value ...`: what a person reads on a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        extra = " ".join(f"{k}={v}" for k, v in _extra(record).items())
        line = f"{stamp} {record.levelname.lower():<8} {record.getMessage()}" + (
            f"  {extra}" if extra else ""
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure(
    level: str | None = None, stream=None, fmt: str | None = None, file: str | Path | None = None
) -> None:
    """Set up the root logger: the terminal (stderr or `stream`) in `fmt`, and optionally a JSON file."""
    level = (level or os.environ.get("KEEPSTONE_LOG_LEVEL") or "info").upper()
    fmt = (fmt or os.environ.get("KEEPSTONE_LOG_FORMAT") or "human").lower()
    terminal = logging.StreamHandler(stream or sys.stderr)
    terminal.setFormatter(JsonFormatter() if fmt == "json" else HumanFormatter())
    terminal.setLevel(level)
    handlers: list[logging.Handler] = [terminal]
    file = file or os.environ.get("KEEPSTONE_LOG_FILE")
    if file:
        Path(file).parent.mkdir(parents=True, exist_ok=True)
        to_file = logging.FileHandler(file, encoding="utf-8")
        to_file.setFormatter(JsonFormatter())
        to_file.setLevel(min(logging.INFO, logging.getLevelName(level)))
        handlers.append(to_file)
    root = logging.getLogger()
    for old in root.handlers:
        old.close()
    root.handlers[:] = handlers
    root.setLevel(min(h.level for h in handlers))
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # urllib3 warns on every connection retry; the Jira client logs its own retries and final error.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    # The storage SDKs narrate every request and credential look-up at info; our own lines say what matters.
    for sdk in ("botocore", "boto3", "azure"):
        logging.getLogger(sdk).setLevel(logging.WARNING)
