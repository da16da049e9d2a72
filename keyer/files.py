"""Putting a finished temporary file in place: with the mode a new file would have had.

``tempfile.mkstemp`` creates files readable by their owner only (0600), which is right while
they are partial; a finished output should be what any tool writing it directly would leave:
0666 less the umask (so a web server or a teammate can read it where the umask allows).
"""
from __future__ import annotations

import os
from pathlib import Path


def umask() -> int:
    """The process's umask, read without changing it (Linux /proc), else by setting it back."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def publish(tmp: str | os.PathLike, final: str | os.PathLike) -> Path:
    """Give ``tmp`` a new file's mode (0666 less the umask) and rename it to ``final``."""
    os.chmod(tmp, 0o666 & ~umask())
    os.replace(tmp, final)
    return Path(final)
