"""``keyer run --for PLATFORM``: a sticker the platform accepts, at the best quality that fits.

    probe -> plan -> decode -> posterize -> key -> effects -> spool A (keyed once, lossless)
          -> union alpha box -> spool B (framed and scaled to the canvas, lossless)
          -> size search: encode attempts from spool B -> keyer check -> publish

The spools and the layout are ``keyer.spool``'s, the search ``keyer.stickersearch``'s; this
module runs them as one job.

1. **Key and style once.** The usual stages (``keyer.pipeline.Run``) key every frame and apply
   the effects once; each frame is cut to its own alpha box and written, zlib-compressed
   (lossless), to spool A on disk beside the output. A clip longer than the platform allows is
   cut at the limit here (``--too-long trim``, the default: the start of a take is what its
   author framed; ``speed`` plays it faster instead, ``error`` refuses it).
2. **Frame.** The union of the frames' alpha boxes (the effects' padding included: ``--pad`` is
   derived from the effects when not given) is scaled, aspect kept, to the largest size the
   canvas takes, and centred on it. Spool B holds each frame at that size (premultiplied
   resize, so edges get no dark fringe), again lossless on disk.
3. **Search.** Each attempt encodes spool B onto a constant grid of whole-millisecond frame
   times (``fps``; runs of one image merge into one longer frame) with one quality setting. A
   rate model ``ln(bytes) = a + b * x`` (``x``: VP9's crf, 100 - WebP quality, log2 of the
   APNG colour step) starts from a prior slope and is refitted on each attempt's bytes; the
   search aims at 95 % of the limit and stops in 90..100 %. Quality goes down first (to a
   floor), then the frame rate (not below 12), then, past the floor, quality again, then the
   resolution where the platform allows it (LINE). Every attempt is logged (``sticker_attempt``).
4. **Check, then publish.** The chosen file is read back by ``keyer.stickercheck`` with the
   same rules ``keyer check`` applies; a file that breaks one is never published.

Memory stays bounded by the frame size: one frame is decoded, keyed, spooled or encoded at a
time, and the spools are on disk. The spools (and every attempt but the published one) are
removed, whatever happens.
"""
from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

from keyer.errors import InputProblem, OutputProblem, UsageProblem
from keyer.frame import EMPTY, Box
from keyer.platforms import Profile, profile as get_profile
from keyer.spool import Layout, Spool, alpha_box, frame_spool, grid, union
from keyer.stickersearch import Attempt, Search

MAX_FPS = 30            # no platform shows stickers faster; the others are capped here too


# ---------------------------------------------------------------- the job
def sticker_output(job, prof: Profile) -> Path:
    """The output path, checked: the profile's extension, writable, not clobbered."""
    from keyer.encode import OutputTarget, _check_writable
    from keyer.formats import FORMATS

    path = Path(job.output)
    allowed = (prof.ext, ".apng") if prof.container == "apng" else (prof.ext,)
    if path.suffix.lower() not in allowed:
        raise UsageProblem(f"{path}: --for {prof.name} writes {prof.container.upper()} "
                           f"({' or '.join(allowed)}), not '{path.suffix or path.name}'")
    fmt = FORMATS[{"webm": ".webm", "webp": ".webp", "apng": ".apng"}[prof.container]]
    _check_writable(OutputTarget(path, fmt), Path(job.input), job.overwrite)
    return path


def effects_pad(effects) -> int:
    """Room the effects draw outside the subject: displacement, shadow and outline extents."""
    pad = 0.0
    for e in effects:
        name = getattr(e, "name", "")
        if name == "displacement":
            pad += max(getattr(e, "amount", 0), getattr(e, "amount_x", 0),
                       getattr(e, "amount_y", 0))
        elif name == "drop-shadow":
            pad += getattr(e, "distance", 0) + 2 * getattr(e, "softness", 0)
        elif name == "outline":
            pad += getattr(e, "width", 0) + getattr(e, "softness", 0)
    return int(math.ceil(pad)) + (2 if pad else 0)


