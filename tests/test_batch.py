"""keyer batch: the admission and retry policy as plain functions, the executor driven by a
stand-in job script (exits with a chosen code, sleeps, allocates, kills itself), and end to end
on small generated clips."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keyer.admission import (MARGIN_MB, Slot, admit, core_share, largest_estimate_mb, queue_order,
                             reservation_mb, verdict)
from keyer.batch_driver import Task, drive, run_args
from keyer.batch_local import LocalExecutor
from keyer.batch_manifest import Manifest, read_records
from tests.conftest import ROOT, run_cli

# ---------------------------------------------------------------- admission, as functions
S = Slot
COLD = 600   # s: a batch on an empty kernel cache runs `keyer warm` first (~2 min of one core)


def test_reservation_is_estimate_plus_margin_and_largest_estimate_inverts_it():
    assert reservation_mb(200.0) == 220 + MARGIN_MB
    assert reservation_mb(200.05) == 221 + MARGIN_MB       # whole MB, rounded up
    for budget in (300.0, 1000.0, 2048.0):
        e = largest_estimate_mb(budget)
        assert reservation_mb(e) <= budget < reservation_mb(e + 1)


def test_admit_never_exceeds_the_budget_and_backfills_a_smaller_job():
    waiting = [S("a", 600), S("b", 500), S("c", 300)]
    assert admit(waiting, [], 1000, 8) == [S("a", 600), S("c", 300)]   # b does not fit, c does
    assert admit(waiting, [S("x", 800)], 1000, 8) == []
    assert admit(waiting, [S("x", 400)], 1000, 8) == [S("a", 600)]


def test_admit_never_exceeds_the_job_count():
    waiting = [S(k, 10) for k in "abcd"]
    assert len(admit(waiting, [], 1000, 3)) == 3
    assert admit(waiting, [S("x", 10), S("y", 10)], 1000, 2) == []


def test_a_job_that_runs_alone_waits_for_the_others_and_blocks_what_is_behind_it():
    alone = S("r", 1000, alone=True)
    assert admit([alone, S("small", 10)], [S("x", 100)], 1000, 4) == []     # drain first
    assert admit([alone, S("small", 10)], [], 1000, 4) == [alone]           # then only it
    assert admit([S("small", 10)], [alone], 5000, 4) == []                  # nothing beside it


def test_queue_is_largest_first_and_retries_first():
    order = queue_order([S("s", 100), S("b", 900), S("m", 400), S("r", 50, alone=True)])
    assert [s.key for s in order] == ["r", "b", "m", "s"]


def test_core_share():
    assert core_share(8, 4, 10) == 2
    assert core_share(8, 8, 2) == 4       # two jobs only: four cores each
    assert core_share(2, 4, 10) == 1


@pytest.mark.parametrize("code, attempt, status, retry", [
    (0, 1, "done", False),
    (2, 1, "failed", False), (3, 1, "failed", False), (4, 1, "failed", False),
    (5, 1, "retry", True), (6, 1, "retry", True), (6, 2, "failed", False),
    (-signal.SIGKILL, 1, "retry", True), (-signal.SIGKILL, 2, "failed", False),
    (1, 1, "retry", True), (137, 1, "retry", True), (1, 2, "failed", False),
])
def test_retry_table(code, attempt, status, retry):
    v = verdict(code, attempt)
    assert (v.status, v.retry) == (status, retry)


def test_a_child_ended_by_the_batch_stopping_is_stopped_not_retried():
    for code in (130, 143, -signal.SIGTERM):
        assert verdict(code, 1, stopping=True).status == "stopped"
    assert verdict(3, 1, stopping=True).status == "failed"
    assert verdict(0, 1, stopping=True).status == "done"


# ---------------------------------------------------------------- the executor, with stand-ins
STAND_IN = r'''
import argparse, json, os, signal, sys, tempfile, time
ap = argparse.ArgumentParser()
ap.add_argument("--exit", type=int, default=0)
ap.add_argument("--sleep", type=float, default=0.0)
ap.add_argument("--alloc", type=int, default=0)           # MB, touched
ap.add_argument("--kill-once", default=None)              # a marker file: SIGKILL self the first time
ap.add_argument("--kill-always", action="store_true")
ap.add_argument("--tmp", default=None)                    # a folder: a temp file lives while running
ap.add_argument("--pids", default=None)                   # append our pid here
ap.add_argument("--memory-budget"); ap.add_argument("--log-format"); ap.add_argument("--log-file")
ap.add_argument("-q", action="store_true")
a = ap.parse_args()
tmp = None
def bye(signum, frame):
    if tmp: os.unlink(tmp)
    sys.exit(128 + signum)
signal.signal(signal.SIGTERM, bye)
signal.signal(signal.SIGINT, bye)
if a.pids:
    with open(a.pids, "a") as f: f.write(f"{os.getpid()}\n")
if a.tmp:
    fd, tmp = tempfile.mkstemp(dir=a.tmp, suffix=".keyer-tmp"); os.close(fd)
block = bytearray(a.alloc * 1024 * 1024)
for i in range(0, len(block), 4096): block[i] = 1
if a.kill_always or (a.kill_once and not os.path.exists(a.kill_once)):
    if a.kill_once: open(a.kill_once, "w").close()
    os.kill(os.getpid(), signal.SIGKILL)
time.sleep(a.sleep)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
with open(a.log_file, "a") as f:
    f.write(json.dumps({"event": "job_end", "frames": 10, "peak_rss_mb": int(hwm) / 1024,
                        "budget": a.memory_budget, "cores": os.environ.get("KEYER_CORES")}) + "\n")
if tmp: os.unlink(tmp)
if a.exit:
    print(f"keyer: error: stand-in exits {a.exit}", file=sys.stderr)
sys.exit(a.exit)
'''


@pytest.fixture
def stand_in(tmp_path) -> Path:
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)
    (tmp_path / "logs").mkdir()
    return script


def task(script: Path, name: str, estimate: float, *args: str) -> Task:
    identity = {"path": f"/in/{name}.mp4", "size": 1, "mtime_ns": 1}
    return Task(identity["path"], Path(identity["path"]), identity, f"/out/{name}.webm", estimate,
                reservation_mb(estimate), None, 10, [str(script), *args])


def run_tasks(tmp_path, tasks, budget=1000.0, max_jobs=4, cores=4):
    manifest = Manifest(tmp_path)
    try:
        records = drive(tasks, LocalExecutor(), manifest, budget, max_jobs, cores, tmp_path / "logs")
    finally:
        manifest.close()
    assert list(read_records(tmp_path / "keyer-batch.jsonl")) == records   # flushed, one per attempt
    return records


def most_at_once(records) -> tuple[int, float]:
    """From the attempts' start and end times: the most jobs, and reserved MB, at any moment."""
    events = sorted([(r["started"], 1, r["reserved_mb"]) for r in records] +
                    [(r["ended"], -1, -r["reserved_mb"]) for r in records],
                    key=lambda e: (e[0], e[1]))    # an end before a start at the same instant
    jobs = reserved = 0
    most_jobs, most_mb = 0, 0.0
    for _, dj, dmb in events:
        jobs += dj
        reserved += dmb
        most_jobs, most_mb = max(most_jobs, jobs), max(most_mb, reserved)
    return most_jobs, most_mb


