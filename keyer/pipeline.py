"""The runner: probe, plan, then a fold of metered generator stages pulled by the encoder.

    decode (thread) -> posterize-time -> key (thread) -> effects (thread) -> encode (caller's)

Everything is decided by the plan (``keyer.plan``) before decoding; ``run_job`` only carries it
out, and ``Run`` holds what the job has open, so that a failure anywhere closes the threads,
frees the effects, removes the temporary output and is said once. Without effects, the key runs
in the thread the effects would have.

Bounded queues join the threads (key and effects each get one: together they cost more than
the encoder). Frames alive at once, whatever the clip's length:

* decoded pictures: DECODE_DEPTH (2) queued + 1 held back by decode (its duration comes from the
  next timestamp) + 1 being keyed + up to 2 held by posterize-time, plus FFmpeg's own frame-thread
  pictures (about threads + 1);
* keyed RGBA frames: a ring of RING (2) buffers in the key stage (1 being read by the effects,
  1 being made or handed over: a producer makes its next frame only once the consumer took the
  last one, which it does only when done with the one before), 1 frame the effects write last
  (a ring of RING for an image sequence, whose sink takes RGBA) and 1 scratch frame, plus one
  buffer the effects share for their per-frame arrays; or,
  when the planar key writes the encoder's frames itself (key only, to .webm/.mp4), a ring of
  RING Y'CbCr(A) frames instead;
* encoder input: a ring of 2 Y'CbCr(A) frames (1 being encoded, 1 being made or handed over),
  made by the effects' thread when there are effects, plus the encoder's references (libvpx
  with lag-in-frames 0 keeps no look-ahead).

Every stage is wrapped by ``metered``, which logs ``stage_start``/``stage_end`` with busy time;
stages contain no logging code. The runner alone emits ``frame_sample`` every ``gc_every``
frames and checks RSS against the budget every frame.
"""

from __future__ import annotations

import gc
import threading
import time
import uuid
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from keyer import logs
from keyer._jit import kernel_threads
from keyer.budget import BudgetWatch
from keyer.clock import since_process_start
from keyer.decode import DecodeStats, decode
from keyer.encode import Sink, open_sink
from keyer.errors import Aborted, AbortedOverBudget, InputProblem, KeyerError, OutputProblem
from keyer.frame import Frame
from keyer.ledger import Ledger
from keyer.memory import MB, peak_rss_mb, status_mb
from keyer.plan import KeyPath, Plan  # noqa: F401 (KeyPath: the plan's choice, named here too)
from keyer.probe import StreamInfo, probe
from keyer.settings import EncodeSettings, Job, KeySettings  # noqa: F401 (re-exported)
from keyer.threads import Stalled, hold_after_first, prefetch, release_on_close
from keyer.warmup import compiled_count, warm

DECODE_DEPTH = 2
PROCESS_DEPTH = 1
# A keyed buffer is alive while being read downstream (1) and while being made, queued or
# waiting to be taken (1): the key and effects threads hand their frames over
# (``prefetch(handoff=True)``), never making the next one before the last one was taken.
RING = 2
STALL_SECONDS = 60.0   # decode producing nothing this long is reported as a stall

Progress = Callable[[int, "int | None", float], None]


def run_job(job: Job, log: Any = None, progress: Progress | None = None,
            info: StreamInfo | None = None) -> Result:
    """Run one job to completion; raise a KeyerError (temporary output removed) on failure."""
    log = (log or logs.get_logger()).bind(job_id=uuid.uuid4().hex[:12])
    if job.platform:   # a sticker for a platform: keyed once, then fitted (keyer.sticker)
        from keyer.sticker import run_sticker

        return run_sticker(job, log, progress, info)
    meter = Meter(log, time.perf_counter())
    info = info or probe(job.input)
    plan = Plan.make(job, info, log)
    log.info("job_start", **plan.describe())
    with Run(plan, meter, progress) as run:
        sink = run.open_sink()
        run.warm_up()
        frames = run.decode()        # in its own thread from here on
        frames = run.process(frames)  # posterize-time -> key (thread) -> effects (thread)
        run.encode(frames, sink)     # the sink pulls: a metered stage like the others
        run.publish(sink)
    return run.result