def plan_layout(prof: Profile, box: Box, length: Fraction, too_long: str) -> Layout:
    """The canvas, the subject's place on it, the length and speed, for the union ``box`` of a
    clip of ``length`` seconds (after any trim)."""
    y0, y1, x0, x1 = box
    cw, ch, width, height = prof.fit(x1 - x0, y1 - y0)
    speed = Fraction(1)
    limit = Fraction(prof.max_seconds).limit_denominator(1000) if prof.max_seconds else None
    if limit is not None and length > limit and too_long == "speed":
        speed = length / limit
    shown = length / speed
    if limit is not None:
        shown = min(shown, limit)
    plays = 0
    if prof.whole_seconds:
        whole = max(int(prof.min_seconds), min(int(prof.max_seconds), math.floor(shown)))
        shown = Fraction(whole)
        plays = max(1, int(prof.max_plays_seconds // whole))
    length_ms = max(1, math.floor(shown * 1000))
    return Layout((width, height), (cw, ch), ((width - cw) // 2, (height - ch) // 2), length_ms,
                  speed, plays)


def run_sticker(job, log, progress=None, info=None):
    """``keyer run --for``: key and style once, frame, search the size, check, publish."""
    from keyer import logs
    from keyer.pipeline import Meter, Run
    from keyer.plan import Plan
    from keyer.probe import probe

    prof = get_profile(job.platform)
    log = (log or logs.get_logger())
    t0 = time.perf_counter()
    final = sticker_output(job, prof)
    if job.extras:
        from keyer.stickerextras import check_extras

        check_extras(final, prof, job.overwrite)
    info = info or probe(job.input)
    declared = max((d for d in (info.declared_duration, info.duration) if d), default=None)
    limit_s = prof.max_seconds
    if job.too_long == "error" and limit_s and declared and declared > limit_s + 1e-3:
        raise InputProblem(f"{job.input}: {declared:.2f} s is longer than {prof.name}'s "
                           f"{limit_s:g} s (--too-long trim or speed fit it)")
    pad = job.pad if job.pad or not job.effects else min(2000, effects_pad(job.effects))
    work = Path(tempfile.mkdtemp(prefix=f".{final.stem}.keyer-sticker-", dir=final.parent))
    try:
        keyed_job = replace(job, output=str(work / "frames") + os.sep, platform=None, pad=pad)
        meter = Meter(log, t0)
        plan = Plan.make(keyed_job, info, log)
        log.info("job_start", **{**plan.describe(), "output": str(final),
                                 "format": f"{prof.name} ({prof.container})"})
        width, height = plan.out_size
        keyed = Spool(work / "keyed.spool", info.time_base, (width, height))
        box, frames_in = EMPTY, 0
        with Run(plan, meter, progress) as run:
            run.warm_up()
            frames = run.process(run.decode())
            first = None
            cut = (Fraction(limit_s).limit_denominator(1000) / info.time_base
                   if limit_s and job.too_long == "trim" else None)
            try:
                for frame in frames:
                    frames_in += 1
                    if first is None:
                        first = frame.pts
                        run.first_out.set()
                    start = frame.pts - first
                    if cut is not None and start >= cut:
                        break
                    duration = frame.duration
                    if cut is not None and start + duration > cut:
                        duration = int(cut - start)
                    fbox = alpha_box(frame.rgba, frame.extent)
                    y0, y1, x0, x1 = fbox
                    keyed.write(start, duration, fbox, frame.rgba[y0:y1, x0:x1])
                    box = union(box, fbox)
                    run._encoded(frames_in)
                    if job.too_long == "error" and limit_s and \
                            (start + duration) * info.time_base > limit_s + 1e-3:
                        raise InputProblem(f"{job.input}: longer than {prof.name}'s {limit_s:g} s "
                                           "(--too-long trim or speed fit it)")
            finally:
                run.first_out.set()
                frames.close()
                if run.effects is not None:
                    run.effects.close()
                keyed.close()
                done = getattr(progress, "done", None)
                if done:
                    done()
        return _fit(job, prof, log, t0, final, info, plan, run, keyed, box, frames_in, work,
                    pad)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _fit(job, prof, log, t0, final, info, plan, run, keyed, box, frames_in, work, pad):
    """After keying: frame, search, check, publish (a failure here is logged as the keying's
    is, by ``Run``)."""
    try:
        return _fit_unlogged(job, prof, log, t0, final, info, plan, run, keyed, box, frames_in,
                             work, pad)
    except BaseException as exc:
        from keyer.errors import KeyerError

        code = exc.exit_code if isinstance(exc, KeyerError) else 130 \
            if isinstance(exc, KeyboardInterrupt) else 1
        log.error("job_failed", stage="sticker", frame=frames_in,
                  error=str(exc) or type(exc).__name__, exit_code=code)
        raise


def _fit_unlogged(job, prof, log, t0, final, info, plan, run, keyed, box, frames_in, work, pad):
    from keyer.files import publish
    from keyer.memory import peak_rss_mb
    from keyer.pipeline import Result
    from keyer.stickercheck import check

    if box == EMPTY or keyed.count == 0:
        raise InputProblem(f"{job.input}: nothing is left after keying (every frame is "
                           "transparent); check --key and --similarity")
    length = keyed.end * info.time_base
    layout = plan_layout(prof, box, length, job.too_long)
    spool = frame_spool(keyed, layout, box, work)
    (work / "keyed.spool").unlink()
    # the clip's own rate, as the sticker shows it (faster with --too-long speed)
    src_fps = keyed.count / float(length) * float(layout.speed) if length else MAX_FPS
    fps0 = min(src_fps, prof.max_fps or MAX_FPS, MAX_FPS)
    if prof.frames:   # LINE: 5..20 frames in all
        seconds = layout.length_ms / 1000
        fps0 = min(max(fps0, prof.frames[0] / seconds), prof.frames[1] / seconds)
    log.info("sticker_plan", platform=prof.name, container=prof.container,
             subject_box=list(box), pad=pad, canvas=list(layout.canvas),
             content=list(layout.content), offset=list(layout.offset),
             scale=round(layout.content[0] / max(1, box[3] - box[2]), 4),
             source_s=round(float(length), 4), length_s=layout.length_ms / 1000,
             too_long=job.too_long, speed=round(float(layout.speed), 4),
             fps=round(fps0, 3), plays=layout.plays, limit_bytes=prof.limit_bytes,
             spool_bytes=spool.bytes, frames_spooled=spool.count)
    prior = None
    if prof.codec == "apng":
        # lossless APNG packs about like the spool's own zlib: a first guess that spares
        # an encode at a quality far from the one that fits
        frames = len(grid(layout.length_ms, fps0)) - 1
        prior = Attempt(0.0, fps0, 1.0, int(0.8 * spool.bytes * frames / spool.count),
                        None)
    search = Search(spool, layout, prof, work, log, job.encode.threads or 0, prior)
    chosen = search.run(fps0)
    problems = check(chosen.path, prof)
    if problems:
        raise OutputProblem(f"{final}: keyer's own check failed, not published: "
                            + "; ".join(problems))
    log.info("sticker_chosen", attempt=search.attempts.index(chosen) + 1,
             encodes=len(search.attempts), knob=search.knob.name,
             value=search.knob.value(chosen.x), fps=round(chosen.fps, 3),
             scale=chosen.scale, bytes=chosen.bytes, share=round(chosen.bytes / prof.limit_bytes, 4))
    if final.exists() and not job.overwrite:
        raise OutputProblem(f"{final}: appeared while keyer was running; not replaced")
    out = publish(chosen.path, final)
    if job.extras:
        from keyer.stickerextras import write_extras

        write_extras(spool, layout, prof, final, job.overwrite, log, work)
    elapsed = time.perf_counter() - t0
    result = Result(out, frames_in, keyed.count, elapsed, run.stats.damaged_packets,
                    run.stats.dropped_frames, peak_rss_mb(), plan.estimate_mb)
    log.info("job_end", frames=frames_in, frames_out=keyed.count,
             elapsed_s=round(elapsed, 4), fps=round(result.fps, 3),
             damaged_packets=run.stats.damaged_packets,
             dropped_frames=run.stats.dropped_frames, kernels_compiled=0,
             encodes=len(search.attempts), bytes=chosen.bytes)
    return result
