"""Run a generator stage in its own thread behind a bounded queue, keeping the generator API.

PyAV releases the GIL while it decodes and encodes and our kernels are ``nogil``, so three
threads (decode, key + effects, encode) keep both cores busy. At most ``depth`` items wait in a
queue, so memory stays bounded by the queue sizes.
"""
from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")
_DONE = object()


class _Raised:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class Stalled(Exception):
    """The worker produced nothing for longer than the stall timeout."""


def prefetch(source: Iterable[T], depth: int, name: str, stall_timeout: float | None = None) -> Iterator[T]:
    """Iterate ``source`` in a worker thread; yield its items here, at most ``depth`` ahead.

    Closing the returned generator stops the worker and closes ``source`` in the worker's own
    thread (a running generator cannot be closed from another one). Exceptions raised by
    ``source`` are re-raised here. With ``stall_timeout``, waiting longer than that for the
    next item raises ``Stalled`` (the worker, a daemon thread, is abandoned).
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
    return _consume(q, stop, thread, stall_timeout)


def _consume(q: queue.Queue, stop: threading.Event, thread: threading.Thread,
             stall_timeout: float | None) -> Iterator:
    import time

    last = time.monotonic()
    try:
        while True:
            try:
                item = q.get(timeout=0.1)
            except queue.Empty:
                if not thread.is_alive() and q.empty():
                    return
                if stall_timeout is not None and time.monotonic() - last > stall_timeout:
                    raise Stalled(f"no frame for {stall_timeout:g} s") from None
                continue
            last = time.monotonic()
            if item is _DONE:
                return
            if isinstance(item, _Raised):
                raise item.exc
            yield item
    finally:
        stop.set()
        deadline = time.monotonic() + 5.0
        while thread.is_alive() and time.monotonic() < deadline:
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(0.05)