class Run:
    """One job being carried out: what it holds open, and the clean-up a failure gets.

    Leaving the ``with`` block on an exception stops the stage threads, frees the effects,
    aborts the sink (removing its temporary output), logs ``job_failed`` or ``job_aborted``
    once and raises the error as a KeyerError; either way the caller's Numba thread count
    (set for the job, as each stage thread sets its own) is put back.
    """

    def __init__(self, plan: Plan, meter: Meter, progress: Progress | None) -> None:
        self.plan, self.job, self.meter, self.log = plan, plan.job, meter, meter.log
        self.progress = progress
        self.stats = DecodeStats()
        budget = int(plan.budget_mb * MB) if plan.budget_mb else None
        self.watch = BudgetWatch(budget, self.log, self.job.abort_over_budget)
        self.first_out = threading.Event()   # the first frame is encoded: the key may run ahead
        self.open: list[Any] = []            # iterators to close on failure, last made first
        self.sink: Sink | None = None
        self.effects = None
        self.phase = "setup"
        self.frames_out = 0
        self.compiled_at_start = compiled_count()
        self.ledger = Ledger(self.log, plan.info.decoder_mb)
        self.result: Result | None = None
        self.published: Path | None = None   # the output, once renamed into place

    def __enter__(self) -> "Run":
        # Numba's kernel thread count is per thread: set in each thread that launches kernels
        # (this one loads them and runs the encoder's conversion)
        self.caller_kernels = kernel_threads(self.plan.threads.kernels)
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        try:
            if exc is None:
                return False
            if self.published is not None and isinstance(exc, (Aborted, KeyboardInterrupt)):
                # a signal after the output was complete and in place: the job is done
                self._record(self.published)
                return True
            self._fail(exc)
            return False
        finally:
            kernel_threads(self.caller_kernels)

    def open_sink(self) -> Sink:
        """The encoder's container and stream, opened before decoding starts; the codec itself
        opens in ``encode`` (holding the GIL, it would only delay the kernels' loading)."""
        plan = self.plan
        settings = replace(self.job.encode, threads=plan.threads.encoder)
        self.sink = open_sink(plan.target, plan.info, *plan.out_size, settings, self.job.overwrite)
        return self.sink

    def decode(self) -> Iterator[Frame]:
        """Decoding in its own thread (mostly without the GIL), started now."""
        frames = decode(self.plan.info, self.stats, max_duration=self.job.max_duration)
        decoded = prefetch(metered("decode", frames, self.meter), DECODE_DEPTH, "decode",
                           stall_timeout=STALL_SECONDS)
        self.open.append(decoded)
        return decoded

    def warm_up(self) -> None:
        """Load the job's kernels before frame 0 (compiling them on a cold cache), so the time
        shows as ``startup`` (and ``compile``), not in the first frame."""
        t = time.perf_counter()
        compiled, before = compiled_count(), status_mb()
        # Loading kernels makes ~10^5 objects that all live on: no collections meanwhile, and
        # then out of the collector's sight, so each sampled gc.collect() scans only what
        # frames made.
        collecting = gc.isenabled()
        gc.disable()
        try:
            plan = self.plan
            warm(self.job.effects, plan.target.format, plan.key_path.value, plan.out_size,
                 plan.source_padded, plan.info.rotation)
        finally:
            gc.freeze()
            if collecting:
                gc.enable()
        elapsed = round(time.perf_counter() - t, 4)
        compiled = compiled_count() - compiled
        after = status_mb()
        if compiled:   # a cold cache: the compiler's time and memory are not the job's
            self.log.info("compile", kernels=compiled, elapsed_s=elapsed,
                          rss_added_mb=round(after.get("rss", 0.0) - before.get("rss", 0.0), 1))
        self.ledger.loaded_kernels(before.get("anon", 0.0), after.get("anon", 0.0))
        self.log.info("startup", elapsed_s=elapsed, key_path=self.plan.key_path.value)
        self.ledger.log_owners("start", 0, libraries=True)

    def process(self, frames: Iterator[Frame]) -> Iterator[Frame]:
        """The stages between decode and encode, each metered, joined by bounded queues."""
        meter, set_kernels = self.meter, partial(kernel_threads, self.plan.threads.kernels)
        if self.job.posterize_fps:
            from keyer.posterize import posterize_time

            frames = metered("posterize", posterize_time(frames, self.job.posterize_fps), meter)
        key = self.plan.key_stage(RING)
        self.effects = self.plan.effects_stage(RING, self.sink.converter() if self.sink else None)
        ledger = self.ledger
        ledger.holds("key", key)
        if self.effects is not None:   # the stage's rings and the scratch its effects share
            ledger.holds("effects", self.effects, besides=tuple(self.effects.ops))
            for spec, op in zip(self.job.effects, self.effects.ops):
                ledger.holds(f"effects.{spec.name}", op)
        held = DECODE_DEPTH + 2 + (2 if self.job.posterize_fps else 0)
        ledger.in_flight(held * self.plan.picture_bytes)
        frames = metered("key", hold_after_first(frames, self.first_out), meter, key)
        if self.effects is not None:   # key and effects each in a thread: together they outweigh encode
            frames = metered("effects", prefetch(frames, PROCESS_DEPTH, "key",
                                                 init=set_kernels, handoff=True),
                             meter, self.effects)
        frames = prefetch(frames, PROCESS_DEPTH, "process", init=set_kernels, handoff=True)
        self.open.append(frames)
        return frames

    def encode(self, frames: Iterator[Frame], sink: Sink) -> None:
        """Pull every frame through the sink, sampling memory and drawing progress."""
        self.phase = "encode"
        sink.start()   # the encoder opens while the first frame is keyed (see VideoSink.start)
        encoded = metered("encode", release_on_close(frames, self.first_out), self.meter,
                          sink.write)
        self.open.append(encoded)
        for _ in encoded:
            self.frames_out += 1
            self._encoded(self.frames_out)
        self.first_out.set()
        if self.effects is not None:
            self.effects.close()
        done = getattr(self.progress, "done", None)
        if done:
            done()   # end the progress line before any more lines

    def _encoded(self, n: int) -> None:
        job, stats, meter = self.job, self.stats, self.meter
        if n == 1:
            self.first_out.set()
            self.log.info("first_frame", elapsed_s=meter.elapsed(),
                          since_process_start_s=round(since_process_start(), 4))
        self.watch.check("encode", stats.frames)
        if job.gc_every and n % job.gc_every == 0:
            _sample(self.log, stats.frames, self.plan.frames_total, meter.t0, "encode")
            self.ledger.log_owners("sample", stats.frames)
        if self.progress:
            self.progress(stats.frames, self.plan.frames_total,
                          stats.frames / max(1e-6, time.perf_counter() - meter.t0))

    def publish(self, sink: Sink) -> None:
        """Finish the output and rename it into place; log ``job_end``."""
        self.phase = "cleanup"
        self.meter.stage_start("cleanup")
        t = time.perf_counter()
        self.published = sink.finish()
        self.sink = None
        self.meter.stage_end("cleanup", time.perf_counter() - t, 0)
        self._record(self.published)

    def _record(self, out: Path) -> None:
        """The published job's result and ``job_end`` (once)."""
        if self.result is not None:
            return
        self.ledger.log_owners("end", self.stats.frames, libraries=True)
        elapsed = time.perf_counter() - self.meter.t0
        stats = self.stats
        result = Result(out, stats.frames, self.frames_out, elapsed, stats.damaged_packets,
                        stats.dropped_frames, peak_rss_mb(), self.plan.estimate_mb,
                        compiled_count() - self.compiled_at_start)
        self.log.info("job_end", frames=result.frames_in, frames_out=result.frames_out,
                      elapsed_s=round(elapsed, 4), fps=round(result.fps, 3),
                      damaged_packets=stats.damaged_packets, dropped_frames=stats.dropped_frames,
                      kernels_compiled=result.kernels_compiled)
        self.result = result

    def _fail(self, exc: BaseException) -> None:
        self.first_out.set()
        for it in reversed(self.open):   # stop the threads, downstream first
            it.close()
        if self.effects is not None:
            self.effects.close()
        err = _translate(exc, self.job, self.stats)
        if isinstance(exc, Stalled):
            self.meter.failed_stage = "decode"
        self.meter.failed_in(self.phase)
        if self.sink is not None:
            self.sink.abort()
        _log_failure(self.log, err or exc, self.stats, self.meter)
        if err is not None:
            raise err from None