def test_never_more_jobs_or_reserved_memory_than_allowed(tmp_path, stand_in):
    sizes = [300, 250, 200, 150, 120, 100, 80, 60]
    tasks = [task(stand_in, f"j{i}", e, "--sleep", "0.4") for i, e in enumerate(sizes)]
    records = run_tasks(tmp_path, tasks, budget=700.0, max_jobs=3)
    assert sorted(r["input"]["path"] for r in records) == sorted(t.key for t in tasks)
    assert all(r["status"] == "done" and r["attempt"] == 1 for r in records)
    jobs, reserved = most_at_once(records)
    assert jobs <= 3 and reserved <= 700.0
    assert jobs >= 2                       # and it did run jobs side by side
    first = min(records, key=lambda r: r["started"])
    assert first["estimate_mb"] == 300     # largest first


def test_jobs_that_fit_only_one_at_a_time_run_one_after_the_other(tmp_path, stand_in):
    tasks = [task(stand_in, f"j{i}", 400, "--sleep", "0.3") for i in range(3)]
    records = run_tasks(tmp_path, tasks, budget=800.0, max_jobs=4)
    assert most_at_once(records)[0] == 1


def test_an_input_error_runs_once(tmp_path, stand_in):
    records = run_tasks(tmp_path, [task(stand_in, "bad", 100, "--exit", "3")])
    assert [(r["attempt"], r["status"], r["exit_code"]) for r in records] == [(1, "failed", 3)]
    assert records[0]["error"] == "stand-in exits 3"


