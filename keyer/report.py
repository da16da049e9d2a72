"""Read keyer's JSON logs back: per-job memory summaries, a text report, an offline HTML
dashboard (plotly), and the ``memcheck`` gate for CI.

Growth per 100 frames is the least-squares slope of ``rss_mb`` over the ``frame_sample`` events'
frame index, times 100, skipping the first 20 % of samples (at least 2): start-up allocation
(encoder look-ahead, first buffers) is not a leak.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from keyer.errors import InputProblem, UsageProblem
from keyer.files import publish

MB = 1024 * 1024
STAGES = ("decode", "posterize", "key", "effects", "encode", "cleanup")


@dataclass
class JobSummary:
    job_id: str
    pid: int | None = None
    input: str | None = None
    output: str | None = None
    format: str | None = None
    size: tuple[int, int] | None = None
    status: str = "ended abnormally"
    frames: int | None = None
    frames_total: int | None = None
    elapsed_s: float | None = None
    fps: float | None = None
    peak_rss_mb: float = 0.0
    peak_vms_mb: float = 0.0
    start_rss_mb: float | None = None                 # RSS when the job started
    peak_anon_mb: float | None = None                 # highest anonymous RSS seen at any event
    stage_rss: dict = field(default_factory=dict)
    stage_vms: dict = field(default_factory=dict)
    samples: list = field(default_factory=list)       # (frame, rss, vms, stage)
    stage_marks: list = field(default_factory=list)   # (frame, event, stage)
    gc_ms: float = 0.0
    gc_runs: int = 0
    estimate_mb: float | None = None
    kernels_compiled: int = 0                         # a cold cache: the compiler's memory is in the peak
    owners: dict = field(default_factory=dict)        # memory_owners at the sample of highest RSS
    owners_rss_mb: float = 0.0
    owners_over_time: list = field(default_factory=list)   # (elapsed s, owners)
    unattributed_max_mb: float | None = None          # the most private memory no owner explains
    unattributed_samples: list = field(default_factory=list)   # (frame, MB) at each sample
    stage_bytes: dict = field(default_factory=dict)
    libraries: dict = field(default_factory=dict)     # resident MB per library file, at the end
    stage_spans: list = field(default_factory=list)   # (stage, start s, end s)
    t0: float | None = None                           # job_start's time (epoch seconds)
    budget_mb: float | None = None
    warnings: list = field(default_factory=list)
    error: str | None = None
    last_stage: str | None = None
    last_frame: int = 0
    last_rss_mb: float = 0.0

    @property
    def growth_per_100(self) -> float | None:
        """RSS growth in MB per 100 frames (slope of a least-squares fit), None if too few."""
        pts = [(f, r) for f, r, _, _ in self.samples]
        skip = max(2, len(pts) // 5)
        pts = pts[skip:]
        if len(pts) < 3:
            return None
        n = len(pts)
        mx = sum(f for f, _ in pts) / n
        my = sum(r for _, r in pts) / n
        sxx = sum((f - mx) ** 2 for f, _ in pts)
        if sxx == 0:
            return None
        return 100 * sum((f - mx) * (r - my) for f, r in pts) / sxx

    @property
    def job_peak_mb(self) -> float | None:
        """Peak RSS above the process's RSS at job start: what the job itself needed. Unlike
        the absolute peak it does not depend on how much of the libraries' files the page cache
        happens to map (a freshly installed venv maps far more)."""
        if self.start_rss_mb is None:
            return None
        return self.peak_rss_mb - self.start_rss_mb

    @property
    def unattributed_late_growth_mb(self) -> float | None:
        """How much more unattributed memory the second half of the job held than the first
        (the most of each): a leak, or a heap that fragments, keeps growing; a part that settles
        steps once, early, and is not counted again."""
        if len(self.unattributed_samples) < 4:
            return None
        last = max(f for f, _ in self.unattributed_samples)
        first = [u for f, u in self.unattributed_samples if f <= last / 2]
        second = [u for f, u in self.unattributed_samples if f > last / 2]
        return max(second) - max(first) if first and second else None

    @property
    def estimate_error_pct(self) -> float | None:
        """How far the estimate (of a warm job) was from the measured peak; None for a job that
        compiled kernels, whose peak holds the compiler's memory too."""
        if not self.estimate_mb or not self.peak_rss_mb or self.kernels_compiled:
            return None
        return 100 * (self.estimate_mb - self.peak_rss_mb) / self.peak_rss_mb

    def abnormal_line(self) -> str | None:
        if self.status != "ended abnormally":
            return None
        where = f"during {self.last_stage}" if self.last_stage else "before any stage"
        return f"ended abnormally {where} at frame {self.last_frame}, RSS {_size(self.last_rss_mb)}"


