"""The job: probe, then a fold of generator stages pulled by the encoder.

    decode (thread) -> posterize-time -> key (thread) -> effects (thread) -> encode (caller's)

The key is ``PlanarKeyStage`` (chroma-resolution key from 8-bit 4:2:0 planes) where it fits,
else ``KeyStage`` (planes -> RGBA, then a per-pixel key): see ``keyer.stages``. Without
effects, key runs in the thread the effects would have.

Bounded queues join the threads (key and effects each get one: together they cost more than
the encoder, and apart they ran --effects all ~6 % faster at 1080p for 4 RGBA frames more).
Frames alive at once, whatever the clip's length:

* decoded pictures: DECODE_DEPTH (4) queued + 1 held back by decode (its duration comes from the
  next timestamp) + 1 being keyed + up to 2 held by posterize-time, plus FFmpeg's own frame-thread
  pictures (about threads + 1);
* keyed RGBA frames: a ring of RING (5) buffers in the key stage (PROCESS_DEPTH (2) queued for
  the effects, 1 waiting to be queued, 1 being read, 1 being made), a ring of RING in the
  effects stage and 2 scratch buffers, PROCESS_DEPTH of them queued for encode; or, when the
  planar key writes the encoder's frames itself (key only, to .webm/.mp4), a ring of RING
  Y'CbCr(A) frames instead;
* encoder input: 1 Y'CbCr(A) frame being handed over, plus the encoder's references (libvpx
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
from dataclasses import dataclass, field, replace
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from keyer import logs
from keyer._jit import kernel_threads
from keyer.clock import since_process_start
from keyer.decode import DecodeStats, decode
from keyer.encode import background_planes, open_sink, resolve_output
from keyer.errors import InputProblem, KeyerError, OutputProblem, UsageProblem
from keyer.frame import Frame
from keyer.settings import EncodeSettings, Job, KeySettings  # noqa: F401 (re-exported)
from keyer.budget import BudgetWatch
from keyer.memory import MB, peak_rss_mb, rss_vms_mb
from keyer.probe import StreamInfo, expected_frames, probe
from keyer.stages import EffectsStage, KeyStage, PlanarKeyStage, planar_key_fits, planar_output
from keyer.threads import Stalled, ThreadPlan, hold_after_first, prefetch
from keyer.warmup import compiled_count, warm

DECODE_DEPTH = 4
PROCESS_DEPTH = 2
# A keyed buffer is alive while queued (PROCESS_DEPTH), being encoded (1) and being made (1).
RING = PROCESS_DEPTH + 3
STALL_SECONDS = 60.0   # decode producing nothing this long is reported as a stall


@dataclass(frozen=True)
class Plan:
    """Sizes and memory decided before decoding: what the job will actually make."""

    coded_size: tuple[int, int]      # size keyed at (coded orientation, after any --fit)
    out_size: tuple[int, int]        # upright, padded
    scaled: bool
    estimate_mb: float
    budget_mb: float | None


def plan_job(job: Job, info: StreamInfo, fmt: str, log: Any) -> Plan:
    """Check limits and the memory estimate; scale down with ``fit``, else refuse with advice."""
    from keyer.budget import estimate_peak_mb, largest_fitting, scale_to_megapixels
    from keyer.errors import InputProblem, OverBudget
    from keyer.host import memory_limit_bytes
    from keyer.memory import MB

    w, h = info.display_size
    target = None
    if w * h > job.max_megapixels * 1e6:
        best = scale_to_megapixels(w, h, job.max_megapixels)
        if not job.fit or best is None:
            hint = f"; the largest allowed at this aspect ratio is {best[0]}x{best[1]}" if best else ""
            raise InputProblem(f"{info.path}: {w}x{h} is {w * h / 1e6:.1f} megapixels, over the "
                               f"{job.max_megapixels:g} MP limit (--max-megapixels){hint}; "
                               "--fit scales down to it")
        target = best
    # the longest any header claims; a stream running past the limit anyway is stopped by decode
    declared = max((d for d in (info.declared_duration, info.duration) if d), default=None)
    if job.max_duration is not None and declared is not None and declared > job.max_duration:
        raise InputProblem(f"{info.path}: its header declares {declared:.1f} s, longer than "
                           f"--max-duration {job.max_duration:g} s")
    budget = job.memory_budget or memory_limit_bytes()
    budget_mb = budget / MB if budget else None
    tw, th = target or (w, h)
    n_fx = len(job.effects)
    estimate = estimate_peak_mb(tw + 2 * job.pad, th + 2 * job.pad, fmt, n_fx)
    if budget_mb and estimate > budget_mb:
        best = largest_fitting(tw, th, fmt, n_fx, budget_mb)
        if not job.fit or best is None:
            hint = (f"; the largest size that fits is {best[0]}x{best[1]} (--fit scales to it)"
                    if best else "; no size fits (raise --memory-budget)")
            raise OverBudget(f"{info.path}: estimated peak {estimate:.0f} MB at {tw}x{th} exceeds "
                             f"the {budget_mb:.0f} MB memory budget{hint}")
        target = best
        tw, th = best
        estimate = estimate_peak_mb(tw + 2 * job.pad, th + 2 * job.pad, fmt, n_fx)
    if target is not None:
        log.info("fit", from_size=[w, h], to_size=[tw, th])
    coded = (th, tw) if info.rotation % 180 else (tw, th)
    return Plan(coded_size=coded, out_size=(tw + 2 * job.pad, th + 2 * job.pad),
                scaled=target is not None, estimate_mb=round(estimate, 1), budget_mb=budget_mb)


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


def bind_effects(effects: Sequence, width: int, height: int, fps: float) -> list:
    from effects.base import Geometry

    geometry = Geometry(width=width, height=height, fps=fps)
    return [e.bind(geometry) for e in effects]


def run_job(job: Job, log: Any = None, progress: Callable[[int, int | None, float], None] | None = None,
            info: StreamInfo | None = None) -> Result:
    """Run one job to completion; raise a KeyerError (temporary output removed) on failure."""
    job_id = uuid.uuid4().hex[:12]
    log = log or logs.get_logger()
    log = log.bind(job_id=job_id)
    t0 = time.perf_counter()
    meter = Meter(log, t0)
    info = info or probe(job.input)
    target = resolve_output(job.output, job.input, job.overwrite)
    plan = plan_job(job, info, target.format.name, log)
    width, height = plan.out_size
    total = expected_frames(info)
    threads = ThreadPlan.for_job(target.format, job.encode.threads, job.encode.preset,
                                 bool(job.effects))
    log.info("job_start", input=str(job.input), output=str(job.output), format=target.format.name,
             width=width, height=height, fps=float(info.fps), frames_total=total,
             settings=job.summary(), estimate_peak_mb=plan.estimate_mb,
             budget_mb=round(plan.budget_mb, 1) if plan.budget_mb else None,
             threads=threads.summary())
    watch = BudgetWatch(int(plan.budget_mb * MB) if plan.budget_mb else None, log,
                        job.abort_over_budget)
    stats = DecodeStats()
    sink = None
    frames_out = 0
    compiled_at_start = compiled_count()
    phase = "setup"
    fx = None
    frames: Iterator[Frame] | None = None
    decoded = None
    first_out = threading.Event()   # the first frame is encoded: the key may run ahead
    # Numba's kernel thread count is per thread: set in each thread that launches kernels (this
    # one: loading them, and the encoder's conversion), and put back here when the job ends.
    caller_kernels = kernel_threads(threads.kernels)
    set_kernels = partial(kernel_threads, threads.kernels)
    try:
        t = time.perf_counter()

        # Decoding runs in its own thread, mostly without the GIL: started first, it overlaps
        # the kernels' loading. The encoder opens last (holding the GIL, it would only delay the
        # loading and the effects' set-up): beside the first frame's key and effects, Numba
        # code that releases it.
        sink = open_sink(target, info, width, height, replace(job.encode, threads=threads.encoder),
                         job.overwrite)
        decoded = prefetch(metered("decode", decode(info, stats, max_duration=job.max_duration),
                                   meter), DECODE_DEPTH, "decode", stall_timeout=STALL_SECONDS)
        frames = decoded
        planar = planar_key_fits(info, plan.coded_size)
        planes_out = planar and target.format.codec is not None and planar_output(
            target.format.pix_fmt, job.effects, job.pad)
        key_path = ("planar" if planes_out else "planar-rgba") if planar else "rgba"
        # Loading kernels makes ~10^5 objects that all live on: no collections meanwhile, and
        # then out of the collector's sight, so each sampled gc.collect() scans only what frames
        # made.
        collecting = gc.isenabled()
        gc.disable()
        compiled, rss_before, tw = compiled_count(), rss_vms_mb()[0], time.perf_counter()
        try:
            warm(job.effects, target.format, key_path, (width, height))
        finally:
            gc.freeze()
            if collecting:
                gc.enable()
        compiled = compiled_count() - compiled
        if compiled:   # a cold cache: the compiler's time and memory are not the job's
            log.info("compile", kernels=compiled, elapsed_s=round(time.perf_counter() - tw, 4),
                     rss_added_mb=round(rss_vms_mb()[0] - rss_before, 1))
        log.info("startup", elapsed_s=round(time.perf_counter() - t, 4), key_path=key_path)
        coded_w, coded_h = plan.coded_size
        if planes_out:
            background = (background_planes(job.encode.background, width, height)
                          if target.format.flatten else None)
            key_stage = PlanarKeyStage(job.key, coded_w, coded_h, target.format.pix_fmt, background,
                                       ring=RING, rotation=info.rotation, scale=plan.scaled)
        elif planar:
            key_stage = PlanarKeyStage(job.key, coded_w, coded_h, None, ring=RING,
                                       rotation=info.rotation, pad=job.pad, scale=plan.scaled)
        else:
            key_stage = KeyStage(job.key, info.width, info.height, info.rotation, job.pad,
                                 ring=RING, scale_to=plan.coded_size if plan.scaled else None)
        ops = bind_effects(job.effects, width, height, float(info.fps or 30)) if job.effects else []
        fx = EffectsStage(ops, width, height, RING, threads.opencv) if ops else None

        if job.posterize_fps:
            from keyer.posterize import posterize_time

            frames = metered("posterize", posterize_time(frames, job.posterize_fps), meter)
        frames = metered("key", hold_after_first(frames, first_out), meter, key_stage)
        if fx is not None:    # key and effects each in a thread: together they outweigh encode
            frames = metered("effects", prefetch(frames, PROCESS_DEPTH, "key", init=set_kernels),
                             meter, fx)
        frames = prefetch(frames, PROCESS_DEPTH, "process", init=set_kernels)
        sink.start()   # the encoder opens while the first frame is keyed (see VideoSink.start)

        phase = "encode"
        meter.stage_start("encode")
        busy = 0.0
        try:
            for frame in frames:
                tw = time.perf_counter()
                sink.write(frame)
                busy += time.perf_counter() - tw
                frames_out += 1
                if frames_out == 1:
                    first_out.set()
                    log.info("first_frame", elapsed_s=meter.elapsed(),
                             since_process_start_s=round(since_process_start(), 4))
                watch.check("encode", stats.frames)
                if job.gc_every and frames_out % job.gc_every == 0:
                    _sample(log, stats.frames, total, t0, "encode")
                if progress:
                    progress(stats.frames, total, stats.frames / max(1e-6, time.perf_counter() - t0))
        finally:
            first_out.set()
            frames.close()
            frames = None
            if fx is not None:
                fx.close()
            done = getattr(progress, "done", None)
            if done:
                done()   # end the progress line before more log lines
        phase = "cleanup"
        meter.stage_start("cleanup")
        tc = time.perf_counter()
        out = sink.finish()
        sink = None
        meter.stage_end("encode", busy, frames_out)
        meter.stage_end("cleanup", time.perf_counter() - tc, 0)
    except BaseException as exc:
        first_out.set()
        for it in (frames, decoded):   # failed before or in the encode loop: stop the threads
            if it is not None:
                it.close()
        if fx is not None:
            fx.close()
        err = _translate(exc, job, stats)
        if isinstance(exc, Stalled):
            meter.failed_stage = "decode"
        meter.failed_in(phase)
        if sink is not None:
            sink.abort()
        _log_failure(log, err or exc, stats, meter)
        if err is not None:
            raise err from None
        raise
    finally:
        kernel_threads(caller_kernels)
    elapsed = time.perf_counter() - t0
    result = Result(out, stats.frames, frames_out, elapsed, stats.damaged_packets,
                    stats.dropped_frames, peak_rss_mb(), plan.estimate_mb,
                    compiled_count() - compiled_at_start)
    log.info("job_end", frames=result.frames_in, frames_out=frames_out,
             elapsed_s=round(elapsed, 4), fps=round(result.fps, 3),
             damaged_packets=stats.damaged_packets, dropped_frames=stats.dropped_frames,
             kernels_compiled=result.kernels_compiled)
    return result


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
    from keyer.errors import Aborted, AbortedOverBudget

    if isinstance(exc, (Aborted, AbortedOverBudget, KeyboardInterrupt)):
        code = getattr(exc, "exit_code", 130)
        log.warning("job_aborted", stage=meter.failed_stage, frame=stats.frames,
                    reason=str(exc) or "interrupted", exit_code=code)
    else:
        code = exc.exit_code if isinstance(exc, KeyerError) else 1
        log.error("job_failed", stage=meter.failed_stage, frame=stats.frames,
                  error=str(exc) or type(exc).__name__, exit_code=code)
