"""Reading logs back: summaries, growth, abnormal ends, memcheck, and the HTML dashboard."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from keyer import report
from keyer.memory import parse_size
from tests.conftest import run_cli


def event(job, name, pid=1, **fields):
    base = {"schema_version": 1, "timestamp": "2026-11-24T12:00:00Z", "level": "info",
            "event": name, "job_id": job, "pid": pid, "rss_mb": 100.0, "vms_mb": 900.0,
            "peak_rss_mb": 100.0, "peak_vms_mb": 900.0}
    base.update(fields)
    return json.dumps(base)


def job_lines(job, frames=200, leak_per_10=0.0, pid=1, end=True, stage="encode"):
    lines = [event(job, "job_start", pid, input="in.mp4", output="out.webm", format=".webm",
                   width=1280, height=720, fps=24.0, frames_total=frames, settings={},
                   estimate_peak_mb=120.0, budget_mb=None)]
    lines.append(event(job, "stage_start", pid, stage="decode", elapsed_s=0.1))
    lines.append(event(job, "stage_start", pid, stage=stage, elapsed_s=0.1))
    for f in range(10, frames + 1, 10):
        rss = 100.0 + leak_per_10 * f / 10
        lines.append(event(job, "frame_sample", pid, frame=f, frames_total=frames, fps=20.0,
                           stage=stage, gc_collected=0, gc_ms=0.5, rss_mb=rss, peak_rss_mb=rss))
    if end:
        lines.append(event(job, "stage_end", pid, stage=stage, elapsed_s=9.0, busy_s=8.0, frames=frames))
        lines.append(event(job, "job_end", pid, frames=frames, frames_out=frames, elapsed_s=10.0, fps=20.0))
    return lines


def write(tmp_path, lines, name="log.jsonl"):
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


def test_flat_job(tmp_path):
    (j,) = report.load([write(tmp_path, job_lines("a"))])
    assert j.status == "ok" and j.fps == 20.0 and j.frames == 200
    assert j.growth_per_100 == pytest.approx(0.0, abs=1e-9)
    assert j.gc_runs == 20 and j.gc_ms == pytest.approx(10.0)
    assert j.estimate_error_pct == pytest.approx(20.0)          # 120 predicted vs 100 measured
    assert j.job_peak_mb == pytest.approx(0.0)                  # nothing above its start


def test_leak_is_measured_per_100_frames(tmp_path):
    (j,) = report.load([write(tmp_path, job_lines("b", leak_per_10=1.0))])
    assert j.growth_per_100 == pytest.approx(10.0, rel=1e-6)
    assert j.job_peak_mb == pytest.approx(20.0)                 # 200 frames at 1 MB per 10
    fails = report.memcheck([j], None, parse_size("2M"))
    assert fails == ["job b: RSS grows 10.00 MB per 100 frames, over --max-growth 2.0 MB"]


def test_two_jobs_interleaved_from_two_processes_and_a_torn_line(tmp_path):
    a, b = job_lines("a", pid=1), job_lines("b", pid=2, leak_per_10=0.5)
    mixed = [x for pair in zip(a, b) for x in pair] + a[len(b):] + b[len(a):]
    mixed.append('{"event": "frame_sample", "job_id": "a", "rss')       # SIGKILL mid-write
    jobs = {j.job_id: j for j in report.load([write(tmp_path, mixed)])}
    assert set(jobs) == {"a", "b"} and jobs["a"].pid == 1 and jobs["b"].pid == 2
    assert jobs["b"].growth_per_100 == pytest.approx(5.0)


def test_killed_job_is_diagnosable(tmp_path):
    lines = job_lines("k", frames=820, end=False)
    lines[-1] = lines[-1].replace('"rss_mb": 182.0', '"rss_mb": 1740.0')
    (j,) = report.load([write(tmp_path, lines)])
    assert j.status == "ended abnormally"
    assert j.abnormal_line().startswith("ended abnormally during encode at frame 820, RSS")
    text = report.render_text([j])
    assert "ended abnormally during encode at frame 820" in text
    assert report.memcheck([j], None, None) == [f"job k: {j.abnormal_line()}"]


def test_memcheck_peak(tmp_path):
    jobs = report.load([write(tmp_path, job_lines("p"))])
    assert report.memcheck(jobs, parse_size("400M"), parse_size("2M")) == []
    assert report.memcheck(jobs, parse_size("50M"), None) == [
        "job p: peak RSS 100.0 MB exceeds --max-peak 50 MB"]
    assert report.memcheck([], None, None) == ["no keyer jobs in the log"]


def test_cli_report_and_memcheck(tmp_path):
    log = write(tmp_path, job_lines("c", leak_per_10=1.0))
    proc = run_cli("report", log)
    assert proc.returncode == 0 and "+10.00 MB per 100 frames" in proc.stdout
    proc = run_cli("memcheck", log, "--max-peak", "400M", "--max-growth", "2M")
    assert proc.returncode == 1 and "grows 10.00 MB per 100 frames" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert run_cli("memcheck", log, "--max-growth", "20M").returncode == 0
    assert run_cli("report", tmp_path / "missing.jsonl").returncode == 3


def test_real_job_log_reports(tmp_path, green_clip):
    log = tmp_path / "real.jsonl"
    assert run_cli("run", green_clip, "-o", tmp_path / "o.webm", "--log-file", log, "--gc-every", "2").returncode == 0
    (j,) = report.load([log])
    assert j.status == "ok" and j.frames == 12 and len(j.samples) == 6
    assert {"decode", "key", "encode"} <= set(j.stage_rss)
    assert j.estimate_mb and j.peak_rss_mb > 50


def owners_lines(job, samples=5):
    """memory_owners events, one a second, as keyer.ledger logs them."""
    owners = {"libraries": 120.0, "interpreter": 50.0, "kernels": 13.0, "stages": 40.0,
              "frames": 8.0, "decoder": 6.0, "encoder": 100.0, "unattributed": 0.0}
    return [event(job, "memory_owners", when="sample", frame=10 * k, owners=owners,
                  timestamp=f"2026-11-24T12:00:0{k}Z", rss_mb=337.0, anon_mb=217.0, file_mb=120.0,
                  stage_bytes={"key": 20 << 20, "effects": 20 << 20})
            for k in range(1, samples + 1)]


def test_html_is_self_contained_and_renders(tmp_path):
    log = write(tmp_path, job_lines("h", leak_per_10=0.2) + owners_lines("h"))
    out = tmp_path / "report.html"
    old = os.umask(0o027)
    try:
        report.write_html(report.load([log]), out)
    finally:
        os.umask(old)
    html = out.read_text()
    assert out.stat().st_mode & 0o777 == 0o640        # a new file's mode, not mkstemp's 0600
    import re

    assert not re.search(r"<script[^>]*\ssrc=", html)                # nothing fetched
    assert not re.search(r"<link[^>]*\shref=\"http", html)
    assert "keyer-chart" in html and len(html) > 1_000_000         # plotly.js inlined
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("chromium not installed: cannot check that the chart renders "
                    "(`make test` installs Debian's chromium where it can)")
    proc = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom",
         out.as_uri()], capture_output=True, text=True, timeout=120)
    assert "main-svg" in proc.stdout, proc.stderr[-2000:]
    assert "Memory by owner over time" in proc.stdout and "Stages over time" in proc.stdout
    assert proc.stdout.count('class="js-fill"') >= 8        # a stacked area per owner, drawn
    assert "Peak RSS per stage" not in proc.stdout


@pytest.mark.parametrize("output, effects", [
    ("o.webm", []), ("o.mp4", []), ("o.mov", ["--effects", "all"]), ("frames/", ["--effects", "outline"]),
])
def test_the_ledger_sums_to_the_rss_on_real_jobs(tmp_path, green_clip, output, effects):
    log = tmp_path / "real.jsonl"
    proc = run_cli("run", green_clip, "-o", tmp_path / output, "--log-file", log, "--gc-every", "2",
                   *effects)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    ledger = [e for e in lines if e["event"] == "memory_owners"]
    assert [e["when"] for e in ledger] == ["start"] + ["sample"] * 6 + ["end"]
    for e in ledger:
        assert sum(e["owners"].values()) == pytest.approx(e["rss_mb"], rel=0.05, abs=1.0)
        assert e["anon_mb"] + e["file_mb"] == pytest.approx(e["rss_mb"], abs=1.0)
    assert set(ledger[0]["libraries_mb"]) and set(ledger[-1]["libraries_mb"])
    # within the first SETTLE_FRAMES the encoder's part takes whatever still grows (libx264's
    # look-ahead fills for ~40 frames): unattributed stays 0 and the encoder's part never shrinks
    samples = [e["owners"] for e in ledger if e["when"] == "sample"]
    assert max(o["unattributed"] for o in samples) == 0.0   # (below 0 where memory was freed)
    assert [o["encoder"] for o in samples] == sorted(o["encoder"] for o in samples)
    held = ledger[-1]["stage_bytes"]
    assert held["key"] > 0 and (("effects" in held) == bool(effects))
    (j,) = report.load([log])
    assert j.owners and "memory owners" in report.render_text([j])


def test_owned_bytes_counts_each_buffer_once():
    import numpy as np

    from keyer.memory import owned_bytes
    from keyer.stages import Ring

    ring = Ring(5, 48, 64)
    assert owned_bytes(ring) == 5 * 48 * 64 * 4
    ring.views = [b[:, :10] for b in ring.buffers] + [ring.buffers[0].T]   # views add nothing
    ring.extra = {"lut": np.zeros(256, np.float32)}
    assert owned_bytes(ring) == 5 * 48 * 64 * 4 + 1024


def test_memcheck_gates_private_and_unattributed_memory(tmp_path):
    lines = job_lines("p") + owners_lines("p")
    lines.append(event("p", "memory_owners", when="sample", frame=60, rss_mb=350.0, anon_mb=230.0,
                       owners={"encoder": 100.0, "unattributed": 13.0}))
    (j,) = report.load([write(tmp_path, lines)])
    assert report.memcheck([j], None, None, parse_size("250M"), parse_size("16M")) == []
    assert report.memcheck([j], None, None, parse_size("200M"), parse_size("8M")) == [
        "job p: peak private memory 230.0 MB exceeds --max-private 200 MB",
        "job p: 13.0 MB of private memory unattributed, over --max-unattributed 8.0 MB"]


def test_peak_rss_is_the_process_own_not_its_parents():
    """ru_maxrss survives execve: a job started by a big parent would log the parent's peak."""
    import sys

    import numpy as np

    from tests.conftest import ROOT

    ballast = np.ones(600 << 20, np.uint8)     # this process now peaks above 600 MB
    code = "from keyer.memory import peak_rss_mb; print(peak_rss_mb())"
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           cwd=ROOT, check=True)
    del ballast
    assert float(child.stdout) < 300, child.stdout


def test_unattributed_growth_is_judged_on_the_second_half_of_a_job():
    """A leak keeps growing; an encoder that settles late steps once in the first half."""
    step = report.JobSummary(job_id="s")
    step.unattributed_samples = [(f, 0.0 if f < 250 else 5.0) for f in range(10, 961, 10)]
    leak = report.JobSummary(job_id="l")
    leak.unattributed_samples = [(f, f / 100) for f in range(10, 961, 10)]
    assert step.unattributed_late_growth_mb == 0.0
    assert leak.unattributed_late_growth_mb == pytest.approx(9.6 - 4.8)
    assert report.JobSummary(job_id="n").unattributed_late_growth_mb is None
