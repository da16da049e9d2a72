"""What a person sees of a batch, and what the summary says: ``Summary`` (done, failed,
throughput, the peak sum of RSS against the budget) and ``Console`` (a progress line on a
terminal, a line per finished job otherwise)."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from keyer.admission import FAILED, RETRY, STOPPED


@dataclass
class Summary:
    """The batch as a whole, for its last line and the benchmark."""

    done: int = 0
    failed: int = 0
    refused: int = 0
    skipped: int = 0
    stopped: int = 0
    retried: int = 0
    frames: int = 0
    elapsed_s: float = 0.0
    budget_mb: float = 0.0
    max_jobs: int = 0
    peak_rss_sum_mb: float = 0.0        # the running jobs' RSS, summed, at its highest
    peak_reserved_mb: float = 0.0       # their reservations, summed, at the highest
    peak_running: int = 0
    stopped_by: int | None = None       # the signal that stopped the batch

    @property
    def inputs(self) -> int:
        return self.done + self.failed + self.refused + self.skipped + self.stopped

    @property
    def fps(self) -> float:
        return self.frames / self.elapsed_s if self.elapsed_s else 0.0

    def line(self) -> str:
        parts = [f"{self.done} done", f"{self.failed} failed"]
        if self.refused:
            parts.append(f"{self.refused} refused")
        parts.append(f"{self.skipped} skipped")
        if self.stopped:
            parts.append(f"{self.stopped} stopped")
        retried = f", {self.retried} retried" if self.retried else ""
        return (f"batch: {', '.join(parts)}{retried} in {self.elapsed_s:.1f} s; {self.frames} "
                f"frames, {self.fps:.1f} frames/s; peak sum of RSS {self.peak_rss_sum_mb:.0f} MB "
                f"of the {self.budget_mb:.0f} MB budget (reserved at most "
                f"{self.peak_reserved_mb:.0f} MB, {self.peak_running} jobs at once)")


class Console:
    """What a person sees: a progress line on a terminal (redrawn at most 4 times a second), a
    line per finished job otherwise; nothing with ``quiet``."""

    def __init__(self, total: int, quiet: bool = False, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.quiet, self.total = quiet, total
        self.tty = not quiet and self.stream.isatty()
        self.last = 0.0
        self.ended = 0

    def progress(self, running: int, reserved: float, rss: float, budget: float) -> None:
        now = time.monotonic()
        if not self.tty or now - self.last < 0.25:
            return
        self.last = now
        self.stream.write(f"\r\x1b[Kkeyer: batch {self.ended}/{self.total} ended, {running} "
                          f"running, reserved {reserved:.0f}/{budget:.0f} MB, RSS {rss:.0f} MB")
        self.stream.flush()

    def record(self, record: dict) -> None:
        self.ended += record["status"] != RETRY
        if self.quiet:
            return
        name = Path(record["input"]["path"]).name
        what = record["status"]
        if record["status"] in ("done",):
            peak = record.get("peak_rss_mb")
            detail = f"-> {record['output']} ({record['elapsed_s']:.1f} s" + (
                f", peak {peak:.0f} MB of {record['reserved_mb']:.0f} reserved)" if peak else ")")
        else:
            detail = f"(exit {record['exit_code']}): {record.get('error') or ''}".rstrip(": ")
        self.say(f"keyer: [{self.ended}/{self.total}] {what} {name} {detail}")

    def say(self, text: str) -> None:
        if self.quiet:
            return
        self.stream.write(("\r\x1b[K" if self.tty else "") + text + "\n")
        self.stream.flush()


def count(summary: Summary, record: dict) -> None:
    """Add one record (an attempt's end, or an input refused) to the summary."""
    status = record["status"]
    if status == "done":
        summary.done += 1
        summary.frames += record.get("frames") or 0
    elif status == FAILED:
        summary.failed += 1
    elif status == STOPPED:
        summary.stopped += 1
    elif status == "refused":
        summary.refused += 1
