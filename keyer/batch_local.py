"""Running a batch's attempts on this machine: one child process each, watched and stopped.

``LocalExecutor`` starts an attempt's command (``keyer run ...``, or a stand-in in the tests) in
its own session, so a Ctrl-C at the terminal reaches only the batch, which then sends each child
SIGTERM (keyer removes its temporary output on SIGTERM). On Linux each child also gets SIGTERM
from the kernel if the batch itself dies (``PR_SET_PDEATHSIG``), so no job outlives its batch.
"""
from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from keyer import __version__

PR_SET_PDEATHSIG = 1


@dataclass
class Attempt:
    """One run of one job: what to run, what it reserves, where its log and stderr go."""

    key: str                      # the input, as the manifest names it
    number: int                   # 1, then 2 for the one retry
    argv: list[str]               # arguments to the Python interpreter (-m keyer run ...)
    env: dict[str, str]           # added to the batch's environment (KEYER_CORES)
    reserved_mb: float
    cores: int
    alone: bool
    log: Path                     # the job's JSON log (appended to by each attempt)
    stderr: Path                  # its stderr (the `keyer: error:` line), appended likewise
    log_offset: int = 0           # where this attempt's part of each begins
    stderr_offset: int = 0
    started: float = 0.0          # epoch seconds
    monotonic: float = 0.0


@dataclass
class Ended:
    """How an attempt ended: its exit code (negative: killed by that signal) and where."""

    exit_code: int
    host: str = field(default_factory=socket.gethostname)
    keyer_version: str = __version__
    error: str | None = None      # the attempt could not run (a version mismatch)
    note: str | None = None       # what the executor saw of its end (Ray's OutOfMemoryError)
    started: float | None = None  # epoch seconds, where the executor knows better (Ray queues)
    ended: float | None = None


def _die_with_parent() -> None:   # runs in the child between fork and exec
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


class LocalExecutor:
    """Attempts as child processes of this one."""

    name = "local"

    def __init__(self) -> None:
        self.running: dict[int, tuple[Attempt, subprocess.Popen]] = {}

    def start(self, attempt: Attempt) -> None:
        attempt.log_offset = _size(attempt.log)
        attempt.stderr_offset = _size(attempt.stderr)
        with open(attempt.stderr, "ab") as err:
            proc = subprocess.Popen([sys.executable, *attempt.argv], env={**os.environ, **attempt.env},
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=err, start_new_session=True,
                                    preexec_fn=_die_with_parent if os.name == "posix" else None)
        attempt.started, attempt.monotonic = time.time(), time.monotonic()
        self.running[proc.pid] = (attempt, proc)

    def poll(self) -> list[tuple[Attempt, Ended]]:
        """The attempts that ended since the last call."""
        done = []
        for pid, (attempt, proc) in list(self.running.items()):
            code = proc.poll()
            if code is not None:
                del self.running[pid]
                done.append((attempt, Ended(code)))
        return done

    def stop_all(self, sig: int = signal.SIGTERM) -> None:
        """Send every running child ``sig`` (SIGTERM: each removes its temporary output)."""
        for _, proc in self.running.values():
            if proc.poll() is None:
                try:
                    proc.send_signal(sig)
                except ProcessLookupError:
                    pass

    def rss_mb(self) -> float | None:
        """The running children's resident memory now, summed (MB)."""
        return sum(_rss_mb(pid) for pid in self.running)

    def close(self) -> None:
        """Nothing is left running: wait for children already told to stop."""
        for _, proc in self.running.values():
            proc.wait()
        self.running.clear()

    def shutdown(self) -> None:
        """The end of the batch, however it ends: SIGTERM to any child still running (the
        driver failed), then wait for each."""
        self.stop_all()
        self.close()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _rss_mb(pid: int) -> float:
    """A process's resident memory in MB (0 once it is gone): VmRSS, else psutil."""
    if not _HAVE_PROC:
        try:
            import psutil

            return psutil.Process(pid).memory_info().rss / (1024 * 1024)
        except Exception:  # noqa: BLE001 - gone or unreadable: counts as nothing
            return 0.0
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


_HAVE_PROC = os.path.exists("/proc/self/status")
