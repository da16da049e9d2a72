"""Run a generator stage in its own thread behind a bounded queue, keeping the generator API.

PyAV releases the GIL while it decodes and encodes and our kernels are ``nogil``, so three
threads (decode, key + effects, encode) keep both cores busy. At most ``depth`` items wait in a
queue, so memory stays bounded by the queue sizes.
"""
from __future__ import annotations

import queue
import threading
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")
_DONE = object()


class _Raised:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class Stalled(Exception):
    """The worker produced nothing for longer than the stall timeout."""


def prefetch(source: Iterable[T], depth: int, name: str,
             stall_timeout: float | None = None) -> "Prefetched[T]":
    """Iterate ``source`` in a worker thread, started now; yield its items here, at most
    ``depth`` ahead.

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
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        it = iter(source)
        try:
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
