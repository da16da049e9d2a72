"""``keyer batch``: many clips, each its own ``keyer run`` process, as many at once as memory and
cores allow, never one more.

    inputs -> plan (probe + estimate each, refuse what cannot fit) -> drive (admit, start, watch,
    judge, retry) -> manifest lines + summary

* ``collect_inputs`` -- files, folders (their video files) and text files of paths.
* ``plan_tasks`` -- each input probed and planned as ``keyer run`` would (``keyer.plan``), its
  estimate turned into a reservation (``keyer.admission``); what cannot run is a record at once.
* ``drive`` -- the loop every executor shares: admission, the retry table and the manifest are
  decided here and in ``keyer.admission``; an executor (``keyer.batch_local.LocalExecutor``,
  ``keyer.batch_ray.RayExecutor``) only starts, polls and stops attempts.
* ``run_batch`` -- all of it; ``keyer.batch(...)`` and ``keyer batch`` call it.

What a person sees and the summary: ``keyer.batch_console``; reading the jobs' logs:
``keyer.batch_logs``; the manifest and resume: ``keyer.batch_manifest``.
"""
from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable, Sequence

from keyer import __version__
from keyer.admission import (FAILED, Slot, admit, core_share, largest_estimate_mb,
                             library_allowance_mb, queue_order,
                             reservation_mb, verdict)
from keyer.batch_console import Console, Summary, count
from keyer.batch_local import Attempt, Ended, LocalExecutor
from keyer.batch_logs import drop_if_empty, last_error, read_log, rss_sum_peak_from_logs
from keyer.batch_manifest import Manifest, finished, input_identity, unchanged
from keyer.errors import Aborted, KeyerError, OutputProblem, OverBudget, UsageProblem
from keyer.host import CORES_ENV, available_cores, memory_limit_bytes, physical_memory
from keyer.memory import MB, rss_vms_mb
from keyer.settings import MIN_BUDGET, SECTIONS, Job

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mts", ".m2ts",
                            ".ts", ".mpg", ".mpeg", ".flv", ".ogv", ".mxf", ".3gp", ".wmv",
                            ".y4m", ".ivf", ".nut"})
LIST_SUFFIXES = frozenset({".txt", ".list", ".lst"})
POLL_S = 0.05          # the loop's tick: admission, polling, RSS samples, signals
LOGS = "logs"


# ---------------------------------------------------------------- inputs and outputs
def collect_inputs(items: Iterable[str | os.PathLike], out_dir: Path) -> list[Path]:
    """The inputs named by ``items``: a file is one input; a folder, the video files directly in
    it (by extension, sorted, hidden files and anything under ``out_dir`` left out); a ``.txt``
    (``.list``, ``.lst``) file, one path per line (blank lines and ``#`` comments skipped,
    relative paths from the list's folder). A path that does not exist stays, to fail as an
    input. Duplicates (the same resolved path) count once."""
    found: list[Path] = []
    out = out_dir.resolve()
    for item in items:
        p = Path(item)
        if p.is_dir():
            found += sorted(c for c in p.iterdir() if c.suffix.lower() in VIDEO_SUFFIXES
                            and not c.name.startswith(".") and c.is_file()
                            and out not in c.resolve().parents)
        elif p.suffix.lower() in LIST_SUFFIXES and p.is_file():
            found += _read_list(p)
        else:
            found.append(p)
    seen, unique = set(), []
    for p in found:
        key = os.path.realpath(p)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def _read_list(path: Path) -> list[Path]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageProblem(f"{path}: cannot read this list of inputs ({exc})") from None
    paths = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            p = Path(line).expanduser()
            paths.append(p if p.is_absolute() else path.parent / p)
    return paths