@pytest.mark.parametrize("code", [2, 4])
def test_usage_and_output_errors_run_once(tmp_path, stand_in, code):
    records = run_tasks(tmp_path, [task(stand_in, "bad", 100, "--exit", str(code))])
    assert [(r["attempt"], r["status"]) for r in records] == [(1, "failed")]


def test_a_sigkilled_job_is_retried_once_alone_with_the_whole_budget(tmp_path, stand_in):
    marker = tmp_path / "killed-once"
    tasks = [task(stand_in, "oom", 200, "--kill-once", str(marker)),
             task(stand_in, "other", 200, "--sleep", "0.5")]
    records = run_tasks(tmp_path, tasks, budget=900.0)
    mine = [r for r in records if "oom" in r["input"]["path"]]
    assert [(r["attempt"], r["status"], r["exit_code"]) for r in mine] == [
        (1, "retry", -signal.SIGKILL), (2, "done", 0)]
    retry = mine[1]
    assert retry["alone"] and retry["reserved_mb"] == 900.0 and retry["cores"] == 4
    other = next(r for r in records if "other" in r["input"]["path"])
    assert retry["started"] >= other["ended"] or retry["ended"] <= other["started"]   # alone
    assert "killed by SIGKILL" in mine[0]["error"]


def test_a_job_killed_twice_fails_after_one_retry(tmp_path, stand_in):
    records = run_tasks(tmp_path, [task(stand_in, "oom", 200, "--kill-always")])
    assert [(r["attempt"], r["status"]) for r in records] == [(1, "retry"), (2, "failed")]


def test_stopped_over_budget_is_retried_alone(tmp_path, stand_in):
    records = run_tasks(tmp_path, [task(stand_in, "big", 200, "--exit", "6")], budget=800.0)
    assert [(r["attempt"], r["status"], r["reserved_mb"]) for r in records] == [
        (1, "retry", reservation_mb(200)), (2, "failed", 800.0)]


def test_each_job_gets_its_reservation_as_budget_and_its_share_of_cores(tmp_path, stand_in):
    tasks = [task(stand_in, f"j{i}", 100 + i) for i in range(2)]
    records = run_tasks(tmp_path, tasks, budget=1000.0, max_jobs=2, cores=4)
    for r in records:
        end = json.loads(Path(r["log"]).read_text().splitlines()[-1])
        assert end["budget"] == f"{int(r['reserved_mb'])}M"
        assert end["cores"] == "2" and r["cores"] == 2


def test_measured_peak_comes_from_the_job_log(tmp_path, stand_in):
    records = run_tasks(tmp_path, [task(stand_in, "alloc", 200, "--alloc", "80")])
    assert 80 < records[0]["peak_rss_mb"] < 200


DRIVER = r'''
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from tests.test_batch import task
from keyer.batch_driver import drive
from keyer.batch_console import Summary
from keyer.batch_local import LocalExecutor
from keyer.batch_manifest import Manifest
work, script = Path(sys.argv[2]), Path(sys.argv[3])
tasks = [task(script, f"j{i}", 100, "--sleep", "60", "--tmp", str(work / "tmp"),
              "--pids", str(work / "pids")) for i in range(5)]
summary = Summary()
m = Manifest(work)
drive(tasks, LocalExecutor(), m, 1000.0, 3, 2, work / "logs", summary=summary)
m.close()
sys.exit(128 + summary.stopped_by if summary.stopped_by else 0)
'''


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:   # a zombie is dead
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_batch_stops_every_child_and_leaves_no_temporary_file(tmp_path, stand_in,
                                                                              sig):
    (tmp_path / "tmp").mkdir()
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    proc = subprocess.Popen([sys.executable, str(driver), str(ROOT), str(tmp_path), str(stand_in)],
                            stderr=subprocess.PIPE, text=True)
    pids_file = tmp_path / "pids"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if pids_file.exists() and len(pids_file.read_text().split()) == 3 and \
                len(list((tmp_path / "tmp").iterdir())) == 3:
            break
        time.sleep(0.05)
    pids = [int(p) for p in pids_file.read_text().split()]
    assert len(pids) == 3                    # -j 3 of 5
    t = time.monotonic()
    proc.send_signal(sig)
    proc.wait(timeout=10)
    assert time.monotonic() - t < 1.5
    assert proc.returncode == 128 + sig, proc.stderr.read()
    assert not [p for p in pids if _alive(p)]
    assert list((tmp_path / "tmp").iterdir()) == []
    records = list(read_records(tmp_path / "keyer-batch.jsonl"))
    assert [r["status"] for r in records] == ["stopped"] * 3
    assert {r["exit_code"] for r in records} == {143}   # SIGTERM to each child, never SIGKILL