def _size(mb: float) -> str:
    return f"{mb / 1024:.1f} GB" if mb >= 1024 else f"{mb:.0f} MB"


def _lines(paths: Iterable[str | Path]) -> Iterable[str]:
    for p in paths:
        if str(p) == "-":
            yield from sys.stdin
            continue
        try:
            with open(p, encoding="utf-8", errors="replace") as fh:
                yield from fh
        except FileNotFoundError:
            raise InputProblem(f"{p}: no such log file") from None
        except IsADirectoryError:
            raise InputProblem(f"{p}: is a directory, not a log file") from None
        except OSError as exc:
            raise InputProblem(f"{p}: cannot read ({exc.strerror})") from None


def load(paths: list[str | Path]) -> list[JobSummary]:
    """Parse logs (several files, several jobs and processes, truncated lines) into jobs."""
    jobs: dict[str, JobSummary] = {}
    for line in _lines(paths):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            e = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(e, dict) or "event" not in e or "job_id" not in e:
            continue
        _apply(jobs.setdefault(e["job_id"], JobSummary(e["job_id"])), e)
    return list(jobs.values())


def _apply(j: JobSummary, e: dict) -> None:
    ev = e["event"]
    rss, vms = float(e.get("rss_mb") or 0), float(e.get("vms_mb") or 0)
    j.pid = j.pid or e.get("pid")
    j.peak_rss_mb = max(j.peak_rss_mb, float(e.get("peak_rss_mb") or 0), rss)
    j.peak_vms_mb = max(j.peak_vms_mb, float(e.get("peak_vms_mb") or 0), vms)
    j.last_rss_mb = rss or j.last_rss_mb
    if e.get("anon_mb") is not None:
        j.peak_anon_mb = max(j.peak_anon_mb or 0.0, float(e["anon_mb"]))
    stage = e.get("stage")
    if ev == "job_start":
        j.start_rss_mb = rss
        j.input, j.output, j.format = e.get("input"), e.get("output"), e.get("format")
        if e.get("width"):
            j.size = (e["width"], e["height"])
        j.frames_total = e.get("frames_total")
        j.estimate_mb, j.budget_mb = e.get("estimate_peak_mb"), e.get("budget_mb")
        j.t0 = _epoch(e)
    if ev in ("stage_start", "stage_end") and stage and e.get("elapsed_s") is not None:
        if ev == "stage_start":
            j.stage_spans.append([stage, float(e["elapsed_s"]), None])
        else:
            for span in reversed(j.stage_spans):
                if span[0] == stage and span[2] is None:
                    span[2] = float(e["elapsed_s"])
                    break
    if ev in ("stage_start", "stage_end") and stage:
        j.stage_marks.append((j.last_frame, ev, stage))
        if ev == "stage_start":
            j.last_stage = stage
        if ev == "stage_end" and e.get("frames") and stage in ("encode", "decode"):
            j.last_frame = max(j.last_frame, int(e["frames"]))
    elif ev == "frame_sample":
        frame = int(e.get("frame") or 0)
        j.samples.append((frame, rss, vms, stage or "encode"))
        j.last_frame = max(j.last_frame, frame)
        j.last_stage = stage or j.last_stage
        j.gc_ms += float(e.get("gc_ms") or 0)
        j.gc_runs += 1
    elif ev in ("memory_warning", "memory_critical"):
        j.warnings.append(f"{ev} during {stage} at frame {e.get('frame')} "
                          f"(RSS {rss:.0f} MB of {e.get('budget_mb')} MB)")
    elif ev == "memory_owners":
        owners = e.get("owners") or {}
        j.owners_over_time.append((_since(j, e), owners))
        if rss >= j.owners_rss_mb:
            j.owners, j.owners_rss_mb = owners, rss
        if e.get("when") in ("sample", "end") and "unattributed" in owners:
            j.unattributed_max_mb = max(j.unattributed_max_mb or 0.0, float(owners["unattributed"]))
            j.unattributed_samples.append((int(e.get("frame") or 0), float(owners["unattributed"])))
        j.stage_bytes = e.get("stage_bytes") or j.stage_bytes
        j.libraries = e.get("libraries_mb") or j.libraries
    elif ev == "compile":
        j.kernels_compiled = max(j.kernels_compiled, int(e.get("kernels") or 0))
    elif ev == "job_end":
        j.kernels_compiled = max(j.kernels_compiled, int(e.get("kernels_compiled") or 0))
        j.status = "ok"
        j.frames, j.elapsed_s, j.fps = e.get("frames"), e.get("elapsed_s"), e.get("fps")
    elif ev in ("job_failed", "job_aborted"):
        j.status = "failed" if ev == "job_failed" else "aborted"
        j.error = e.get("error") or e.get("reason")
        j.last_stage = stage or j.last_stage
        j.last_frame = int(e.get("frame") or j.last_frame)
    if stage in STAGES:
        j.stage_rss[stage] = max(j.stage_rss.get(stage, 0.0), rss)
        j.stage_vms[stage] = max(j.stage_vms.get(stage, 0.0), vms)


