"""keyer batch on Ray: the executor tests of tests/test_batch.py on one local Ray for the module
(``ray.init(num_cpus=2, ...)``, 1 GB of Ray memory), and no Ray or keyer process left after.

Marked ``ray``: ``make test`` leaves them out; ``make test-ray`` installs the extra and runs them.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from keyer.admission import reservation_mb
from keyer.batch_console import Summary
from keyer.batch_driver import drive
from keyer.batch_manifest import Manifest, read_records
from tests.test_batch import STAND_IN, _processes_mentioning, most_at_once, task

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray

RAY_MB = 1024
RAY_PROCESSES = ("raylet", "gcs_server", "ray::", "default_worker.py", "dashboard/agent",
                 "runtime_env/agent", "log_monitor.py", "monitor.py")


def _ray_processes() -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if any(p in cmd for p in RAY_PROCESSES) and "pytest" not in cmd:
                found.add(int(entry.name))
    return found


@pytest.fixture(scope="module")
def local_ray():
    before = _ray_processes()
    ray.init(num_cpus=2, _memory=RAY_MB * 1024 * 1024, object_store_memory=80 * 1024 * 1024,
             include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield before
    ray.shutdown()


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ray-batch")


@pytest.fixture
def executor(local_ray):
    from keyer.batch_ray import RayExecutor

    ex = RayExecutor("local")          # the module's Ray, already initialised: used as it is
    assert (ex.budget_mb, ex.cores) == (RAY_MB, 2)
    return ex


@pytest.fixture
def run(tmp_path, executor, work):
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)
    (tmp_path / "logs").mkdir()
    # every folder a job touched, for the last test's search for processes left behind
    with open(work / "folders", "a") as fh:
        fh.write(f"{tmp_path}\n")

    def go(specs, budget=None, max_jobs=4):
        tasks = [task(script, name, est, *args) for name, est, args in specs]
        manifest = Manifest(tmp_path)
        summary = Summary()
        try:
            records = drive(tasks, executor, manifest, budget or executor.budget_mb, max_jobs,
                            executor.cores, tmp_path / "logs", summary=summary,
                            alone_mb=executor.job_limit_mb)
        finally:
            manifest.close()
        assert list(read_records(tmp_path / "keyer-batch.jsonl")) == records
        return records, summary

    go.tmp = tmp_path
    return go


def test_never_more_jobs_or_reserved_memory_than_allowed(run):
    sizes = [300, 250, 200, 150, 100, 80]
    records, _ = run([(f"j{i}", e, ["--sleep", "0.5"]) for i, e in enumerate(sizes)], max_jobs=3)
    assert all(r["status"] == "done" for r in records) and len(records) == 6
    jobs, reserved = most_at_once(records)
    assert jobs <= 3 and reserved <= RAY_MB
    assert all(r["host"] and r["keyer_version"] for r in records)


def test_two_jobs_whose_reservations_exceed_rays_memory_run_one_after_the_other(run):
    # the driver is told 4 GB, so it admits both at once: Ray's own memory (1 GB) must hold
    # the second back until the first has ended
    est = 500.0
    assert 2 * reservation_mb(est) > RAY_MB
    records, _ = run([("a", est, ["--sleep", "1"]), ("b", est, ["--sleep", "1"])], budget=4096)
    a, b = sorted(records, key=lambda r: r["started"])
    assert a["status"] == b["status"] == "done"
    assert b["started"] >= a["ended"] - 0.05       # times from the tasks themselves


def test_an_input_error_runs_once_and_a_sigkilled_job_is_retried_once_alone(run):
    marker = run.tmp / "killed-once"
    records, _ = run([("bad", 100, ["--exit", "3"]),
                      ("oom", 100, ["--kill-once", str(marker)]),
                      ("other", 100, ["--sleep", "0.5"])])
    bad = [r for r in records if "bad" in r["input"]["path"]]
    oom = [r for r in records if "oom" in r["input"]["path"]]
    assert [(r["attempt"], r["status"], r["exit_code"]) for r in bad] == [(1, "failed", 3)]
    assert [(r["attempt"], r["status"]) for r in oom] == [(1, "retry"), (2, "done")]
    assert oom[1]["alone"] and oom[1]["reserved_mb"] == RAY_MB
    others = [r for r in records if r is not oom[1]]
    assert all(r["ended"] <= oom[1]["started"] + 0.05 for r in others)


def test_each_task_gets_its_core_share_in_the_environment(run):
    import json

    records, _ = run([("a", 100, []), ("b", 100, [])], max_jobs=2)
    for r in records:
        end = json.loads(Path(r["log"]).read_text().splitlines()[-1])
        assert end["cores"] == "1" and r["cores"] == 1


def test_a_task_on_another_keyer_version_runs_nothing(run, executor):
    import keyer

    executor.version = "0.0.1"
    records, _ = run([("a", 100, ["--exit", "0"])])
    assert [(r["status"], r["attempt"]) for r in records] == [("failed", 1)]
    assert f"keyer {keyer.__version__}," in records[0]["error"]
    assert "driver 0.0.1" in records[0]["error"]
    assert not Path(records[0]["log"]).exists()            # the job never ran


def test_ctrl_c_cancels_every_task_and_each_job_removes_its_temporary_file(run):
    tmp = run.tmp / "tmp"
    tmp.mkdir()
    timer = threading.Timer(4.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    t = time.monotonic()
    records, summary = run([(f"z{i}", 100, ["--sleep", "60", "--tmp", str(tmp),
                                            "--pids", str(run.tmp / "pids")]) for i in range(2)])
    timer.join()
    assert summary.stopped_by == signal.SIGINT
    assert time.monotonic() - t < 4.0 + 5.0
    assert [(r["status"], r["exit_code"]) for r in records] == [("stopped", 143)] * 2
    assert list(tmp.iterdir()) == []


def test_end_to_end_real_clips_on_ray(local_ray, tmp_path, work):
    import keyer
    from tests.clips import make_clip

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        make_clip(folder / f"c{i}.mp4", 8, width=64 + 16 * i, height=48)
    (folder / "broken.mp4").write_bytes(b"not a video " * 40)
    with open(work / "folders", "a") as fh:
        fh.write(f"{tmp_path}\n")
    records = keyer.batch(folder, tmp_path / "out", ray="local")
    status = {Path(r["input"]["path"]).name: r["status"] for r in records}
    assert status == {"c0.mp4": "done", "c1.mp4": "done", "c2.mp4": "done", "broken.mp4": "refused"}
    assert all(r["executor"] == "ray" for r in records)
    from keyer.batch_ray import WORKER_MB

    for r in records:          # each reservation counts the Ray worker beside its job (and,
        if r["status"] == "done":   # in a just-installed venv, its resident library pages)
            assert r["reserved_mb"] >= reservation_mb(r["estimate_mb"]) + WORKER_MB
            assert r["peak_rss_mb"] <= r["reserved_mb"] - WORKER_MB
    assert len(list((tmp_path / "out").glob("*.webm"))) == 3
    again = keyer.batch(folder, tmp_path / "out", ray="local")
    assert sorted(r["status"] for r in again) == ["refused", "skipped", "skipped", "skipped"]


def test_no_ray_or_keyer_process_left_afterwards(local_ray, work):
    ray.shutdown()
    deadline = time.monotonic() + 20
    left = _ray_processes() - local_ray
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = _ray_processes() - local_ray
    assert not left
    for folder in (work / "folders").read_text().split():
        assert not _processes_mentioning(folder)
