"""Run one job in a fresh interpreter and print the kernel variants loaded after warm-up.

Used by tests/test_pipeline.py: ``python tests/warm_probe.py SRC OUT [EFFECTS]`` prints, as
JSON, ``late``: every Numba dispatcher whose compiled-variant count grew after
``keyer.warmup.warm`` returned (i.e. that the job's first frames had to compile or load
themselves), and ``array_library``: whether numba's array library (``numba.np.arrayobj``, with
its string and hashing modules, ~40 ms to import) was imported by the end of the job.
"""
from __future__ import annotations

import json
import sys

import numba

import keyer
from keyer import warmup


def counts() -> dict[str, int]:
    found = {}
    for name, module in list(sys.modules.items()):
        if not name.startswith("keyer"):
            continue
        for attr, value in vars(module).items():
            if isinstance(value, numba.core.registry.CPUDispatcher):
                found[f"{name}.{attr}"] = len(value.overloads)
    return found


after_warm: dict[str, int] = {}
real_warm = warmup.warm


def recording_warm(*args, **kwargs):
    real_warm(*args, **kwargs)
    after_warm.update(counts())


warmup.warm = recording_warm
keyer.run(sys.argv[1], sys.argv[2], effects=sys.argv[3] if len(sys.argv) > 3 else "", overwrite=True)
print(json.dumps({"late": {k: n for k, n in counts().items() if n > after_warm.get(k, 0)},
                  "array_library": "numba.np.arrayobj" in sys.modules}))
