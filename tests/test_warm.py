"""A cold kernel cache: the first job says it compiled (and how long and how much it took), and
`keyer warm` fills the cache so that jobs after it compile nothing, whatever their path."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from keyer import report
from tests.clips import make_clip
from tests.conftest import ROOT

pytestmark = pytest.mark.cold


def events(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_job_on_a_cold_cache_logs_its_compilation(cold_cache):
    work, _ = cold_cache
    log = events(work / "first.jsonl")
    (compile_,) = [e for e in log if e["event"] == "compile"]
    assert compile_["kernels"] > 0 and compile_["elapsed_s"] > 0 and compile_["rss_added_mb"] > 0
    (end,) = [e for e in log if e["event"] == "job_end"]
    assert end["kernels_compiled"] >= compile_["kernels"]
    (job,) = report.load([work / "first.jsonl"])
    assert job.kernels_compiled and job.estimate_error_pct is None   # not compared with the estimate
    assert "not compared: the job compiled" in report.render_text([job])


@pytest.mark.parametrize("make, output, effects", [
    (dict(width=64, height=48), "o.webm", ""),                    # planar key -> encoder frames
    (dict(width=100, height=76), "o.mp4", ""),                    # padded rows, flattened
    (dict(width=64, height=48), "o.webm", "all"),                 # planar key -> RGBA -> effects
    (dict(width=98, height=74, rotation=90), "o.mov", "outline"),  # rotated, ProRes
    (dict(width=65, height=49, pix_fmt="yuv444p"), "frames/", ""),  # RGBA key path, PNGs
])
def test_after_keyer_warm_jobs_compile_nothing(cold_cache, tmp_path, make, output, effects):
    work, err = cold_cache
    assert re.search(r"keyer: kernels ready in [\d.]+ s \(\d+ compiled", err), err
    src = make_clip(tmp_path / "src.mp4", 4, **make)
    log = tmp_path / "job.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KEYER_CACHE_DIR": str(work / "cache")}
    env.pop("NUMBA_CACHE_DIR", None)
    proc = subprocess.run([sys.executable, "-m", "keyer", "run", src, "-o", tmp_path / output, "-q",
                           "--log-file", log, *(["--effects", effects] if effects else [])],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    log = events(log)
    assert not [e for e in log if e["event"] == "compile"]
    assert [e["kernels_compiled"] for e in log if e["event"] == "job_end"] == [0]
