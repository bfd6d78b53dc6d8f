"""What the store could not take, kept in a local file until it is back.

A store that is read-only, full, locked or unreachable for a while must not cost the metrics
and alerts of that time. :class:`StoreSpool` appends each write that failed to a JSON-lines
file (one line per frame's metrics or per alert event, flushed as it is written, so a crash
keeps it) and, before every later write, replays the file into the store in order. Metrics and
alerts are upserts, so a line replayed twice (a crash during replay) changes nothing.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from crowdwatch.store.records import MetricSample
from crowdwatch.store.sql import SqlStore

log = logging.getLogger(__name__)

# After a failed write, the store is tried again at most this often (the spool grows meanwhile).
RETRY_EVERY_S = 1.0
# Spooled lines kept in memory only when the spool file itself cannot be written (disk full).
MAX_IN_MEMORY = 100_000


class StoreSpool:
    """A store's writes that failed, in order, in ``path`` (created on the first failure).

    Example:
        >>> import tempfile
        >>> from crowdwatch.store import open_store
        >>> spool = StoreSpool(Path(tempfile.mkdtemp()) / "spool.jsonl")
        >>> spool.write(open_store(":memory:"), "metrics", [])
        True
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._memory: list[str] = []  # lines the file could not take
        self._next_try = 0.0
        self.problem: str | None = None  # why the store is being spooled, while it is

    @property
    def pending(self) -> int:
        """Lines waiting for the store."""
        with self._lock:
            return self._file_lines() + len(self._memory)

    def write(self, store: SqlStore, kind: str, payload: Any) -> bool:
        """Write ``payload`` (``metrics``: a list of samples; ``alert``: an alert dict with its
        ``run_id``) to ``store`` after whatever is spooled; spool it if the store fails.
        Returns True when it reached the store."""
        with self._lock:
            if self._has_pending() and not self._replay(store):
                self._append(_line(kind, payload))
                return False
            try:
                _apply(store, kind, payload)
            except Exception as error:  # the store is unavailable: keep it for later
                self._failed(error)
                self._append(_line(kind, payload))
                return False
            self._recovered()
            return True

    def flush(self, store: SqlStore) -> bool:
        """Replay what is spooled into ``store``; True when nothing is left."""
        with self._lock:
            return not self._has_pending() or self._replay(store, force=True)

    # -- internals ----------------------------------------------------------------------------

    def _has_pending(self) -> bool:
        return bool(self._memory) or self.path.exists()

    def _file_lines(self) -> int:
        try:
            with self.path.open("rb") as handle:
                return sum(1 for _ in handle)
        except OSError:
            return 0

    def _replay(self, store: SqlStore, force: bool = False) -> bool:
        if not force and time.monotonic() < self._next_try:
            return False
        try:
            lines = self.path.read_text("utf-8").splitlines() if self.path.exists() else []
        except OSError as error:
            log.error("cannot read the store spool %s: %s", self.path, error)
            lines = []
        lines += self._memory
        for done, line in enumerate(lines):
            try:
                entry = json.loads(line)
            except ValueError:
                log.error("dropping an unreadable line of the store spool %s", self.path)
                continue
            try:
                _apply(store, entry["kind"], _revived(entry["kind"], entry["payload"]))
            except Exception as error:
                self._failed(error)
                self._rewrite(lines[done:])
                return False
        self._rewrite([])
        if lines:
            log.warning("store is back: wrote %d spooled write(s) from %s", len(lines), self.path)
        self._recovered()
        return True

    def _append(self, line: str) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(descriptor, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        except OSError as error:
            if len(self._memory) >= MAX_IN_MEMORY:
                log.error("store spool full in memory: a write is lost (%s)", error)
                return
            self._memory.append(line)

    def _rewrite(self, lines: list[str]) -> None:
        self._memory = []
        if not lines:
            self.path.unlink(missing_ok=True)
            return
        temporary = self.path.with_name(self.path.name + ".tmp")
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write("\n".join(lines) + "\n")
            os.replace(temporary, self.path)
        except OSError:
            self._memory = list(lines)
            self.path.unlink(missing_ok=True)

    def _failed(self, error: Exception) -> None:
        self._next_try = time.monotonic() + RETRY_EVERY_S
        reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        if self.problem is None:
            log.warning(
                "store unavailable (%s): spooling to %s until it is back", reason, self.path
            )
        self.problem = f"store unavailable, spooling to {self.path}: {reason}"

    def _recovered(self) -> None:
        self._next_try = 0.0
        self.problem = None


def _apply(store: SqlStore, kind: str, payload: Any) -> None:
    if kind == "metrics":
        store.write_metrics(payload)
    elif kind == "alert":
        store.upsert_alert(payload)
    else:
        raise ValueError(f"unknown spool entry {kind!r}")


def _line(kind: str, payload: Any) -> str:
    """One spool line. Made only when a write is spooled: a store that is up never pays for
    the JSON (a frame's samples as dicts and text, every frame of every camera)."""
    return json.dumps({"kind": kind, "payload": _plain(kind, payload)}, allow_nan=False)


def _plain(kind: str, payload: Any) -> Any:
    if kind == "metrics":
        return [dataclasses.asdict(sample) for sample in payload]
    return payload


def _revived(kind: str, payload: Any) -> Any:
    if kind == "metrics":
        return [MetricSample(**sample) for sample in payload]
    return payload
