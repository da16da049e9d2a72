"""The one place the Numba options are spelled out.

Kernels are pure functions shaped ``(inputs, scalars, out)``; they validate nothing (their Python
wrappers do). ``cache=True`` writes compiled code to ``NUMBA_CACHE_DIR``, which ``keyer`` points
at a per-user cache directory before numba is imported (see ``keyer.cache``), so an installation
in a read-only site-packages still caches.
"""
from __future__ import annotations

from keyer import cache as _cache  # noqa: F401  (sets NUMBA_CACHE_DIR before numba loads)

import numba

kernel = numba.njit(cache=True, nogil=True)
kernel_parallel = numba.njit(cache=True, nogil=True, parallel=True)
prange = numba.prange
