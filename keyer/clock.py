"""How long this process has been running: start-up is measured from process creation."""
from __future__ import annotations

import os
import time


def since_process_start() -> float:
    """Seconds since this process was created (interpreter start, imports and all).

    Read from /proc (10 ms ticks) against CLOCK_BOOTTIME, not psutil's ``create_time()``, which
    adds /proc/stat's whole-second boot time and so reads up to 1 s high. Elsewhere, psutil.
    """
    try:
        with open("/proc/self/stat") as fh:
            start_ticks = int(fh.read().rsplit(")", 1)[1].split()[19])   # field 22, starttime
        return time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, AttributeError, ValueError, IndexError):
        import psutil

        return time.time() - psutil.Process().create_time()
