"""keyer's error hierarchy: each class carries the process exit code the CLI uses.

The CLI has one translation point (``keyer.cli.main``) that prints ``keyer: error: <msg>`` and
exits with ``exit_code``; library users catch the builtin base classes as usual.
"""
from __future__ import annotations


class KeyerError(Exception):
    """Base class of every error keyer reports to a user."""

    exit_code = 1


class UsageProblem(KeyerError, ValueError):
    """A bad option, effect name, parameter or value."""

    exit_code = 2


class InputProblem(KeyerError, ValueError):
    """The input cannot be read, has no video, or is over a limit."""

    exit_code = 3


class OutputProblem(KeyerError, OSError):
    """The output exists, cannot be written, or the disk is full."""

    exit_code = 4


class OverBudget(KeyerError):
    """The job would exceed, or did exceed, its memory budget."""

    exit_code = 5


class AbortedOverBudget(KeyerError):
    """``--abort-over-budget``: the job stopped itself at 90% of its memory budget."""

    exit_code = 6


class Aborted(KeyerError):
    """The job was stopped by a signal (SIGINT -> 130, SIGTERM -> 143)."""

    def __init__(self, signum: int, message: str = "") -> None:
        import signal

        self.signum = signum
        name = signal.Signals(signum).name
        super().__init__(message or f"interrupted by {name}")
        self.exit_code = 128 + signum


EXIT_CODES = {
    0: "success",
    1: "unexpected internal error",
    2: "usage: bad option, effect, parameter or value",
    3: "input: unreadable, not a video, damaged beyond use, or over a limit",
    4: "output: exists (without --overwrite), unwritable, or disk full",
    5: "memory: the job's estimated peak is over the budget (refused before decoding)",
    6: "memory: stopped at 90% of the budget (--abort-over-budget); temporary output removed",
    130: "interrupted (SIGINT / Ctrl-C); temporary output removed",
    143: "terminated (SIGTERM); temporary output removed",
}
