"""Reading a batch job's own files: its JSON log (the measured peak, frames, error), its stderr
(the ``keyer: error:`` line), and the peak sum of RSS rebuilt from all jobs' logs."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence


def read_log(path: Path, offset: int) -> dict:
    """From a job's JSON log, past ``offset``: the highest ``peak_rss_mb`` of any event, the
    frames of ``job_end``, the error of ``job_failed``/``job_aborted``, and ``published`` when
    the output was renamed into place (``stage_end`` of the cleanup stage) even if a signal then
    ended the job before ``job_end``."""
    found: dict[str, Any] = {}
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return found
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        peak = event.get("peak_rss_mb")
        if isinstance(peak, (int, float)):
            found["peak_rss_mb"] = max(found.get("peak_rss_mb", 0.0), float(peak))
        name = event.get("event")
        if name == "job_end":
            found["frames"] = event.get("frames")
        elif name == "stage_end" and event.get("stage") == "cleanup":
            found["published"] = True        # the output was renamed into place just before
        elif name in ("job_failed", "job_aborted"):
            found["error"] = event.get("error") or event.get("reason")
            if found.get("published"):
                found["frames"] = event.get("frame")
    return found


def rss_sum_peak_from_logs(records: Sequence[dict]) -> float:
    """The highest sum of the attempts' RSS, from the ``rss_mb`` and timestamps of the events
    in their logs (each job's RSS held from one event to the next, zero outside its attempt):
    what the summary reports when the executor cannot sample the jobs (Ray)."""
    from datetime import datetime

    changes: list[tuple[float, float]] = []
    logs = {r["log"]: r for r in records if r.get("log")}
    for path in logs:
        try:
            lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        last_by_pid: dict[Any, float] = {}
        for line in lines:
            try:
                event = json.loads(line)
                t = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()
                rss = float(event["rss_mb"])
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
            pid = event.get("pid")
            changes.append((t, rss - last_by_pid.get(pid, 0.0)))
            last_by_pid[pid] = rss
            if event.get("event") in ("job_end", "job_failed", "job_aborted"):
                changes.append((t + 1e-6, -last_by_pid.pop(pid)))
        for pid, rss in last_by_pid.items():     # a job killed before its last event
            changes.append((max(t for t, _ in changes) + 1e-6, -rss))
    peak = total = 0.0
    for _, delta in sorted(changes):
        total += delta
        peak = max(peak, total)
    return round(peak, 1)


def last_error(path: Path, offset: int) -> str | None:
    """The last ``keyer: error: ...`` line a job wrote to stderr past ``offset``, without the
    prefix; else its last line."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            lines = [ln.strip() for ln in fh.read().decode("utf-8", "replace").splitlines()
                     if ln.strip()]
    except OSError:
        return None
    for line in reversed(lines):
        if line.startswith("keyer: error: "):
            return line[len("keyer: error: "):]
    return lines[-1][:300] if lines else None


def drop_if_empty(path: Path) -> None:
    try:
        if path.stat().st_size == 0:
            path.unlink()
    except OSError:
        pass