# ---------------------------------------------------------------- options passed to each job
def test_run_args_reproduce_the_settings():
    from keyer.cli import run
    from keyer.settings import job_from_options

    argv = [".", "-o", "x.webm", "--effects", "displacement=amount=6,drop-shadow=distance=8:"
            "color=#102030", "--posterize-time", "30000/1001", "--global-key", "--no-audio",
            "--similarity", "0.2", "--crf", "20", "--pad", "4", "-y", "--fit",
            "--max-megapixels", "2.5", "--memory-budget", "500M", "--key", "blue"]

    def job_of(args):
        ctx = run.make_context("run", list(args))
        params = {k: v for k, v in ctx.params.items() if "__" in k}
        return job_from_options(".", "x.webm", params)

    job = job_of(argv)
    args = run_args(job)
    assert "--memory-budget" not in args            # the batch sets it per attempt
    again = job_of([".", "-o", "x.webm", *args])
    assert again == job_of(argv[:-4] + ["--key", "blue"])
    assert run_args(job_of([".", "-o", "x.webm"])) == []


def test_a_just_installed_venv_reserves_for_its_resident_library_pages():
    from keyer.admission import WARM_FILE_MB, library_allowance_mb

    assert library_allowance_mb(None) == library_allowance_mb(WARM_FILE_MB - 30) == 0
    # measured: warm 189.5 MB of file pages in a fresh venv, a job's peak 97 MB over the fit's
    assert 90 <= library_allowance_mb(189.5) <= 100


# ---------------------------------------------------------------- end to end, real clips
@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    from tests.clips import make_clip

    folder = tmp_path_factory.mktemp("batch-in")
    for i in range(3):
        make_clip(folder / f"small{i}.mp4", 8, width=64 + 16 * i, height=48)
    make_clip(folder / "big.mp4", 4, width=1280, height=720)
    (folder / "broken.mp4").write_bytes(b"this is not a video " * 50)
    (folder / "notes.md").write_text("not an input")
    return folder


def _by_name(records):
    return {Path(r["input"]["path"]).name: r for r in records}


def test_batch_end_to_end_broken_and_too_big(clips, tmp_path):
    out = tmp_path / "out"
    # the batch runs `keyer warm` first: on a clean clone's empty kernel cache that compiles
    # every kernel (~2 min of one core), hence the long timeout. 400M: the small jobs fit one
    # at a time, with or without the library allowance of a just-installed venv (~100 MB)
    done = run_cli("batch", clips, "-o", out, "--memory-budget", "400M", "-j", "2",
                   timeout=COLD)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    records = list(read_records(out / "keyer-batch.jsonl"))
    last = _by_name(records)
    assert set(last) == {"small0.mp4", "small1.mp4", "small2.mp4", "big.mp4", "broken.mp4"}
    assert last["broken.mp4"]["status"] == "refused" and last["broken.mp4"]["exit_code"] == 3
    big = last["big.mp4"]
    assert big["status"] == "refused" and big["exit_code"] == 5
    assert "the largest size that fits is" in big["error"] and "400 MB" in big["error"]
    for name in ("small0", "small1", "small2"):
        r = last[f"{name}.mp4"]
        assert r["status"] == "done" and r["attempt"] == 1 and r["frames"] == 8
        assert (out / f"{name}.webm").stat().st_size > 0
        assert r["peak_rss_mb"] <= r["reserved_mb"]
        assert Path(r["log"]).exists()
    assert len(records) == 5                                   # each input once, nothing retried
    assert not list(out.glob("*.webm"))[3:]                    # three outputs, no fourth
    assert not [p for p in out.rglob("*") if "keyer-tmp" in p.name]
    assert most_at_once([r for r in records if r["attempt"]])[1] <= 400
    assert "3 done, 0 failed, 2 refused, 0 skipped" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("keyer: error: 2 of 5 inputs")

    # resume: nothing done is redone; --fit now scales the big one to fit
    again = run_cli("batch", clips, "-o", out, "--memory-budget", "400M", "-j", "2", "--fit",
                    timeout=COLD)
    records2 = list(read_records(out / "keyer-batch.jsonl"))[len(records):]
    names = sorted(Path(r["input"]["path"]).name for r in records2)
    assert names == ["big.mp4", "broken.mp4"]
    assert _by_name(records2)["big.mp4"]["status"] == "done"
    assert "3 skipped" in again.stderr

    from keyer.probe import probe

    w, h = probe(out / "big.webm").display_size
    assert w * h < 1280 * 720 and abs(w / h - 16 / 9) < 0.02


