"""The plan: everything a job will do, decided once, before anything is decoded.

``Plan.make(job, info, log)`` checks the output, the limits and the memory budget (scaling down
with ``--fit``, else refusing with the size that would fit), and chooses the thread plan, the
key path and the stages. The runner (``keyer.pipeline``) only carries it out.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable

from keyer.budget import estimate_peak_mb, largest_fitting, scale_to_megapixels
from keyer.encode import OutputTarget, background_planes, resolve_output
from keyer.errors import InputProblem, OverBudget
from keyer.frame import Geometry
from keyer.host import memory_limit_bytes
from keyer.memory import MB
from keyer.probe import StreamInfo, expected_frames
from keyer.settings import Job
from keyer.stages import EffectsStage, KeyStage, PlanarKeyStage, planar_key_fits, planar_output
from keyer.threads import ThreadPlan


class KeyPath(Enum):
    """How the key reads decoded pictures and what it writes."""

    PLANAR = "planar"             # 8-bit 4:2:0 planes, keyed at chroma resolution, straight
                                  # into the encoder's Y'CbCr(A) frames (key only, .webm/.mp4)
    PLANAR_RGBA = "planar-rgba"   # the same key, writing RGBA (effects, --pad, ProRes, PNG)
    RGBA = "rgba"                 # any other source: planes -> RGBA, then the per-pixel key

    @classmethod
    def choose(cls, job: Job, info: StreamInfo, coded_size: tuple[int, int],
               target: OutputTarget) -> "KeyPath":
        if not planar_key_fits(info, coded_size):
            return cls.RGBA
        fmt = target.format
        if fmt.codec is not None and planar_output(fmt.pix_fmt, job.effects, job.pad):
            return cls.PLANAR
        return cls.PLANAR_RGBA


@dataclass(frozen=True)
class Plan:
    """What the job will actually make, and how."""

    job: Job
    info: StreamInfo
    target: OutputTarget
    coded_size: tuple[int, int]      # size keyed at (coded orientation, after any --fit)
    out_size: tuple[int, int]        # upright, padded
    scaled: bool                     # --fit scaled the picture down
    estimate_mb: float               # the predicted peak RSS of a warm job
    budget_mb: float | None
    threads: ThreadPlan
    key_path: KeyPath
    frames_total: int | None         # expected source frames (None: unknown)

    @classmethod
    def make(cls, job: Job, info: StreamInfo, log: Any) -> "Plan":
        """Check the output, the limits and the budget; raise a KeyerError, with advice, for a
        job that cannot run as asked."""
        target = resolve_output(job.output, job.input, job.overwrite)
        fmt = target.format
        w, h = info.display_size
        size = None                  # the size --fit scales to, if it must
        if w * h > job.max_megapixels * 1e6:
            best = scale_to_megapixels(w, h, job.max_megapixels)
            if not job.fit or best is None:
                hint = f"; the largest allowed at this aspect ratio is {best[0]}x{best[1]}" if best else ""
                raise InputProblem(f"{info.path}: {w}x{h} is {w * h / 1e6:.1f} megapixels, over the "
                                   f"{job.max_megapixels:g} MP limit (--max-megapixels){hint}; "
                                   "--fit scales down to it")
            size = best
        # the longest any header claims; a stream running past the limit anyway is stopped by decode
        declared = max((d for d in (info.declared_duration, info.duration) if d), default=None)
        if job.max_duration is not None and declared is not None and declared > job.max_duration:
            raise InputProblem(f"{info.path}: its header declares {declared:.1f} s, longer than "
                               f"--max-duration {job.max_duration:g} s")
        budget = job.memory_budget or memory_limit_bytes()
        budget_mb = budget / MB if budget else None
        tw, th = size or (w, h)
        n_fx, pad = len(job.effects), job.pad
        estimate = estimate_peak_mb(tw + 2 * pad, th + 2 * pad, fmt.name, n_fx)
        if budget_mb and estimate > budget_mb:
            best = largest_fitting(tw, th, fmt.name, n_fx, budget_mb)
            if not job.fit or best is None:
                hint = (f"; the largest size that fits is {best[0]}x{best[1]} (--fit scales to it)"
                        if best else "; no size fits (raise --memory-budget)")
                raise OverBudget(f"{info.path}: estimated peak {estimate:.0f} MB at {tw}x{th} "
                                 f"exceeds the {budget_mb:.0f} MB memory budget{hint}")
            size = tw, th = best
            estimate = estimate_peak_mb(tw + 2 * pad, th + 2 * pad, fmt.name, n_fx)
        if size is not None:
            log.info("fit", from_size=[w, h], to_size=[tw, th])
        coded = (th, tw) if info.rotation % 180 else (tw, th)
        threads = ThreadPlan.for_job(fmt, job.encode.threads, job.encode.preset, bool(job.effects))
        return cls(job=job, info=info, target=target, coded_size=coded,
                   out_size=(tw + 2 * pad, th + 2 * pad), scaled=size is not None,
                   estimate_mb=round(estimate, 1), budget_mb=budget_mb, threads=threads,
                   key_path=KeyPath.choose(job, info, coded, target),
                   frames_total=expected_frames(info))

    @property
    def picture_bytes(self) -> int:
        """Bytes of one decoded picture (its samples, without row padding)."""
        import av

        info = self.info
        try:
            components = av.VideoFormat(info.pix_fmt, info.width, info.height).components
        except (ValueError, av.FFmpegError):      # a format PyAV does not know: as 4:2:0
            return info.width * info.height * 3 // 2
        return sum(c.width * c.height for c in components) * (2 if info.bit_depth > 8 else 1)

    @property
    def source_padded(self) -> bool:
        """Whether the key's input planes have padded rows (a strided layout): the decoder's
        pictures as the probe saw them, or the frames --fit scales them into."""
        if not self.scaled:
            return self.info.padded_rows
        import av

        from keyer.probe import padded_rows

        return padded_rows(av.VideoFrame(*self.coded_size, "yuv420p"))

    def describe(self) -> dict:
        """The ``job_start`` event's fields."""
        job, width, height = self.job, *self.out_size
        return dict(input=str(job.input), output=str(job.output), format=self.target.format.name,
                    width=width, height=height, fps=float(self.info.fps),
                    frames_total=self.frames_total, settings=job.summary(),
                    estimate_peak_mb=self.estimate_mb,
                    budget_mb=round(self.budget_mb, 1) if self.budget_mb else None,
                    threads=self.threads.summary())

    def key_stage(self, ring: int) -> KeyStage | PlanarKeyStage:
        """The key, as the key path says, writing into a ring of ``ring`` buffers."""
        job, info, fmt = self.job, self.info, self.target.format
        coded_w, coded_h = self.coded_size
        if self.key_path is KeyPath.PLANAR:
            width, height = self.out_size
            background = (background_planes(job.encode.background, width, height)
                          if fmt.flatten else None)
            return PlanarKeyStage(job.key, coded_w, coded_h, fmt.pix_fmt, background, ring=ring,
                                  rotation=info.rotation, scale=self.scaled)
        if self.key_path is KeyPath.PLANAR_RGBA:
            return PlanarKeyStage(job.key, coded_w, coded_h, None, ring=ring,
                                  rotation=info.rotation, pad=job.pad, scale=self.scaled)
        return KeyStage(job.key, info.width, info.height, info.rotation, job.pad, ring=ring,
                        scale_to=self.coded_size if self.scaled else None)

    def effects_stage(self, ring: int, convert: Callable | None = None) -> EffectsStage | None:
        """The effects, each bound once to the output canvas (None without effects), turning
        their results into the encoder's frames with ``convert`` if given."""
        if not self.job.effects:
            return None
        width, height = self.out_size
        geometry = Geometry(width=width, height=height, fps=float(self.info.fps or 30))
        ops = [e.bind(geometry) for e in self.job.effects]
        return EffectsStage(ops, width, height, ring, self.threads.opencv, convert)
