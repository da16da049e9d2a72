"""keyer's benches (``make bench``, ``make headroom``, ``make memcheck``, and the scripts here).

Every bench prints its results and writes them to ``benchmarks/results/`` (created on first use,
ignored by git: results describe one machine at one moment, not the code; the figures worth
keeping go to ``docs/performance.md`` with the name of the run that measured them).
"""
from __future__ import annotations

import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def result_path(kind: str, suffix: str = ".json") -> Path:
    """``benchmarks/results/<kind>-<local time>.json`` (or ``suffix``), its folder made if need be."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    return RESULTS / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}{suffix}"