def test_resume_tolerates_a_torn_last_line_and_redoes_a_changed_input(clips, tmp_path):
    import keyer

    inputs = [clips / "small0.mp4", clips / "small1.mp4"]
    out = tmp_path / "out"
    first = keyer.batch(inputs, out, memory_budget="1G")
    assert [r["status"] for r in first] == ["done", "done"]
    with open(out / "keyer-batch.jsonl", "a") as fh:
        fh.write('{"input": {"path": "/x", "si')            # a batch killed mid-write
    again = keyer.batch(inputs, out, memory_budget="1G")
    assert [r["status"] for r in again] == ["skipped", "skipped"]
    (out / "small0.webm").unlink()                          # output gone: done again
    third = keyer.batch(inputs, out, memory_budget="1G")
    assert sorted(r["status"] for r in third) == ["done", "skipped"]
    lines = (out / "keyer-batch.jsonl").read_text().splitlines()
    assert sum(1 for ln in lines if _parses(ln)) == len(lines) - 1   # only the torn one


def _parses(line: str) -> bool:
    try:
        json.loads(line)
        return True
    except ValueError:
        return False


def test_interrupted_batch_resumes_without_redoing_finished_clips(tmp_path):
    from tests.clips import make_clip

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(4):
        make_clip(folder / f"c{i}.mp4", 60 if i else 4, width=320, height=240)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "keyer", "batch", str(folder), "-o", str(out),
                             "-j", "1", "--effects", "all", "--memory-budget", "1G"],
                            env=env, stderr=subprocess.PIPE, text=True)
    manifest = out / "keyer-batch.jsonl"
    deadline = time.monotonic() + COLD
    while time.monotonic() < deadline and not (manifest.exists() and manifest.read_text()):
        time.sleep(0.05)          # the first (shortest: largest first, equal sizes by name) is done
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("keyer: error: batch stopped by SIGINT")
    first = list(read_records(manifest))
    done = {Path(r["input"]["path"]).name for r in first if r["status"] == "done"}
    assert done and len(done) < 4
    assert not [p for p in out.rglob("*") if "keyer-tmp" in p.name]
    assert not _processes_mentioning(str(out))
    again = run_cli("batch", folder, "-o", out, "-j", "2", "--effects", "all",
                    "--memory-budget", "1G", timeout=300)
    assert again.returncode == 0, again.stderr
    second = list(read_records(manifest))[len(first):]
    redone = {Path(r["input"]["path"]).name for r in second}
    assert redone == {f"c{i}.mp4" for i in range(4)} - done
    assert all(r["status"] == "done" for r in second)


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.parametrize("args, code, message", [
    (["-o", "{out}"], 2, "Missing argument"),
    (["{clip}", "-o", "{out}", "--format", "gif9"], 2, "--format gif9: unknown"),
    (["{clip}", "-o", "{out}", "--similarity", "7"], 2, "--similarity"),
    (["{clip}", "-o", "{out}", "-j", "0"], 2, "-j"),
    (["{clip}", "-o", "{file}"], 2, "is a file"),
    (["{empty}", "-o", "{out}"], 2, "no inputs"),
])
def test_bad_usage_is_one_line_and_no_traceback(tmp_path, green_clip, args, code, message):
    (tmp_path / "file").write_text("x")
    (tmp_path / "empty").mkdir()
    subs = {"out": tmp_path / "out", "clip": green_clip, "file": tmp_path / "file",
            "empty": tmp_path / "empty"}
    done = run_cli("batch", *[a.format(**subs) for a in args])
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr and message in done.stderr


