"""The one place the Numba options are spelled out.

Kernels are pure functions shaped ``(inputs, scalars, out)``; they validate nothing (their Python
wrappers do). ``cache=True`` writes compiled code to ``NUMBA_CACHE_DIR``, which ``keyer`` points
at a per-user cache directory before numba is imported (see ``keyer.cache``), so an installation
in a read-only site-packages still caches.
"""
from __future__ import annotations

from keyer import cache as _cache  # noqa: F401  (sets NUMBA_CACHE_DIR before numba loads)

import importlib

import numba


def threadsafe_layer() -> bool:
    """Whether Numba can load a threading layer that several threads may launch parallel
    kernels on at once: OpenMP (needs the system's libgomp) or TBB (needs the ``tbb`` package).

    Without either, Numba falls back to its ``workqueue`` layer, which aborts the whole process
    ("Concurrent access has been detected") when two threads launch at once, as the key and the
    encoder do. That is the case on a machine without libgomp (e.g. a slim container image).
    """
    for module in ("numba.np.ufunc.omppool", "numba.np.ufunc.tbbpool"):
        try:
            importlib.import_module(module)
        except ImportError:     # the runtime library is missing
            continue
        if module.endswith("tbbpool"):
            from numba.np.ufunc import parallel
            check = getattr(parallel, "_check_tbb_version_compatible", None)
            try:
                if check is not None:
                    check()
            except ImportError:  # a TBB numba will not use
                return False
        return True
    return False


# Parallel kernels only where a thread-safe layer exists (and then Numba is told to use one);
# elsewhere they compile as serial kernels (``prange`` runs as ``range``): slower, never aborted.
PARALLEL = threadsafe_layer()
if PARALLEL and str(numba.config.THREADING_LAYER).lower() in ("default", "workqueue", "forksafe"):
    numba.config.THREADING_LAYER = "threadsafe"     # an explicit tbb, omp or safe is kept

kernel = numba.njit(cache=True, nogil=True)
kernel_parallel = numba.njit(cache=True, nogil=True, parallel=PARALLEL)
prange = numba.prange


def kernel_threads(n: int | None) -> int:
    """Run parallel kernels launched from the calling thread on ``n`` threads (None: all of
    Numba's, capped by ``NUMBA_NUM_THREADS`` as Numba requires); Numba keeps this per thread.
    Returns the previous count, to restore. A no-op without parallel kernels."""
    if not PARALLEL:
        return n or 1
    previous = numba.get_num_threads()
    wanted = numba.config.NUMBA_NUM_THREADS if n is None else min(max(1, n), numba.config.NUMBA_NUM_THREADS)
    if wanted != previous:
        numba.set_num_threads(wanted)
    return previous


def _load_cached_code_without_refresh() -> None:
    """Load kernels from the disk cache without first importing all of numba's lowering code.

    Numba's ``Cache.load_overload`` refreshes the target context before every load: that imports
    and registers the implementations of everything numba can compile (~0.15 s of a warm
    start-up, once per process), which a compiled kernel loaded from disk never uses. Compiling
    (a cache miss) still refreshes, in numba's compiler. A loaded kernel needs Numba's runtime
    (NRT), so that is initialised first, as the refresh would have. Applied only where
    ``load_overload`` has the shape this replaces (numba 0.57 to 0.68 at least); elsewhere numba's
    own is kept.
    """
    from numba.core import caching
    from numba.core.runtime import rtsys

    cache = caching.Cache
    if getattr(cache, "_keyer_no_refresh", False):
        return
    if not all(hasattr(cache, a) for a in ("load_overload", "_load_overload",
                                           "_guard_against_spurious_io_errors")):
        return

    def load_overload(self, sig, target_context):
        rtsys.initialize(target_context)
        with self._guard_against_spurious_io_errors():
            return self._load_overload(sig, target_context)
        # None when the ``with`` block swallows an I/O error, as in numba's own

    load_overload.__doc__ = cache.load_overload.__doc__
    cache.load_overload = load_overload
    cache._keyer_no_refresh = True


_load_cached_code_without_refresh()