def output_suffix(fmt: str) -> str:
    """``--format``'s value as an output's ending: ``webm`` -> ``.webm``; ``png`` -> ``/`` (a
    folder of PNGs)."""
    from keyer.formats import FORMATS

    name = fmt.strip().lower().lstrip(".")
    if name == "png":
        return "/"
    if "." + name not in FORMATS:
        names = sorted(k.lstrip(".") for k in FORMATS)
        raise UsageProblem(f"--format {fmt}: unknown; one of {', '.join(names)}")
    return "." + name


def output_paths(inputs: Sequence[Path], out_dir: Path, suffix: str, ending: str) -> list[str]:
    """Each input's output: ``DIR/<stem><suffix><ending>``; two inputs that would write the same
    output are refused, naming both."""
    outputs, by_name = [], {}
    for p in inputs:
        name = f"{p.stem}{suffix}"
        out = str(out_dir / name) + (os.sep if ending == "/" else ending)
        if out in by_name:
            raise UsageProblem(f"{by_name[out]} and {p} would both write {out}; rename one, or "
                               "batch them into different folders")
        by_name[out] = p
        outputs.append(out)
    return outputs


# ---------------------------------------------------------------- the job's own options
def run_args(template: Job) -> list[str]:
    """``keyer run`` options that reproduce ``template``'s settings (those not at their default;
    ``--memory-budget`` is the batch's to set per attempt)."""
    from keyer.params import kind_of, params_of

    parts = {"key": template.key, "encode": template.encode, "job": template}
    args: list[str] = []
    for section in SECTIONS:
        obj = parts[section]
        for name, (f, p) in params_of(type(obj)).items():
            value = getattr(obj, f.name)
            if f.name == "memory_budget" or value == p.default or (value == () and p.default == ()):
                continue
            option = p.option or f"--{name}"
            if kind_of(f) is bool:
                args.append(option)          # a flag differs from its default only one way
            elif f.name == "effects":
                args += [option, render_chain(value)]
            elif isinstance(value, Fraction):
                args += [option, str(value)]
            else:
                args += [option, repr(value) if isinstance(value, float) else str(value)]
    return args


def render_chain(chain: Sequence[Any]) -> str:
    """An effect chain back in FFmpeg filter syntax (each parameter that is not its default)."""
    from keyer.params import params_of

    links = []
    for effect in chain:
        values = []
        for name, (f, p) in params_of(type(effect)).items():
            value = getattr(effect, f.name)
            if value == p.default:
                continue
            text = repr(value) if isinstance(value, float) else str(value)
            if "'" in text:
                raise UsageProblem(f"--effects: {effect.name}: {name}={text!r}: a value with a "
                                   "quote cannot be passed on to each job")
            if any(c in text for c in ",:=\\ "):
                text = f"'{text}'"
            values.append(f"{name}={text}")
        links.append(effect.name + ("=" + ":".join(values) if values else ""))
    return ",".join(links)


# ---------------------------------------------------------------- planning
@dataclass
class Task:
    """One input's work as the driver sees it."""

    key: str                      # the input's resolved path: the manifest's name for it
    input: Path
    identity: dict                # path, size, mtime (resume)
    output: str
    estimate_mb: float
    reserved_mb: float
    child_budget_mb: float | None  # the job's own --memory-budget (None: its reservation)
    frames_total: int | None
    argv: list[str]               # arguments to a Python interpreter, before the per-attempt ones

    def slot(self, reserved: float | None = None, alone: bool = False) -> Slot:
        return Slot(self.key, reserved or self.reserved_mb, alone)


