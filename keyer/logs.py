"""structlog configuration: configured once, at the edge (the CLI or ``keyer.run``).

Every event carries ``schema_version``, an ISO 8601 UTC ``timestamp``, ``level``, ``pid`` and the
memory stamp (``keyer.memory.MemoryStamp``). On a terminal events are rendered for people; with
``log_format="json"`` (or any ``log_file``) they are JSON lines, one object per line, flushed as
written so a killed job leaves a readable log.
"""
from __future__ import annotations

import json
import os
import sys
import threading
from typing import IO, Any

import structlog

from keyer.memory import MemoryStamp

SCHEMA_VERSION = 1


def _add_schema(logger: Any, method: str, event: dict) -> dict:
    event["schema_version"] = SCHEMA_VERSION
    event.setdefault("pid", os.getpid())
    return event


class _Tee:
    """Render each event once per sink: JSON for files, JSON or console for stderr."""

    # On a terminal without --verbose, people see the job's first and last line and problems;
    # the log file and JSON on stderr always carry every event.
    BRIEF = frozenset({"job_start", "fit", "job_end"})

    def __init__(self, stream: IO[str] | None, stream_json: bool, file: IO[str] | None,
                 verbose: bool = False) -> None:
        self.stream = stream
        self.stream_json = stream_json
        self.verbose = verbose
        self.file = file
        self.console = structlog.dev.ConsoleRenderer(colors=bool(stream and stream.isatty()))
        self.lock = threading.Lock()  # stages log from their own threads: one line at a time

    def __call__(self, logger: Any, method: str, event: dict) -> str:
        line = None
        if self.file is not None or self.stream_json:
            line = json.dumps(event, default=str, separators=(",", ":"))
        text = None
        show = (self.stream_json or self.verbose or event.get("event") in self.BRIEF
                or method in ("warning", "error", "critical"))
        if self.stream is not None and show:
            text = line if self.stream_json else self.console(logger, method, dict(event))
        with self.lock:
            if self.file is not None:
                self.file.write(line + "\n")
                self.file.flush()
            if text is not None:
                self.stream.write(text + "\n")
                self.stream.flush()
        raise structlog.DropEvent


_open_file: IO[str] | None = None


def configure(log_format: str = "console", log_file: str | None = None,
              quiet: bool = False, stream: IO[str] | None = None, verbose: bool = False) -> None:
    """Configure structlog for keyer.

    ``log_format``: ``console`` (people) or ``json`` (one object per line) on stderr.
    ``log_file``: append JSON lines to this path as well. ``quiet``: nothing on stderr.
    ``verbose``: every event on a console too (else job start/end, warnings and errors).
    """
    global _open_file
    if _open_file is not None:
        _open_file.close()
        _open_file = None
    if log_file:
        _open_file = open(log_file, "a", encoding="utf-8")  # noqa: SIM115 (lives with the job)
    out = None if quiet else (stream or sys.stderr)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _add_schema,
            MemoryStamp(),
            _Tee(out, log_format == "json", _open_file, verbose),
        ],
        cache_logger_on_first_use=False,
    )


def close() -> None:
    global _open_file
    if _open_file is not None:
        _open_file.close()
        _open_file = None


def get_logger(**bound: Any) -> Any:
    return structlog.get_logger("keyer").bind(**bound)
