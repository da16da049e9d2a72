"""Shared fixtures: tiny clips made on the fly, and a way to run the real CLI."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="session")
def green_clip(clip_dir) -> Path:
    """12 frames of 64x48 green-screen footage at 24 fps."""
    from tests.clips import make_clip

    return make_clip(clip_dir / "green.mp4", 12, width=64, height=48, fps=24)


@pytest.fixture(scope="session")
def audio_clip(clip_dir) -> Path:
    from tests.clips import make_clip

    return make_clip(clip_dir / "audio.mp4", 12, width=64, height=48, fps=24, audio=True)


def run_cli(*args: str, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    """Run ``keyer`` as a user would: a real process, its exit code and both streams."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "keyer", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env, **kwargs)


# ---------------------------------------------------------------- a cold cache, warmed beside the suite
# On an empty kernel cache, a first job compiles its kernels and `keyer warm` compiles the rest
# (~2 min of one core in all). tests/test_warm.py checks both (marked cold: `make test-cold`);
# started as soon as the tests are collected, the work runs beside any other tests selected.
COLD_SCRIPT = """
import subprocess, sys
from pathlib import Path
from tests.clips import make_clip
work = Path(sys.argv[1])
clip = make_clip(work / "clip.mp4", 6, width=64, height=48)
keyer = [sys.executable, "-m", "keyer"]
subprocess.run(keyer + ["run", str(clip), "-o", str(work / "first.webm"), "-q",
                        "--log-file", str(work / "first.jsonl")], check=True)
subprocess.run(keyer + ["warm"], check=True)
"""


@pytest.hookimpl(trylast=True)   # after -m has deselected: only when the cold tests run
def pytest_collection_modifyitems(session, config, items):
    import tempfile

    if not any(item.path.name == "test_warm.py" for item in items):
        return
    work = Path(tempfile.mkdtemp(prefix="keyer-cold-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KEYER_CACHE_DIR": str(work / "cache")}
    env.pop("NUMBA_CACHE_DIR", None)
    config.keyer_cold = (work, subprocess.Popen(
        [sys.executable, "-c", COLD_SCRIPT, str(work)], env=env, cwd=ROOT, text=True,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE))


def pytest_unconfigure(config):
    import shutil

    cold = getattr(config, "keyer_cold", None)
    if cold is not None:
        work, proc = cold
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def cold_cache(request):
    """(work folder, the finished cold run's stderr): a first job and then `keyer warm`, on a
    kernel cache that was empty (``work / "cache"``)."""
    work, proc = request.config.keyer_cold
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err
    return work, err
