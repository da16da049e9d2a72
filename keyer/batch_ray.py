"""Running a batch's attempts on Ray (``pip install 'keyer[ray]'``): one Ray task per attempt,
running the same ``keyer run`` child process as on one machine.

The driver (``keyer.batch_driver.drive``) admits and retries exactly as it does locally; Ray
places each admitted task on a node with room for it. Each task asks for its reservation as
Ray's ``memory`` resource and its core share as ``num_cpus`` (Ray schedules by them but enforces
neither, so the share also reaches the job's thread plan as ``KEYER_CORES`` in the child's
environment). ``max_calls=1``: a fresh worker per task, so no job's memory stays in a worker
for the next. ``max_retries=0``: the retry table is keyer's (Ray would retry a task its OOM
killer ended without limit, and cannot grow its memory between retries). ``ray.cancel`` raises
KeyboardInterrupt in the task, which sends the child SIGTERM and waits for it to remove its
temporary output. Inputs, outputs and logs are paths on a filesystem every node sees: no clip
bytes go through Ray's object store. Each task reports the keyer version it runs; a task whose
version differs from the driver's runs nothing and fails.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from keyer import __version__
from keyer.batch_local import Attempt, Ended, _size
from keyer.errors import UsageProblem
from keyer.memory import MB

OBJECT_STORE_BYTES = 80 * MB     # a local Ray's object store: keyer puts nothing in it
# The Ray worker each task runs in, beside its keyer child: measured 84 MB RSS (41 MB anonymous)
# for a fresh worker with keyer imported (Ray 2.60, Python 3.11); added to every reservation.
WORKER_MB = 96.0


@contextlib.contextmanager
def interruptible():
    """SIGINT handled by Python (KeyboardInterrupt) for the block, when it was ignored.

    Ray cancels a running task with ``_thread.interrupt_main()``, which does nothing while
    SIGINT is ignored, and a worker inherits that from a driver started in the background (a
    non-interactive shell's ``&``, nohup, a CI runner): the cancel was lost and a stopped batch
    waited for every job to end by itself (measured: a 60 s job, 61 s). Only the main thread
    may set a handler; Ray runs a task there."""
    if (signal.getsignal(signal.SIGINT) != signal.SIG_IGN
            or threading.current_thread() is not threading.main_thread()):
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_attempt(argv: list[str], env: dict[str, str], log_path: str, stderr_path: str,
                driver_version: str) -> dict:
    """The Ray task: run ``python argv...`` (``-m keyer run ...``) to its end, here on the node
    Ray chose; SIGTERM it if the task is cancelled. Returns its exit code, host, keyer version
    and start and end times."""
    import keyer

    host, started = socket.gethostname(), time.time()
    if keyer.__version__ != driver_version:
        return {"exit_code": 2, "host": host, "keyer_version": keyer.__version__,
                "started": started, "ended": time.time(),
                "error": f"{host} runs keyer {keyer.__version__}, the batch's driver "
                         f"{driver_version}; install the same keyer on every node"}
    with interruptible(), open(stderr_path, "ab") as err:
        proc = subprocess.Popen([sys.executable, *argv], env={**os.environ, **env},
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True)
        try:
            # polled, not proc.wait(): ray.cancel's KeyboardInterrupt is raised between
            # bytecodes, never inside a blocking waitpid
            while (code := proc.poll()) is None:
                time.sleep(0.05)
        except KeyboardInterrupt:           # ray.cancel(force=False)
            proc.send_signal(signal.SIGTERM)
            code = proc.wait()
    return {"exit_code": code, "host": host, "keyer_version": keyer.__version__,
            "started": started, "ended": time.time(), "error": None}


class RayExecutor:
    """Attempts as Ray tasks, on the Ray at ``address`` ("local": one started for the batch,
    with the budget as its memory; a Ray already initialised in this process is used as is)."""

    name = "ray"

    def __init__(self, address: str, memory_budget: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise UsageProblem("--ray needs Ray: pip install 'keyer[ray]'") from None
        from keyer.batch_driver import default_budget_mb
        from keyer.host import available_cores

        self.ray = ray
        self.owned = not ray.is_initialized()
        if self.owned:
            try:
                if address == "local":
                    budget = memory_budget or int(default_budget_mb() * MB)
                    ray.init(num_cpus=available_cores(), _memory=budget,
                             object_store_memory=OBJECT_STORE_BYTES, include_dashboard=False,
                             log_to_driver=False, configure_logging=False)
                else:
                    ray.init(address=address, log_to_driver=False, configure_logging=False)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise UsageProblem(f"--ray {address}: cannot connect ({exc})") from None
        resources = ray.cluster_resources()
        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
        cluster_mb = resources.get("memory", 0) / MB
        self.budget_mb = min(memory_budget / MB, cluster_mb) if memory_budget else cluster_mb
        # a task runs on one node: no job may reserve more than the largest node has
        self.job_limit_mb = min([self.budget_mb] + [max(n.get("memory", 0) / MB for n in nodes)]
                                if nodes else [self.budget_mb])
        self.cores = max(1, int(resources.get("CPU", 1)))
        self.overhead_mb = WORKER_MB
        self.version = __version__
        self.task = ray.remote(max_calls=1, max_retries=0)(run_attempt)
        self.running: dict[Any, Attempt] = {}

    def start(self, attempt: Attempt) -> None:
        attempt.log_offset = _size(attempt.log)
        attempt.stderr_offset = _size(attempt.stderr)
        attempt.started, attempt.monotonic = time.time(), time.monotonic()
        ref = self.task.options(num_cpus=attempt.cores, memory=int(attempt.reserved_mb * MB),
                                name=f"keyer:{os.path.basename(attempt.key)}").remote(
            attempt.argv, attempt.env, str(attempt.log), str(attempt.stderr), self.version)
        self.running[ref] = attempt

    def poll(self) -> list[tuple[Attempt, Ended]]:
        if not self.running:
            return []
        ready, _ = self.ray.wait(list(self.running), num_returns=len(self.running), timeout=0)
        done = []
        for ref in ready:
            attempt = self.running.pop(ref)
            done.append((attempt, self._ended(ref)))
        return done

    def _ended(self, ref: Any) -> Ended:
        from ray import exceptions as rx

        try:
            got = self.ray.get(ref)
        except rx.TaskCancelledError:
            return Ended(-signal.SIGTERM, host="?", keyer_version="?")
        except (rx.OutOfMemoryError, rx.WorkerCrashedError, rx.NodeDiedError) as exc:
            # Ray's memory monitor or the kernel killed the worker (and its job): as SIGKILL
            return Ended(-signal.SIGKILL, host="?", keyer_version="?",
                         note=f"{type(exc).__name__}")
        except rx.RayError as exc:
            return Ended(1, host="?", keyer_version="?", note=str(exc).splitlines()[0][:200])
        ended = Ended(got["exit_code"], host=got["host"], keyer_version=got["keyer_version"],
                      error=got["error"], started=got["started"], ended=got["ended"])
        return ended

    def stop_all(self, sig: int = signal.SIGTERM) -> None:
        """Cancel every task: KeyboardInterrupt in each, which SIGTERMs its job."""
        for ref in self.running:
            self.ray.cancel(ref, force=False)

    def rss_mb(self) -> float | None:
        return None          # not seen live: the summary reads it from the jobs' logs

    def close(self) -> None:
        if self.running:
            self.ray.wait(list(self.running), num_returns=len(self.running), timeout=60)
            self.running.clear()

    def shutdown(self) -> None:
        self.stop_all()
        self.close()
        if self.owned:
            self.ray.shutdown()