def _epoch(e: dict) -> float | None:
    """An event's timestamp (ISO 8601) in epoch seconds, None when absent or unreadable."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(e["timestamp"]).replace("Z", "+00:00")).timestamp()
    except (KeyError, ValueError):
        return None


def _since(j: JobSummary, e: dict) -> float:
    """Seconds from the job's start to event ``e`` (0 when either time is unknown)."""
    t = _epoch(e)
    return round(t - j.t0, 3) if t is not None and j.t0 is not None else 0.0


def render_text(jobs: list[JobSummary]) -> str:
    if not jobs:
        return "no keyer jobs found"
    out = []
    for j in jobs:
        size = f"{j.size[0]}x{j.size[1]}" if j.size else "?"
        out.append(f"job {j.job_id} (pid {j.pid}): {j.input} -> {j.output} [{j.format} {size}]")
        status = j.status if j.status != "ended abnormally" else j.abnormal_line()
        if j.status in ("failed", "aborted"):
            status += f" during {j.last_stage} at frame {j.last_frame}: {j.error}"
        out.append(f"  status        {status}")
        if j.fps is not None:
            out.append(f"  frames        {j.frames} in {j.elapsed_s:.2f} s ({j.fps:.1f} fps)")
        out.append(f"  peak RSS      {j.peak_rss_mb:.1f} MB   peak VMS {j.peak_vms_mb:.1f} MB"
                   + (f"   (job's own: {j.job_peak_mb:.1f} MB above its start)"
                      if j.job_peak_mb is not None else ""))
        g = j.growth_per_100
        out.append("  growth        " + (f"{g:+.2f} MB per 100 frames" if g is not None
                                         else "n/a (too few frame samples)"))
        out.append(f"  gc            {j.gc_runs} collections, {j.gc_ms:.1f} ms in all")
        if j.estimate_mb:
            err = j.estimate_error_pct
            if j.kernels_compiled:
                compare = (f", not compared: the job compiled {j.kernels_compiled} kernels and its "
                           "peak holds the compiler's memory (`keyer warm` once avoids it)")
            else:
                compare = f", {err:+.0f}% vs measured peak" if err is not None else ""
            out.append(f"  estimate      {j.estimate_mb:.0f} MB predicted for a warm job{compare}")
        if j.budget_mb:
            out.append(f"  budget        {j.budget_mb:.0f} MB")
        for w in j.warnings:
            out.append(f"  warning       {w}")
        if j.owners:
            out.append(f"  memory owners at the sample of highest RSS ({j.owners_rss_mb:.0f} MB; "
                       "keyer.ledger says how each is measured)")
            for name, mb in j.owners.items():
                out.append(f"    {name:<14}{mb:>8.1f} MB")
            for name, nbytes in sorted(j.stage_bytes.items(), key=lambda kv: -kv[1]):
                out.append(f"      {name:<20}{nbytes / MB:>8.1f} MB held")
            if j.unattributed_max_mb is not None:
                out.append(f"  unattributed  at most {j.unattributed_max_mb:.1f} MB over the job")
        if j.libraries:
            top = ", ".join(f"{k} {v:.0f}" for k, v in list(j.libraries.items())[:5])
            out.append(f"  libraries     resident MB at the end: {top}")
    return "\n".join(out)