def default_budget_mb() -> float:
    """The container's memory limit, else physical memory less a reserve (a fifth, at least
    512 MB) for the system; less this process's own resident memory either way."""
    limit = memory_limit_bytes()
    if limit is None:
        physical = physical_memory()
        limit = physical - max(512 * MB, physical // 5)
    return limit / MB - rss_vms_mb()[0]


def plan_tasks(inputs: Sequence[Path], outputs: Sequence[str], template: Job,
               budget_mb: float, overhead_mb: float = 0.0) -> tuple[list[Task], list[dict]]:
    """Probe and plan every input as ``keyer run`` would, against the whole budget: (the tasks
    to run, the records of inputs refused now). ``overhead_mb``: memory each job costs besides
    its own process (on Ray, the worker that runs it), added to its reservation.

    A job whose reservation exceeds the budget is refused (exit 5, naming the size that would
    fit) or, with ``--fit``, planned at that size: it is then run with its estimate as its own
    budget, so that the job's own ``--fit`` lands on the same size.
    """
    from keyer.plan import Plan
    from keyer.probe import probe

    quiet = _NullLog()
    base_args = run_args(template)
    largest = largest_estimate_mb(budget_mb - overhead_mb)
    tasks, refused = [], []
    for path, output in zip(inputs, outputs):
        t0 = time.time()
        try:
            identity = input_identity(path)
        except OSError as exc:
            identity = {"path": str(path.absolute()), "size": None, "mtime_ns": None}
            refused.append(_refusal(identity, output, 3, f"{path}: cannot read ({exc.strerror})", t0))
            continue
        try:
            job = replace(template, input=path, output=output, memory_budget=None)
            info = probe(path)
            plan = Plan.make(job, info, quiet)
            scaled = False
            if reservation_mb(plan.estimate_mb) + overhead_mb > budget_mb:
                if not template.fit or largest * MB < MIN_BUDGET:
                    raise OverBudget(_too_big(plan, budget_mb, largest, overhead_mb))
                plan = Plan.make(replace(job, memory_budget=int(largest * MB)), info, quiet)
                scaled = True
        except KeyerError as exc:
            refused.append(_refusal(identity, output, exc.exit_code, str(exc), t0))
            continue
        child_budget = math.ceil(plan.estimate_mb) if scaled else None
        argv = ["-m", "keyer", "run", str(path), "-o", output, *base_args]
        tasks.append(Task(identity["path"], path, identity, output, plan.estimate_mb,
                          reservation_mb(plan.estimate_mb) + overhead_mb, child_budget,
                          plan.frames_total, argv))
    return tasks, refused


def _too_big(plan: Any, budget_mb: float, largest_mb: float, overhead_mb: float) -> str:
    from keyer.budget import largest_fitting

    pad = plan.job.pad
    w, h = plan.out_size[0] - 2 * pad, plan.out_size[1] - 2 * pad
    best = largest_fitting(w, h, plan.target.format.name, len(plan.job.effects), largest_mb)
    hint = (f"; the largest size that fits is {best[0]}x{best[1]} (--fit scales to it)" if best
            else "; no size fits (raise --memory-budget)")
    extra = (f" and {overhead_mb:.0f} MB besides (its Ray worker, library pages this install "
             "keeps resident)") if overhead_mb else ""
    return (f"{plan.info.path}: needs {reservation_mb(plan.estimate_mb) + overhead_mb:.0f} MB "
            f"reserved (estimated peak {plan.estimate_mb:.0f} MB at {w}x{h} plus the margin"
            f"{extra}), more than the whole {budget_mb:.0f} MB batch budget{hint}")


class _NullLog:
    def info(self, *a, **k) -> None: ...
    warning = error = info


def _refusal(identity: dict, output: str, code: int, error: str, t0: float) -> dict:
    now = time.time()
    return {"input": identity, "output": output, "attempt": 0, "status": "refused",
            "exit_code": code, "estimate_mb": None, "reserved_mb": None, "peak_rss_mb": None,
            "elapsed_s": round(now - t0, 3), "started": t0, "ended": now, "frames": None,
            "cores": None, "error": " ".join(error.split()), "log": None}


# ---------------------------------------------------------------- driving attempts
@dataclass
class Pending:
    task: Task
    number: int = 1
    reserved_mb: float | None = None
    alone: bool = False

    def slot(self) -> Slot:
        return self.task.slot(self.reserved_mb, self.alone)


class StopSignals:
    """SIGINT and SIGTERM, while the batch runs, set ``signum`` instead of raising: the loop then
    sends SIGTERM to every child and waits for each to clean up. Installed only in the main
    thread (a batch run from another thread keeps its process's handlers)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.saved: dict[int, Any] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.saved[sig] = signal.signal(sig, self._caught)
        return self

    def _caught(self, signum, frame) -> None:
        if self.signum is None:
            self.signum = signum

    def __exit__(self, *exc) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)


def drive(tasks: Sequence[Task], executor: Any, manifest: Manifest | None, budget_mb: float,
          max_jobs: int, cores: int, log_dir: Path, console: Console | None = None,
          summary: Summary | None = None, record_extra: dict | None = None,
          alone_mb: float | None = None) -> list[dict]:
    """Run ``tasks`` on ``executor`` within ``budget_mb`` and ``max_jobs``; write one manifest
    record per attempt; return the records. A retry runs alone reserving ``alone_mb`` (default:
    the budget; on Ray, the largest node's memory if smaller). On the batch's own SIGINT/SIGTERM
    it starts nothing more, stops every child (SIGTERM) and waits for each; the signal is then
    in ``summary.stopped_by``."""
    summary = summary or Summary()
    console = console or Console(len(tasks), quiet=True)
    share = core_share(cores, max_jobs, len(tasks))
    waiting = [Pending(t) for t in tasks]
    running: dict[str, Pending] = {}
    records: list[dict] = []
    t0 = time.monotonic()
    with StopSignals() as signals:
        stopping = False
        while waiting or running:
            if signals.signum is not None and not stopping:
                stopping = True
                summary.stopped_by = signals.signum
                executor.stop_all()
                waiting.clear()
            if not stopping:
                by_key = {p.task.key: p for p in waiting}     # an input waits or runs, once
                slots = queue_order(p.slot() for p in waiting)
                for slot in admit(slots, [p.slot() for p in running.values()], budget_mb, max_jobs):
                    pending = by_key[slot.key]
                    waiting.remove(pending)
                    running[pending.task.key] = pending
                    executor.start(_attempt(pending, cores if pending.alone else share, log_dir))
            for attempt, ended in executor.poll():
                pending = running.pop(attempt.key)
                record = _record(attempt, ended, pending.task, record_extra)
                if _judge(record, ended, attempt.number, stopping):
                    waiting.append(Pending(pending.task, attempt.number + 1,
                                           alone_mb or budget_mb, True))
                    summary.retried += 1
                records.append(record)
                count(summary, record)
                if manifest is not None:
                    manifest.write(record)
                console.record(record)
            reserved = sum(p.slot().reserved_mb for p in running.values())
            rss = executor.rss_mb() or 0.0
            summary.peak_rss_sum_mb = max(summary.peak_rss_sum_mb, rss)
            summary.peak_reserved_mb = max(summary.peak_reserved_mb, reserved)
            summary.peak_running = max(summary.peak_running, len(running))
            console.progress(len(running), reserved, rss, budget_mb)
            if waiting or running:
                time.sleep(POLL_S)
    executor.close()
    if summary.peak_rss_sum_mb == 0.0 and records:     # an executor that cannot see RSS live
        summary.peak_rss_sum_mb = rss_sum_peak_from_logs(records)
    summary.elapsed_s = time.monotonic() - t0
    summary.budget_mb, summary.max_jobs = budget_mb, max_jobs
    return records


def _judge(record: dict, ended: Ended, number: int, stopping: bool) -> bool:
    """Set the record's status from the retry table (``keyer.admission.verdict``); whether
    another attempt follows. An attempt that could not run at all (``ended.error``) failed."""
    published = record.pop("published")
    if ended.error is not None:
        return False
    judged = verdict(ended.exit_code, number, stopping, published)
    record["status"] = judged.status
    if judged.status == "done" and ended.exit_code:
        record["error"], record["note"] = None, judged.reason
    elif judged.status != "done" and not record["error"]:
        record["error"] = judged.reason
    if judged.retry:
        record["retry_reason"] = judged.reason
    return judged.retry


def _attempt(pending: Pending, cores: int, log_dir: Path) -> Attempt:
    task = pending.task
    name = Path(task.output.rstrip("/" + os.sep)).name
    log, err = log_dir / f"{name}.jsonl", log_dir / f"{name}.stderr"
    reserved = pending.reserved_mb or task.reserved_mb
    budget = task.child_budget_mb or reserved
    argv = [*task.argv, "--memory-budget", f"{int(budget)}M", "--log-format", "json",
            "--log-file", str(log), "-q"]
    return Attempt(task.key, pending.number, argv, {CORES_ENV: str(cores)}, reserved, cores,
                   pending.alone, log, err)


def _record(attempt: Attempt, ended: Ended, task: Task, extra: dict | None) -> dict:
    """One manifest line for an attempt that ended; its measured peak from the job's log."""
    started, now = ended.started or attempt.started, ended.ended or time.time()
    found = read_log(attempt.log, attempt.log_offset)
    error = (ended.error or last_error(attempt.stderr, attempt.stderr_offset)
             or found.get("error") or ended.note)
    drop_if_empty(attempt.stderr)
    return {"input": task.identity, "output": task.output, "attempt": attempt.number,
            "status": FAILED if ended.error else "?", "exit_code": ended.exit_code,
            "estimate_mb": task.estimate_mb, "reserved_mb": attempt.reserved_mb,
            "peak_rss_mb": found.get("peak_rss_mb"), "elapsed_s": round(now - started, 3),
            "started": round(started, 3), "ended": round(now, 3),
            "frames": found.get("frames"), "cores": attempt.cores, "alone": attempt.alone,
            "error": error, "log": str(attempt.log), "host": ended.host,
            "keyer_version": ended.keyer_version, **(extra or {}),
            "published": bool(found.get("published"))}


# ---------------------------------------------------------------- the whole batch
def warm_kernels() -> float | None:
    """``keyer warm`` once, alone, before any job: a job compiling kernels takes a few hundred
    MB more than its estimate (a warm cache loads them in under a second). Returns the library
    pages it kept resident, in MB (``keyer.admission.library_allowance_mb``)."""
    done = subprocess.run([sys.executable, "-m", "keyer", "warm", "--json"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if done.returncode != 0:
        raise KeyerError(f"keyer warm failed before the batch: {done.stderr.strip()[-300:]}")
    try:
        return json.loads(done.stdout.strip().splitlines()[-1]).get("file_mb")
    except (ValueError, IndexError, AttributeError):
        return None


def run_batch(inputs: Iterable[str | os.PathLike], out_dir: str | os.PathLike, template: Job, *,
              suffix: str = "", fmt: str = "webm", jobs: int | None = None,
              memory_budget: int | None = None, ray: str | None = None, resume: bool = True,
              quiet: bool = True, stream=None, warm: bool = True) -> tuple[list[dict], Summary]:
    """Run a batch: (the records of this run, skipped inputs included, and its summary).

    ``template``: the settings of every job (its input and output are ignored); ``jobs``: at
    most this many at once (default: the cores); ``memory_budget``: bytes for all jobs together
    (default: ``default_budget_mb``); ``ray``: run on Ray ("local" or an address); ``resume``:
    skip inputs done by an earlier run of the batch into ``out_dir``.
    """
    out = Path(out_dir).absolute()
    if out.exists() and not out.is_dir():
        raise OutputProblem(f"{out}: not a folder")
    if jobs is not None and jobs < 1:
        raise UsageProblem(f"-j/--jobs {jobs}: at least 1")
    if memory_budget is not None and memory_budget < MIN_BUDGET:
        raise UsageProblem("--memory-budget: at least 64M")
    ending = output_suffix(fmt)
    paths = collect_inputs(inputs, out)
    if not paths:
        raise UsageProblem("no inputs: name video files, folders of them, or a .txt list of paths")
    outputs = output_paths(paths, out, suffix, ending)
    try:
        (out / LOGS).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputProblem(f"{out}: cannot create it ({exc.strerror})") from None
    manifest = Manifest(out)
    console = Console(len(paths), quiet=quiet, stream=stream)
    executor: Any = None
    try:
        if ray is not None:
            from keyer.batch_ray import RayExecutor

            executor = RayExecutor(ray, memory_budget)
            budget_mb, cores = executor.budget_mb, executor.cores
        else:
            executor = LocalExecutor()
            budget_mb = memory_budget / MB if memory_budget else default_budget_mb()
            cores = available_cores()
        max_jobs = jobs or cores
        skipped, todo, todo_out = [], [], []
        done_before = finished(manifest.path) if resume else {}
        for path, output in zip(paths, outputs):
            previous = done_before.get(str(path.resolve()))
            if previous and previous["output"] == output and path.exists() and \
                    unchanged(previous, input_identity(path)):
                skipped.append({**previous, "status": "skipped", "skipped_from": previous["ended"]})
            else:
                todo.append(path)
                todo_out.append(output)
        allowance = 0.0
        if warm and todo and ray in (None, "local"):   # a local Ray shares this cache
            allowance = library_allowance_mb(warm_kernels())
        tasks, refused = plan_tasks(todo, todo_out, template,
                                    getattr(executor, "job_limit_mb", budget_mb),
                                    getattr(executor, "overhead_mb", 0.0) + allowance)
        summary = Summary(skipped=len(skipped))
        extra = {"batch_id": uuid.uuid4().hex[:12], "executor": ray and "ray" or "local"}
        for record in refused:
            record.update(host=socket.gethostname(), keyer_version=__version__, **extra)
            manifest.write(record)
            count(summary, record)
            console.record(record)
        records = drive(tasks, executor, manifest, budget_mb, max_jobs, cores, out / LOGS,
                        console, summary, extra, getattr(executor, "job_limit_mb", None))
    finally:
        manifest.close()
        if executor is not None:
            executor.shutdown()
    console.say(f"keyer: {summary.line()}")
    if summary.stopped_by is not None:
        raise Aborted(summary.stopped_by, f"batch stopped by {signal.Signals(summary.stopped_by).name}"
                      f"; {summary.done} done, {summary.stopped} stopped (run it again to resume)")
    return skipped + refused + records, summary


def batch(inputs: Iterable[str | os.PathLike] | str | os.PathLike, out_dir: str | os.PathLike, *,
          jobs: int | None = None, memory_budget: int | str | None = None, ray: str | None = None,
          suffix: str = "", format: str = "webm", resume: bool = True, effects=(), key=None,
          encode=None, **options) -> list[dict]:
    """Run many jobs as ``keyer batch`` does; returns the manifest's records for this run (each
    attempt, each input refused up front, and each input skipped as already done).

    ``inputs``: paths (files, folders, .txt lists); other keywords are ``keyer.run``'s (``Job``
    fields, ``KeySettings``/``EncodeSettings``), applied to every job.
    """
    from keyer.settings import EncodeSettings, KeySettings, byte_size

    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    budget = byte_size(memory_budget) if memory_budget is not None else None
    template = Job(input=".", output=".", key=key or KeySettings(), encode=encode or EncodeSettings(),
                   effects=effects, **options)
    records, _ = run_batch(inputs, out_dir, template, suffix=suffix, fmt=format, jobs=jobs,
                           memory_budget=budget, ray=ray, resume=resume)
    return records


class BatchIncomplete(KeyerError):
    """Some of the batch's inputs failed or were refused (each is in the manifest)."""

    exit_code = 1