def test_keyer_cores_caps_the_cores_the_thread_plan_sees(monkeypatch):
    from keyer.host import available_cores

    monkeypatch.delenv("KEYER_CORES", raising=False)
    every = available_cores()
    monkeypatch.setenv("KEYER_CORES", "1")
    assert available_cores() == 1
    monkeypatch.setenv("KEYER_CORES", str(every + 5))      # a share never adds cores
    assert available_cores() == every
    for junk in ("0", "-2", "two", ""):
        monkeypatch.setenv("KEYER_CORES", junk)
        assert available_cores() == every


def test_peak_sum_of_rss_rebuilt_from_logs(tmp_path):
    from keyer.batch_logs import rss_sum_peak_from_logs

    def log(name, pid, events):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps({"timestamp": f"2026-01-01T00:00:{t:02d}Z", "pid": pid,
                                            "rss_mb": rss, "event": ev}) + "\n"
                                for t, rss, ev in events))
        return {"log": str(path)}

    a = log("a", 1, [(0, 100, "job_start"), (2, 300, "frame_sample"), (6, 250, "job_end")])
    b = log("b", 2, [(3, 200, "job_start"), (5, 400, "frame_sample"), (9, 100, "job_end")])
    c = log("c", 3, [(7, 500, "job_start")])               # killed: no job_end
    # at 5 s: a holds 300, b 400 -> 700; at 7 s: a ended, b 400 + c 500 -> 900
    assert rss_sum_peak_from_logs([a, b]) == 700
    assert rss_sum_peak_from_logs([a, b, c]) == 900


def test_a_job_ended_after_publishing_its_output_is_done_not_retried_or_stopped(tmp_path):
    # keyer run renames its output into place, logs the cleanup stage's end, then job_end: a
    # SIGTERM in between exits 143 with the output complete
    from keyer.batch_logs import read_log

    log = tmp_path / "job.jsonl"
    events = [{"event": "job_start", "peak_rss_mb": 100},
              {"event": "stage_end", "stage": "cleanup", "peak_rss_mb": 120},
              {"event": "job_aborted", "frame": 600, "reason": "interrupted by SIGTERM"}]
    log.write_text("".join(json.dumps(e) + "\n" for e in events))
    found = read_log(log, 0)
    assert found["published"] and found["frames"] == 600 and found["peak_rss_mb"] == 120
    assert verdict(143, 1, stopping=True, published=True).status == "done"
    assert verdict(-signal.SIGKILL, 1, published=True).status == "done"
    log.write_text("".join(json.dumps(e) + "\n" for e in (events[0], events[2])))
    assert not read_log(log, 0).get("published")
    assert verdict(143, 1, stopping=True, published=False).status == "stopped"


def test_a_ray_task_started_with_sigint_ignored_can_still_be_cancelled(tmp_path):
    """Ray cancels a running task with _thread.interrupt_main(), which does nothing while
    SIGINT is ignored, as it is in a worker of a driver started in the background (a CI
    runner, nohup, a shell's &): the cancel was lost and the stopped batch waited for the job
    to end by itself (a fresh clone's CI run, twice: 61 s for a 60 s job). The task handles
    SIGINT for its own run, then leaves it ignored again. No Ray needed: this is the task."""
    import _thread
    import threading

    import keyer
    from keyer.batch_ray import run_attempt

    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)
    (tmp_path / "tmp").mkdir()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    timer = threading.Timer(1.0, _thread.interrupt_main)     # what ray.cancel(force=False) does
    try:
        timer.start()
        t = time.monotonic()
        got = run_attempt([str(script), "--sleep", "20", "--tmp", str(tmp_path / "tmp"),
                           "--log-file", str(tmp_path / "log")], {}, str(tmp_path / "log"),
                          str(tmp_path / "err"), keyer.__version__)
        elapsed = time.monotonic() - t
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN   # as it found it
    finally:
        timer.join()
        signal.signal(signal.SIGINT, previous)
    assert got["exit_code"] == 143 and elapsed < 8, (got, elapsed)   # SIGTERMed, cleaned up
    assert list((tmp_path / "tmp").iterdir()) == []
