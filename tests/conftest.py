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
