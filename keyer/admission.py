"""Batch policy, as pure functions: how much memory a job reserves, which waiting jobs may start
now, how many cores each gets, and what an attempt's exit code means (the retry table).

``keyer.batch`` (one machine) and ``keyer.batch_ray`` (a Ray cluster) both drive their jobs by
these functions and nothing else, so the two executors admit and retry alike.

Admission: a job reserves its estimated peak (``keyer.budget``) plus a margin; a waiting job
starts only while the running jobs' reservations plus its own stay within the budget and the
running jobs stay fewer than ``max_jobs``. The queue is largest reservation first; a job that does
not fit lets a smaller one behind it start (backfill), except a job that must run alone (a retry):
nothing starts behind it, so the running jobs drain and it then runs by itself.
"""
from __future__ import annotations

import math
import signal
from dataclasses import dataclass
from typing import Iterable, Sequence

# The reservation's margin over the estimate: MARGIN_RATIO of it plus MARGIN_MB. Measured
# (docs/batch.md, "The margin"): 20 warm `keyer run` jobs, 64x48 to 1280x720, every format, with
# and without effects, peaked at 0.93..0.99 of their estimate on the project's machine; 10 % +
# 16 MB covers a machine whose libraries or thread counts make a job some 10 % bigger.
MARGIN_RATIO = 0.10
MARGIN_MB = 16.0


# The estimates (keyer.budget) were fitted on an install whose library files were mostly out of
# the page cache. Where they are all in it (a venv just installed: every CI run, a new image),
# each fault maps its neighbours too, and a job keeps ~100 MB more of shared library pages
# resident: the same private memory, a larger RSS (measured 2026-12-03: 219 vs 122 MB of file
# pages at a job's peak). `keyer warm --json` run first says how much this install keeps:
# WARM_FILE_MB on the fitting install; a job's excess was LIBRARY_RATIO times warm's (97 / 77).
WARM_FILE_MB = 112.0
LIBRARY_RATIO = 1.25


def library_allowance_mb(warm_file_mb: float | None) -> float:
    """What each job reserves besides its estimate for library pages this install keeps
    resident beyond the fitting install's, from ``keyer warm --json``'s ``file_mb``."""
    if not warm_file_mb:
        return 0.0
    return float(math.ceil(max(0.0, warm_file_mb - WARM_FILE_MB) * LIBRARY_RATIO))


def reservation_mb(estimate_mb: float) -> float:
    """Memory a job with this estimated peak reserves: the estimate plus the margin, whole MB."""
    return float(math.ceil(round(estimate_mb * (1 + MARGIN_RATIO) + MARGIN_MB, 3)))


def largest_estimate_mb(budget_mb: float) -> float:
    """The largest estimated peak whose reservation fits in ``budget_mb`` (the inverse of
    ``reservation_mb``): what ``--fit`` scales a job down to."""
    return max(0.0, (math.floor(budget_mb) - MARGIN_MB) / (1 + MARGIN_RATIO))


@dataclass(frozen=True)
class Slot:
    """A job as admission sees it: its name, the memory it reserves, whether it runs alone."""

    key: str
    reserved_mb: float
    alone: bool = False


def queue_order(slots: Iterable[Slot]) -> list[Slot]:
    """Largest reservation first (ties by name, so a batch runs in the same order every time):
    the big jobs start while the budget is empty and the small ones fill the gaps they leave."""
    return sorted(slots, key=lambda s: (not s.alone, -s.reserved_mb, s.key))


def admit(waiting: Sequence[Slot], running: Sequence[Slot], budget_mb: float,
          max_jobs: int) -> list[Slot]:
    """The waiting jobs (in queue order) to start now, beside ``running``.

    A job starts when the reservations, its own included, stay within ``budget_mb`` and the
    jobs within ``max_jobs``; one that does not fit lets a later (smaller) one try. A job that
    runs ``alone`` starts only when nothing runs, and nothing starts behind it or beside it.
    """
    started: list[Slot] = []
    reserved = sum(s.reserved_mb for s in running)
    count = len(running)
    if any(s.alone for s in running):
        return started
    for slot in waiting:
        if count >= max_jobs:
            break
        if slot.alone:
            if count == 0:
                started.append(slot)
            break
        if reserved + slot.reserved_mb <= budget_mb:
            started.append(slot)
            reserved += slot.reserved_mb
            count += 1
    return started


def core_share(cores: int, max_jobs: int, jobs: int) -> int:
    """Cores each job's thread plan gets: the cores divided among the jobs that can run at once
    (at most ``max_jobs``, at most ``jobs``), at least 1."""
    return max(1, cores // max(1, min(max_jobs, jobs)))


# ---------------------------------------------------------------- the retry table
DONE, FAILED, RETRY, STOPPED = "done", "failed", "retry", "stopped"

NEVER_RETRIED = {2: "usage", 3: "input", 4: "output"}
OVER_BUDGET = {5: "over budget (refused)", 6: "stopped over budget"}


@dataclass(frozen=True)
class Verdict:
    """What one attempt's end means: its ``status``, and whether another attempt follows (alone,
    with the whole budget reserved)."""

    status: str
    retry: bool
    reason: str


def verdict(exit_code: int, attempt: int, stopping: bool = False,
            published: bool = False) -> Verdict:
    """The retry table: the one place an attempt's exit code is judged.

    ``exit_code`` as ``subprocess`` reports it (negative: killed by that signal); ``attempt``
    counts from 1; ``stopping``: the batch itself is stopping (its Ctrl-C or SIGTERM), so a child
    ended by it is ``stopped``, not failed.

    ====================================  ==========================================
    0                                     done
    2 usage, 3 input, 4 output            failed, never retried (the same again)
    5 over budget, 6 stopped over budget  retried once, alone, whole budget reserved
    killed by a signal (OOM killer), or   retried once, alone, whole budget reserved
    1 / any other code (a crash)
    130/143 or SIGINT/SIGTERM while the   stopped (the next run of the batch does it)
    batch is stopping
    anything, after the job had           done (``published``: its log shows the
    published its output                  output renamed into place)
    ====================================  ==========================================
    """
    if exit_code == 0:
        return Verdict(DONE, False, "success")
    if published:      # renamed into place only once complete: whatever ended it after
        return Verdict(DONE, False, f"exit {exit_code} came after its output was complete and "
                                    "in place")
    if stopping and exit_code in (130, 143, -signal.SIGTERM, -signal.SIGINT):
        return Verdict(STOPPED, False, "the batch was stopped")
    if exit_code in NEVER_RETRIED:
        return Verdict(FAILED, False, f"{NEVER_RETRIED[exit_code]} error (exit {exit_code}); "
                                      "not retried")
    if exit_code in OVER_BUDGET:
        reason = OVER_BUDGET[exit_code]
    elif exit_code < 0:
        reason = f"killed by {_signal_name(-exit_code)}"
    elif exit_code > 128:
        reason = f"ended by {_signal_name(exit_code - 128)} (exit {exit_code})"
    else:
        reason = f"crashed (exit {exit_code})"
    if stopping:
        return Verdict(STOPPED, False, reason + "; the batch was stopping")
    if attempt <= 1:
        return Verdict(RETRY, True, reason + "; retried alone with the whole budget")
    return Verdict(FAILED, False, reason + f" on attempt {attempt}; not retried again")


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
