"""The batch manifest, ``DIR/keyer-batch.jsonl``: one JSON line per attempt, flushed as written,
and the resume rule read back from it.

A line: ``input`` {path, size, mtime}, ``output``, ``attempt``, ``status`` (done, failed, retry,
refused, stopped), ``exit_code``, ``estimate_mb``, ``reserved_mb``, ``peak_rss_mb`` (from the
job's own log), ``elapsed_s``, ``started``/``ended`` (epoch seconds), ``frames``, ``cores``,
``error`` (one line), ``log``, ``host``, ``executor``, ``keyer_version``, ``batch_id``.

Resume: an input is skipped when its last line says ``done``, its output is there and its size
and mtime are the ones recorded. A torn line (a batch killed mid-write) is passed over, and the
next line written starts on a line of its own.
"""
from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import IO, Any, Iterator

from keyer.errors import OutputProblem

MANIFEST = "keyer-batch.jsonl"


def input_identity(path: Path) -> dict:
    """What identifies an input's content cheaply: its resolved path, size and mtime (ns)."""
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def read_records(path: Path) -> Iterator[dict]:
    """The manifest's records, in order; lines that are not a JSON object (torn) are skipped."""
    try:
        fh = open(path, encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return
    with fh:
        for line in fh:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("input"), dict):
                yield record


def finished(path: Path) -> dict[str, dict]:
    """{resolved input path: its last record}, for the inputs whose last attempt is done with
    its output present; whether the input is unchanged is ``unchanged``'s to say."""
    last: dict[str, dict] = {}
    for record in read_records(path):
        last[record["input"]["path"]] = record
    return {p: r for p, r in last.items()
            if r.get("status") == "done" and r.get("output") and Path(r["output"]).exists()}


def unchanged(record: dict, identity: dict) -> bool:
    """Whether an input is the one ``record`` was made from (same size and mtime)."""
    then = record["input"]
    return then.get("size") == identity["size"] and then.get("mtime_ns") == identity["mtime_ns"]


class Manifest:
    """The manifest open for appending, locked against a second batch writing the same folder."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / MANIFEST
        try:
            self.fh: IO[str] = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise OutputProblem(f"{self.path}: cannot write ({exc.strerror})") from None
        try:
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.fh.close()
            raise OutputProblem(f"{folder}: another keyer batch is writing to this folder") from None
        self._mend_torn_tail()

    def _mend_torn_tail(self) -> None:
        """Start a fresh line if the last one was cut short."""
        size = self.fh.seek(0, os.SEEK_END)
        if size:
            self.fh.seek(size - 1)
            if self.fh.read(1) != "\n":
                self.fh.write("\n")
                self.fh.flush()

    def write(self, record: dict[str, Any]) -> None:
        """Append one record and flush it to the OS (a crash after this keeps the line)."""
        self.fh.write(json.dumps(record, separators=(",", ":"), default=str) + "\n")
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def close(self) -> None:
        self.fh.close()