def memcheck(jobs: list[JobSummary], max_peak: int | None, max_growth: int | None,
             max_private: int | None = None, max_unattributed: int | None = None) -> list[str]:
    """One-line reasons for every job that broke a limit (bytes in); empty = pass.
    ``max_private``: the peak private (anonymous) memory; ``max_unattributed``: the most
    private memory the ledger's owners do not explain."""
    if not jobs:
        return ["no keyer jobs in the log"]
    failures = []
    for j in jobs:
        if j.status == "ended abnormally":
            failures.append(f"job {j.job_id}: {j.abnormal_line()}")
        elif j.status != "ok":
            failures.append(f"job {j.job_id}: {j.status} during {j.last_stage} at frame {j.last_frame}")
        if max_peak is not None and j.peak_rss_mb * MB > max_peak:
            failures.append(f"job {j.job_id}: peak RSS {j.peak_rss_mb:.1f} MB exceeds --max-peak "
                            f"{max_peak / MB:.0f} MB")
        if max_private is not None and (j.peak_anon_mb or 0) * MB > max_private:
            failures.append(f"job {j.job_id}: peak private memory {j.peak_anon_mb:.1f} MB exceeds "
                            f"--max-private {max_private / MB:.0f} MB")
        if max_unattributed is not None:
            if j.unattributed_max_mb is None:
                failures.append(f"job {j.job_id}: no memory_owners samples to check "
                                "--max-unattributed against")
            elif j.unattributed_max_mb * MB > max_unattributed:
                failures.append(f"job {j.job_id}: {j.unattributed_max_mb:.1f} MB of private memory "
                                f"unattributed, over --max-unattributed {max_unattributed / MB:.1f} MB")
        g = j.growth_per_100
        if max_growth is not None and g is not None and g * MB > max_growth:
            failures.append(f"job {j.job_id}: RSS grows {g:.2f} MB per 100 frames, over "
                            f"--max-growth {max_growth / MB:.1f} MB")
    return failures


def require_plotly() -> None:
    """Raise a one-line UsageProblem naming the extra to install when plotly is missing."""
    try:
        import plotly  # noqa: F401
    except ImportError:
        raise UsageProblem("--html needs plotly, which a plain install leaves out: "
                           "pip install 'keyer[report]'") from None


def write_html(jobs: list[JobSummary], path: str | Path) -> None:
    """A self-contained dashboard (plotly.js inlined once; works offline), written atomically."""
    require_plotly()
    import plotly.graph_objects as go
    import plotly.io as pio
    from plotly.subplots import make_subplots

    parts = []
    for n, j in enumerate(jobs):
        fig = make_subplots(rows=2, cols=2, column_widths=[0.72, 0.28], row_heights=[0.7, 0.3],
                            specs=[[{}, {}], [{"colspan": 2}, None]], vertical_spacing=0.14,
                            subplot_titles=("Memory by owner over time (stacked)",
                                            "Private / shared at the peak", "Stages over time"))
        times = [t for t, _ in j.owners_over_time]
        names = list(j.owners) or (list(j.owners_over_time[0][1]) if j.owners_over_time else [])
        for name in names:      # one stacked area per owner: who holds what, when
            fig.add_trace(go.Scatter(x=times, y=[o.get(name, 0.0) for _, o in j.owners_over_time],
                                     name=name, mode="lines", stackgroup="owners",
                                     legendgroup="owners", meta="owners"), row=1, col=1)
        if j.budget_mb:
            for share, colour in ((1.0, "red"), (0.9, "orange"), (0.75, "gold")):
                fig.add_hline(y=j.budget_mb * share, line_color=colour, line_width=1,
                              annotation_text=f"{int(share * 100)}% budget", row=1, col=1)
        if j.owners:
            shared = j.owners.get("libraries", 0.0)
            fig.add_trace(go.Bar(x=["private", "shared"],
                                 y=[max(0.0, j.owners_rss_mb - shared), shared],
                                 name="private / shared MB", showlegend=False), row=1, col=2)
        for k, (stage, start, end) in enumerate(j.stage_spans):   # when each stage ran
            end = end if end is not None else (j.elapsed_s or start)
            fig.add_trace(go.Bar(x=[max(end - start, 1e-3)], y=[stage], base=[start],
                                 orientation="h", name=stage, showlegend=False,
                                 marker_color="#7f9fbf"), row=2, col=1)
        fig.update_layout(height=620, margin={"t": 60, "l": 60, "r": 20, "b": 40},
                          barmode="overlay")
        fig.update_xaxes(title_text="seconds since the job started", row=1, col=1)
        fig.update_xaxes(title_text="seconds since the job started", row=2, col=1)
        fig.update_yaxes(title_text="MB", row=1, col=1)
        div = pio.to_html(fig, full_html=False, include_plotlyjs="inline" if n == 0 else False,
                          div_id=f"keyer-chart-{n}")
        summary = render_text([j]).replace("&", "&amp;").replace("<", "&lt;")
        parts.append(f'<section><pre>{summary}</pre><div class="keyer-chart">{div}</div></section>')
    if not parts:
        parts.append("<p>no keyer jobs found</p>")
    html = ("<!doctype html><html><head><meta charset='utf-8'><title>keyer memory report</title>"
            "<style>body{font-family:sans-serif;margin:1em 2em} pre{background:#f4f4f4;padding:.5em}"
            "</style></head><body><h1>keyer memory report</h1>" + "".join(parts) + "</body></html>")
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(html)
        publish(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