@dataclass
class Result:
    output: Path
    frames_in: int
    frames_out: int
    elapsed_s: float
    damaged_packets: int = 0
    dropped_frames: int = 0
    peak_rss_mb: float = 0.0          # the process's high-water mark when the job ended
    estimate_mb: float | None = None  # what the plan predicted (for a warm job)
    kernels_compiled: int = 0         # kernel signatures compiled (a cold cache), not loaded

    @property
    def fps(self) -> float:
        return self.frames_in / self.elapsed_s if self.elapsed_s else 0.0


class Meter:
    """Per-stage busy time and frame counts, logged at stage boundaries."""

    def __init__(self, log: Any, t0: float) -> None:
        self.log, self.t0 = log, t0
        self.failed_stage: str | None = None

    def failed_in(self, stage: str) -> None:
        """Remember the first stage an exception passed through: the one it came from."""
        if self.failed_stage is None:
            self.failed_stage = stage

    def elapsed(self) -> float:
        return round(time.perf_counter() - self.t0, 4)

    def stage_start(self, stage: str) -> None:
        self.log.info("stage_start", stage=stage, elapsed_s=self.elapsed())

    def stage_end(self, stage: str, busy: float, frames: int) -> None:
        self.log.info("stage_end", stage=stage, elapsed_s=self.elapsed(), busy_s=round(busy, 4),
                      frames=frames)


