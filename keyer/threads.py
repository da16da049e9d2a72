"""Threads: how many each part of a job gets, and running a generator stage in its own thread
behind a bounded queue, keeping the generator API.

PyAV releases the GIL while it decodes and encodes and our kernels are ``nogil``, so the stage
threads (decode, key, effects, encode) keep the cores busy. At most ``depth`` items wait in a
queue, so memory stays bounded by the queue sizes.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
_DONE = object()


class _Raised:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class Stalled(Exception):
    """The worker produced nothing for longer than the stall timeout."""


@dataclass(frozen=True)
class ThreadPlan:
    """Threads for one job, from the cores it may use.

    ``encoder``: the encoder's own threads (FFmpeg's ``thread_count``, as ``-threads``);
    ``kernels``: Numba threads per parallel kernel launch, in each stage's thread (None: Numba's
    default, one per core).

    On 1-2 cores the stage threads (decode, key, effects, encode) already fill the cores when
    there are effects and the encoder is fast (``--preset fast`` VP9 or H.264): threads inside
    the encoder or a kernel would only add hand-offs and waits, so that encoder gets one thread,
    and the kernels get one in every job. Keying alone leaves room beside the encoder, and an
    encoder that is by far the slowest stage (``encoder_bound``: ProRes, slower presets) needs
    it: those encoders get every core. With more cores the encoder gets all but one when there
    are effects (all without) and the kernels Numba's default (a rule not yet measured: the
    project's machine has 2 cores). The measurements behind it: ``docs/performance.md``, Threads.
    """

    cores: int
    encoder: int
    kernels: int | None
    opencv: int = 1       # OpenCV's threads while the effects run: each call works on one box

    @classmethod
    def for_cores(cls, cores: int, encoder: int | None = None, encoder_bound: bool = False,
                  effects: bool = False) -> "ThreadPlan":
        """The plan for ``cores`` (at least 1) for a job with or without ``effects``;
        ``encoder`` overrides the encoder's count."""
        cores = max(1, cores)
        if encoder is None:
            encoder = cores if encoder_bound or not effects else max(1, cores - 1)
        return cls(cores=cores, encoder=encoder, kernels=1 if cores <= 2 else None)

    @classmethod
    def for_job(cls, fmt, encoder: int | None, preset: str, effects: bool) -> "ThreadPlan":
        """The plan for a job writing ``fmt`` (a ``keyer.formats.OutputFormat``) at ``preset``,
        with or without ``effects``, on the cores this process may use (``--threads``:
        ``encoder``)."""
        from keyer.formats import encoder_bound
        from keyer.host import available_cores

        return cls.for_cores(available_cores(), encoder, encoder_bound(fmt, preset), effects)

    def summary(self) -> dict:
        return {"cores": self.cores, "encoder": self.encoder, "kernels": self.kernels}


def prefetch(source: Iterable[T], depth: int, name: str, stall_timeout: float | None = None,
             init: Callable[[], object] | None = None, handoff: bool = False) -> "Prefetched[T]":
    """Iterate ``source`` in a worker thread, started now; yield its items here, at most
    ``depth`` ahead. ``init``, if given, runs first in the worker thread (its errors are
    re-raised here like the source's). With ``handoff`` the worker, once it has queued an item,
    waits until the consumer has taken it before asking ``source`` for the next one: a consumer
    takes an item only when it is done with the one before, so a source writing into a ring
    of buffers needs two (one read here, one being made) instead of ``depth`` + 2.

    Closing the returned iterator (even before its first item) stops the worker and closes
    ``source`` in the worker's own thread (a running generator cannot be closed from another
    one). Exceptions raised by ``source`` are re-raised here. With ``stall_timeout``, waiting
    longer than that for the next item raises ``Stalled`` (the worker, a daemon thread, is
    abandoned).
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                break
            except queue.Full:
                continue
        else:
            return False
        if handoff:
            with q.not_full:   # notified by every get
                while q.queue and not stop.is_set():
                    q.not_full.wait(0.1)
        return not stop.is_set()

    def work() -> None:
        it = iter(source)
        try:
            if init is not None:
                init()
            for item in it:
                if not put(item):
                    break
            else:
                put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put(_Raised(exc))
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=work, name=f"keyer-{name}", daemon=True)
    thread.start()
    return Prefetched(q, stop, thread, stall_timeout)


class Prefetched(Iterator[T]):
    """The consumer's end of ``prefetch``: an iterator with ``close``."""

    def __init__(self, q: queue.Queue, stop: threading.Event, thread: threading.Thread,
                 stall_timeout: float | None) -> None:
        self.q, self.stop, self.thread, self.stall_timeout = q, stop, thread, stall_timeout
        self._last = time.monotonic()

    def __next__(self) -> T:
        while True:
            if self.stop.is_set():
                raise StopIteration
            try:
                item = self.q.get(timeout=0.1)
            except queue.Empty:
                if not self.thread.is_alive() and self.q.empty():
                    self.close()
                    raise StopIteration from None
                if self.stall_timeout is not None and time.monotonic() - self._last > self.stall_timeout:
                    self.close()
                    raise Stalled(f"no frame for {self.stall_timeout:g} s") from None
                continue
            self._last = time.monotonic()
            if item is _DONE:
                self.close()
                raise StopIteration
            if isinstance(item, _Raised):
                self.close()
                raise item.exc
            return item

    def close(self) -> None:
        """Stop the worker (it closes its source) and wait up to 5 s for it to finish."""
        self.stop.set()
        deadline = time.monotonic() + 5.0
        while self.thread.is_alive() and time.monotonic() < deadline:
            try:
                self.q.get_nowait()
            except queue.Empty:
                self.thread.join(0.05)


def hold_after_first(source: Iterable[T], go: threading.Event, timeout: float = 5.0) -> Iterator[T]:
    """Yield ``source``'s first item at once and the next ones only once ``go`` is set (or
    after ``timeout``): a stage that would race ahead of the first frame leaves the cores to
    that frame's remaining stages and its encoding, which is what start-up waits for."""
    it = iter(source)
    try:
        for i, item in enumerate(it):
            if i == 1:
                go.wait(timeout)
            yield item
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()


def release_on_close(source: Iterable[T], go: threading.Event) -> Iterator[T]:
    """``source``'s items; when closed or ended, set ``go`` before closing ``source``: the
    consumer of a ``hold_after_first`` stage releases it first, so that a stage held back
    does not make closing wait out the hold (a job failing before its first frame)."""
    it = iter(source)
    try:
        for item in it:
            yield item
    finally:
        go.set()
        close = getattr(it, "close", None)
        if close is not None:
            close()
