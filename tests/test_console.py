"""What a person at a terminal sees: one line saying what is made, a progress bar, and one last
line (``keyer: wrote ...`` or ``keyer: error: ...``) said once; the events stay in the log."""
from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys

from keyer.logs import brief
from tests.conftest import ROOT

# Runs keyer's real entry point with the sink's write failing as on a full disk, after the job
# has started (the failure the console used to bury under a wall of events).
DISK_FULL = """
import errno, sys
import keyer.encode as E
def full(self, frame):
    raise OSError(errno.ENOSPC, "No space left on device")
E.VideoSink.write = full
from keyer.cli import main
main(sys.argv[1:])
"""


def run_on_terminal(*args: str, code: str | None = None) -> tuple[int, list[str]]:
    """Run keyer with stderr on a pseudo-terminal; return its exit code and the lines a person
    would see there (carriage-return redraws resolved to what stays on screen)."""
    master, slave = pty.openpty()
    cmd = [sys.executable, "-c", code, *map(str, args)] if code else \
        [sys.executable, "-m", "keyer", *map(str, args)]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    os.close(slave)
    raw = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:   # EIO: the other side closed
            break
        if not chunk:
            break
        raw += chunk
    os.close(master)
    code_ = proc.wait(timeout=120)
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", raw.decode("utf-8", "replace"))
    lines = [line.split("\r")[-1] for line in text.replace("\r\n", "\n").split("\n")]
    return code_, [line for line in lines if line.strip()]


def test_failing_job_on_a_terminal_says_the_error_once(tmp_path, green_clip):
    log = tmp_path / "job.jsonl"
    code, lines = run_on_terminal("run", green_clip, "-o", tmp_path / "o.webm", "--log-file", log,
                                  code=DISK_FULL)
    assert code == 4, lines
    assert [line for line in lines if "No space left" in line] == \
        [f"keyer: error: {tmp_path / 'o.webm'}: write failed (No space left on device)"]
    assert lines[0].startswith(f"keyer: {green_clip} -> {tmp_path / 'o.webm'} (.webm 64x48, 12 frames")
    assert len(lines) == 2, lines   # the start line and the error: it failed before the bar
    assert not any("job_start" in line or "job_failed" in line for line in lines)
    assert list(tmp_path.iterdir()) == [log]          # nothing published, no temporary left
    events = [json.loads(line)["event"] for line in log.read_text().splitlines()]
    assert events[0] == "job_start" and events[-1] == "job_failed"   # the log keeps everything


def test_job_on_a_terminal_is_three_lines_and_verbose_shows_the_events(tmp_path, green_clip):
    out = tmp_path / "o.webm"
    code, lines = run_on_terminal("run", green_clip, "-o", out, "--effects", "outline",
                                  "--posterize-time", "12")
    assert code == 0, lines
    assert lines[0] == (f"keyer: {green_clip} -> {out} (.webm 64x48, 12 frames, 24 fps, "
                        "effects outline, posterized to 12 fps)")
    assert re.fullmatch(rf"keyer: wrote {re.escape(str(out))} \(6 frames from 12, [\d.]+ fps; "
                        r"peak RSS \d+ MB.*\)", lines[-1]), lines[-1]
    assert len(lines) == 3 and re.fullmatch(r"\[#{30}\] 12/12 frames +[\d.]+ fps ETA +0s", lines[1]), lines
    code, lines = run_on_terminal("run", green_clip, "-o", out, "-y", "-v")
    assert code == 0
    shown = " ".join(lines)
    assert all(name in shown for name in ("job_start", "stage_start", "stage_end", "job_end"))


def test_brief_lines():
    assert brief({"event": "job_end", "level": "info"}) is None
    assert brief({"event": "job_failed", "level": "error", "error": "x"}) is None
    assert brief({"event": "stage_start", "level": "info", "stage": "key"}) is None
    assert brief({"event": "fit", "level": "info", "from_size": [4000, 3000],
                  "to_size": [2000, 1500]}) == "keyer: scaling 4000x3000 down to 2000x1500 (--fit)"
    assert brief({"event": "memory_warning", "level": "warning", "stage": "encode", "frame": 7,
                  "budget_mb": 500.0, "share": 0.851}) == \
        "keyer: warning: RSS at 85% of the 500 MB budget (encode, frame 7)"
    assert brief({"event": "compile", "level": "info", "kernels": 9, "elapsed_s": 12.34}) == \
        "keyer: compiled 9 kernels in 12.3 s (a cold cache; `keyer warm` does this once, ahead of jobs)"


def test_report_html_without_plotly_names_the_extra(tmp_path, green_clip):
    log = tmp_path / "job.jsonl"
    proc = subprocess.run([sys.executable, "-m", "keyer", "run", green_clip, "-o", tmp_path / "o.webm",
                           "-q", "--log-file", log], env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0
    no_plotly = "import sys; sys.modules['plotly'] = None\nfrom keyer.cli import main; main(sys.argv[1:])"
    proc = subprocess.run([sys.executable, "-c", no_plotly, "report", str(log), "--html",
                           str(tmp_path / "r.html")], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == ("keyer: error: --html needs plotly, which a plain install leaves out: "
                           "pip install 'keyer[report]'\n")
    assert not (tmp_path / "r.html").exists()
