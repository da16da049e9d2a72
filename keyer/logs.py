"""structlog configuration: configured once, at the edge (the CLI or ``keyer.run``).

Every event carries ``schema_version``, an ISO 8601 UTC ``timestamp``, ``level``, ``pid`` and the
memory stamp (``keyer.memory.MemoryStamp``). On the console a person sees a few brief lines
(``brief``), or every event with ``verbose``; with ``log_format="json"`` (or any ``log_file``)
events are JSON lines, one object per line, flushed as written so a killed job leaves a readable
log.
"""
from __future__ import annotations

import json
import os
import sys
import threading
from typing import IO, Any

import structlog

from keyer.memory import MemoryStamp

SCHEMA_VERSION = 2   # 2: memory_owners (keyer.ledger), compile, kernels_compiled


def _add_schema(logger: Any, method: str, event: dict) -> dict:
    event["schema_version"] = SCHEMA_VERSION
    event.setdefault("pid", os.getpid())
    return event


def _fps(value: Any) -> str:
    return f"{float(value):.3g}" if value else "?"


def brief(event: dict) -> str | None:
    """The line a person at a terminal sees for ``event`` without ``-v``, or None for none.

    A job reads as one line saying what is being made, a progress bar, and the CLI's last line
    (``keyer: wrote ...`` or ``keyer: error: ...``, said once: so ``job_end``, ``job_failed`` and
    ``job_aborted`` show nothing here). Problems along the way get a line each.
    """
    name = event.get("event")
    if name == "job_start":
        settings = event.get("settings") or {}
        frames = event.get("frames_total")
        made = [f"{event.get('width')}x{event.get('height')}",
                f"{frames} frames" if frames else "frames unknown", f"{_fps(event.get('fps'))} fps"]
        extra = ""
        if settings.get("effects"):
            extra += f", effects {','.join(settings['effects'])}"
        if settings.get("posterize_fps"):
            extra += f", posterized to {_fps(settings['posterize_fps'])} fps"
        return (f"keyer: {event.get('input')} -> {event.get('output')} ({event.get('format')} "
                f"{', '.join(made)}{extra})")
    if name == "fit":
        (w0, h0), (w1, h1) = event["from_size"], event["to_size"]
        return f"keyer: scaling {w0}x{h0} down to {w1}x{h1} (--fit)"
    if name == "compile":
        return (f"keyer: compiled {event.get('kernels')} kernels in {event.get('elapsed_s', 0):.1f} s "
                "(a cold cache; `keyer warm` does this once, ahead of jobs)")
    if name in ("job_end", "job_failed", "job_aborted"):
        return None
    if name in ("memory_warning", "memory_critical"):
        return (f"keyer: warning: RSS at {event.get('share', 0):.0%} of the "
                f"{event.get('budget_mb', 0):.0f} MB budget ({event.get('stage')}, frame "
                f"{event.get('frame')})")
    if event.get("level") in ("warning", "error", "critical"):
        detail = ", ".join(f"{k}={v}" for k, v in event.items()
                           if k in ("stage", "frame", "budget_mb", "share", "reason"))
        return f"keyer: warning: {name}" + (f" ({detail})" if detail else "")
    return None


class _Tee:
    """Render each event once per sink: JSON for files; JSON, every event (``-v``) or the brief
    lines of ``brief`` for stderr."""

    def __init__(self, stream: IO[str] | None, stream_json: bool, file: IO[str] | None,
                 verbose: bool = False) -> None:
        self.stream = stream
        self.stream_json = stream_json
        self.verbose = verbose
        self.file = file
        self.tty = bool(stream and stream.isatty())
        self.console = structlog.dev.ConsoleRenderer(colors=self.tty)
        self.lock = threading.Lock()  # stages log from their own threads: one line at a time

    def __call__(self, logger: Any, method: str, event: dict) -> str:
        line = None
        if self.file is not None or self.stream_json:
            line = json.dumps(event, default=str, separators=(",", ":"))
        text = None
        if self.stream is not None:
            if self.stream_json:
                text = line
            elif self.verbose:
                text = self.console(logger, method, dict(event))
            else:
                text = brief(event)
        with self.lock:
            if self.file is not None:
                self.file.write(line + "\n")
                self.file.flush()
            if text is not None:
                if self.tty:   # over a progress bar, if one is drawn
                    text = "\r\x1b[K" + text
                self.stream.write(text + "\n")
                self.stream.flush()
        raise structlog.DropEvent


_open_file: IO[str] | None = None


def configure(log_format: str = "console", log_file: str | None = None,
              quiet: bool = False, stream: IO[str] | None = None, verbose: bool = False) -> None:
    """Configure structlog for keyer.

    ``log_format``: ``console`` (people) or ``json`` (one object per line) on stderr.
    ``log_file``: append JSON lines to this path as well. ``quiet``: nothing on stderr.
    ``verbose``: every event on the console (else the brief lines of ``brief``).
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