def metered(stage: str, frames: Iterable[Frame], meter: Meter,
            fn: Callable[[Frame], Frame] | None = None) -> Iterator[Frame]:
    """Meter a stage: log its start and end with busy time and frame count; close upstream.

    A map stage passes ``fn`` (busy = time inside ``fn``); a stream stage is ``frames`` itself
    (busy = time inside its ``next()``).
    """
    it = iter(frames)
    meter.stage_start(stage)
    busy, n = 0.0, 0
    try:
        while True:
            t = time.perf_counter()
            try:
                frame = next(it)
            except StopIteration:
                break
            if fn is not None:
                t = time.perf_counter()
                frame = fn(frame)
            busy += time.perf_counter() - t
            n += 1
            yield frame
    except GeneratorExit:      # closed by its consumer (which may be failing): not this stage
        raise
    except BaseException:
        meter.failed_in(stage)
        raise
    finally:
        close = getattr(it, "close", None)
        if close:
            close()
        meter.stage_end(stage, busy, n)


def _translate(exc: BaseException, job: Job, stats: DecodeStats) -> KeyerError | None:
    """A KeyerError for what escaped as a plain exception: a stalled decoder, a failed write."""
    if isinstance(exc, Stalled):
        return InputProblem(f"{job.input}: decoding stalled after {stats.frames} frames ({exc})")
    if isinstance(exc, OSError) and not isinstance(exc, KeyerError):
        return OutputProblem(f"{job.output}: write failed ({exc.strerror or exc})")
    return None


def _sample(log: Any, frame: int, total: int | None, t0: float, stage: str) -> None:
    tg = time.perf_counter()
    collected = gc.collect()
    gc_ms = (time.perf_counter() - tg) * 1000
    elapsed = time.perf_counter() - t0
    log.info("frame_sample", frame=frame, frames_total=total, stage=stage,
             fps=round(frame / elapsed, 3) if elapsed else 0.0,
             gc_collected=collected, gc_ms=round(gc_ms, 3))


def _log_failure(log: Any, exc: BaseException, stats: DecodeStats, meter: Meter) -> None:
    if isinstance(exc, (Aborted, AbortedOverBudget, KeyboardInterrupt)):
        code = getattr(exc, "exit_code", 130)
        log.warning("job_aborted", stage=meter.failed_stage, frame=stats.frames,
                    reason=str(exc) or "interrupted", exit_code=code)
    else:
        code = exc.exit_code if isinstance(exc, KeyerError) else 1
        log.error("job_failed", stage=meter.failed_stage, frame=stats.frames,
                  error=str(exc) or type(exc).__name__, exit_code=code)
