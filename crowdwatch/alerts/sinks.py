"""Where alert events go: a crash-safe JSONL log, webhooks, or several sinks at once.

Every sink has ``emit(event)`` and ``close()``. ``emit`` must be quick: analysis calls it
between frames, so slow work (HTTP) happens on a background thread.

Example:
    >>> import tempfile, pathlib
    >>> log = JsonlAlertLog(pathlib.Path(tempfile.mkdtemp()) / "alerts.jsonl")
    >>> log.close()
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from crowdwatch.alerts.records import AlertEvent, AlertRecord

logger = logging.getLogger(__name__)


@runtime_checkable
class AlertSink(Protocol):
    """Receives alert events."""

    def emit(self, event: AlertEvent) -> None:
        """Take one event; must return quickly."""
        ...

    def close(self) -> None:
        """Finish pending work and release resources."""
        ...


class JsonlAlertLog:
    """Appends alert records to a JSON-lines file, one line per record, fsync-ed per line.

    By default a line is written when an alert closes and when it is acknowledged (so an
    acknowledgement after the close is not lost). :meth:`flush_open` and :meth:`close` also
    write the alerts still open, with ``"open": true`` and ``end_s`` set to the flush time.
    Each line is the record's fields plus ``"event"`` (``closed``, ``acknowledged``, ``opened``
    or ``open``) and ``"open"``. An alert may therefore appear on several lines; the last one
    is its latest state (see :func:`read_alert_log`).

    Args:
        path: the log file; created with its folders, appended to if it exists.
        kinds: which event kinds write a line (``"opened"`` may be added).
    """

    def __init__(
        self, path: str | os.PathLike[str], kinds: Iterable[str] = ("closed", "acknowledged")
    ) -> None:
        self.path = Path(path)
        self.kinds = frozenset(kinds)
        unknown = self.kinds - {"opened", "closed", "acknowledged"}
        if unknown:
            raise ValueError(f"unknown event kinds {sorted(unknown)} for {self.path}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        self._lock = threading.Lock()
        self._open: dict[str, AlertRecord] = {}
        self._last_time_s: float | None = None

    def emit(self, event: AlertEvent) -> None:
        """Track the event's alert and write a line if its kind is logged."""
        record = event.record
        with self._lock:
            self._last_time_s = event.time_s
            if event.kind == "closed":
                self._open.pop(record.id, None)
            elif record.is_open:
                self._open[record.id] = record
            if event.kind in self.kinds:
                self._write(record, event.kind)

    def flush_open(self, time_s: float | None = None) -> int:
        """Write every alert still open, ending at ``time_s`` (default: the last event's time).

        Returns how many lines were written.
        """
        with self._lock:
            end_s = self._last_time_s if time_s is None else time_s
            for record in self._open.values():
                still_open = record.copy()
                still_open.end_s = end_s
                self._write(still_open, "open")
            return len(self._open)

    def close(self, time_s: float | None = None) -> None:
        """Write the alerts still open (see :meth:`flush_open`) and close the file.

        Safe to call twice. Call ``engine.finish(time_s)`` first and emit its events to log
        every alert as closed at the end of a stream.
        """
        if self._file.closed:
            return
        self.flush_open(time_s)
        with self._lock:
            self._file.close()

    def _write(self, record: AlertRecord, kind: str) -> None:
        line = {**record.to_dict(), "event": kind, "open": record.is_open}
        self._file.write(json.dumps(line, ensure_ascii=False, allow_nan=False) + "\n")
        self._file.flush()
        # fsync per line: a crash or power cut loses nothing already written.
        os.fsync(self._file.fileno())


def read_alert_log(path: str | os.PathLike[str], latest: bool = True) -> list[dict[str, Any]]:
    """Read a :class:`JsonlAlertLog` file back.

    With ``latest`` only the last line of each alert id is kept (its latest state), in the
    order alerts first appeared. A torn last line (crash mid-write) is skipped.
    """
    lines: list[dict[str, Any]] = []
    with Path(path).open(encoding="utf-8") as file:
        for number, text in enumerate(file, start=1):
            if not text.strip():
                continue
            try:
                lines.append(json.loads(text))
            except json.JSONDecodeError:
                logger.warning("skipping unreadable line %d of %s", number, path)
    if not latest:
        return lines
    by_id: dict[str, dict[str, Any]] = {}
    for line in lines:
        by_id[line["id"]] = line
    return list(by_id.values())


_STOP = object()


class WebhookOutbox(Protocol):
    """Where webhook deliveries are kept until delivered (the store: :class:`SqlStore`)."""

    def enqueue_webhook(self, url: str, body: bytes, event_id: str) -> int: ...

    def due_webhooks(self, url: str | None = None, now: float | None = None, limit: int = 100): ...

    def mark_webhook_delivered(self, delivery_id: int) -> None: ...

    def mark_webhook_failed(self, delivery_id: int, next_try: float, error: str) -> None: ...

    def give_up_webhook(self, delivery_id: int, error: str) -> None: ...


class WebhookSink:
    """POSTs each alert event as JSON to a URL from a background thread.

    ``emit`` only puts the event on a bounded queue, so a slow or dead webhook never blocks
    analysis; when the queue is full the event is dropped with a warning. Failed deliveries
    (connection errors, timeouts, HTTP 408, 429 and 5xx) are retried with exponential backoff
    (``backoff_s``, then twice that, ...); after ``retries`` retries, or on another 4xx, the
    event is given up with a logged warning. ``close`` drains the queue.

    The body is :meth:`AlertEvent.to_dict` as JSON (``event_id`` lets receivers drop
    duplicates), or what ``formatter`` makes of the event (e.g. a CAP 1.2 XML message).

    With an ``outbox`` (the store), every event is kept there before it is queued, each try is
    recorded, and deliveries still pending when the process stopped or crashed (of ``camera``,
    when given) are delivered when the next sink for the URL starts: a restart loses none. When
    the outbox cannot be written, the event goes on the in-memory queue as without one.

    Args:
        url: ``http://`` or ``https://`` endpoint.
        timeout_s: per-request timeout.
        retries: retries after the first attempt.
        backoff_s: wait before the first retry; doubles for each further retry.
        queue_size: events waiting for delivery before new ones are dropped.
        headers: extra HTTP headers (for example an authorization token).
        formatter: event -> request body (default: the event as JSON).
        content_type: the body's media type.
        outbox: keeps deliveries across restarts (see above).
        camera: with ``outbox``, resume only this camera's pending deliveries.
    """

    def __init__(
        self,
        url: str,
        timeout_s: float = 5.0,
        retries: int = 3,
        backoff_s: float = 1.0,
        queue_size: int = 1000,
        headers: Mapping[str, str] | None = None,
        formatter: Callable[[AlertEvent], bytes] | None = None,
        content_type: str = "application/json",
        outbox: WebhookOutbox | None = None,
        camera: str | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook URL must start with http:// or https://, got {url!r}")
        if timeout_s <= 0 or retries < 0 or backoff_s < 0 or queue_size < 1:
            raise ValueError(
                f"webhook {url}: need timeout_s > 0, retries >= 0, backoff_s >= 0 and "
                f"queue_size >= 1; got {timeout_s}, {retries}, {backoff_s}, {queue_size}"
            )
        self.url = url
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.headers = {"Content-Type": content_type, **(headers or {})}
        self.formatter = formatter or _json_body
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self.outbox = outbox
        self.camera = camera
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._abort = threading.Event()
        self._closed = False
        self._resume_pending()
        self._thread = threading.Thread(target=self._run, name="crowdwatch-webhook", daemon=True)
        self._thread.start()

    def emit(self, event: AlertEvent) -> None:
        """Queue the event for delivery; never blocks."""
        if self._closed:
            raise RuntimeError(f"webhook sink for {self.url} is closed")
        body = self.formatter(event)
        delivery = None
        if self.outbox is not None:
            try:
                delivery = self.outbox.enqueue_webhook(self.url, body, event.event_id)
            except Exception as error:  # the store is unavailable: memory only, as before
                logger.warning("webhook %s: cannot keep %s in the outbox: %s", self.url,
                               event.event_id, error)  # fmt: skip
        try:
            self._queue.put_nowait((delivery, body))
        except queue.Full:
            self.dropped += 1
            # First drop and every 100th: a stalled receiver must not flood the log either.
            if self.dropped % 100 == 1:
                logger.warning(
                    "webhook %s: queue full, dropped %s (%d dropped so far)",
                    self.url,
                    event.event_id,
                    self.dropped,
                )

    def close(self, timeout_s: float | None = 30.0) -> None:
        """Deliver what is queued, waiting at most ``timeout_s``; then give up on the rest."""
        if self._closed:
            return
        self._closed = True
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=timeout_s)
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        self._thread.join(remaining)
        if self._thread.is_alive():
            self._abort.set()
            kept = "kept in the outbox for the next run" if self.outbox else "given up"
            logger.warning(
                "webhook %s: about %d undelivered events at close, %s",
                self.url,
                self._queue.qsize(),
                kept,
            )

    def _resume_pending(self) -> None:
        """Queue the outbox's deliveries for this URL (and camera) left by an earlier run."""
        if self.outbox is None:
            return
        try:
            later = time.time() + 3650 * 86400.0  # every pending one, whenever it was due
            pending = self.outbox.due_webhooks(self.url, now=later, limit=10_000)
        except Exception as error:
            logger.warning("webhook %s: cannot read the outbox: %s", self.url, error)
            return
        resumed = 0
        for delivery in pending:
            if self.camera is not None and _camera_of(delivery.body) != self.camera:
                continue
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait((delivery.id, bytes(delivery.body)))
                resumed += 1
        if resumed:
            logger.info("webhook %s: resuming %d undelivered event(s)", self.url, resumed)

    def _run(self) -> None:
        while not self._abort.is_set():
            item = self._queue.get()
            if item is _STOP:
                return
            delivery, body = item
            if self._deliver(body, delivery):
                self.delivered += 1
            else:
                self.failed += 1

    def _deliver(self, body: bytes, delivery: int | None = None) -> bool:
        for attempt in range(self.retries + 1):
            # Interruptible backoff: close() may abort a long wait (the outbox keeps it).
            if attempt and self._abort.wait(self.backoff_s * 2 ** (attempt - 1)):
                return False
            error = self._post(body)
            if error is None:
                self._record(delivery, "mark_webhook_delivered")
                return True
            if not _worth_retrying(error):
                break
            next_try = time.time() + self.backoff_s * 2**attempt
            self._record(delivery, "mark_webhook_failed", next_try, str(error))
        logger.warning(
            "webhook %s: giving up on an event after %d tries: %s", self.url, attempt + 1, error
        )
        self._record(delivery, "give_up_webhook", str(error))
        return False

    def _record(self, delivery: int | None, method: str, *args: object) -> None:
        """Note a try's outcome in the outbox (a failure there is logged, not raised)."""
        if delivery is None or self.outbox is None:
            return
        try:
            getattr(self.outbox, method)(delivery, *args)
        except Exception as error:
            logger.warning("webhook %s: cannot update the outbox: %s", self.url, error)

    def _post(self, body: bytes) -> Exception | None:
        """POST once; return the error, or None on a 2xx answer."""
        request = urllib.request.Request(self.url, data=body, headers=self.headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                response.read()
            return None
        except (urllib.error.URLError, OSError, ValueError) as error:
            return error


def _json_body(event: AlertEvent) -> bytes:
    return json.dumps(event.to_dict(), allow_nan=False).encode("utf-8")


def _camera_of(body: bytes) -> str | None:
    try:
        return json.loads(body)["alert"]["camera"]
    except (ValueError, KeyError, TypeError):
        return None


def _worth_retrying(error: Exception) -> bool:
    if isinstance(error, urllib.error.HTTPError):
        return error.code in (408, 429) or error.code >= 500
    return True  # connection refused, timeout, DNS failure: the receiver may come back


class FanoutSink:
    """Sends each event to several sinks; one failing sink does not stop the others.

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> sinks = FanoutSink([JsonlAlertLog(folder / name) for name in ("a.jsonl", "b.jsonl")])
        >>> sinks.close()
    """

    def __init__(self, sinks: Iterable[AlertSink]) -> None:
        self.sinks = list(sinks)

    def emit(self, event: AlertEvent) -> None:
        """Pass the event to every sink, logging (not raising) a sink's failure."""
        for sink in self.sinks:
            try:
                sink.emit(event)
            except Exception:
                logger.exception("alert sink %r failed on %s", sink, event.event_id)

    def close(self) -> None:
        """Close every sink, logging failures."""
        for sink in self.sinks:
            try:
                sink.close()
            except Exception:
                logger.exception("closing alert sink %r failed", sink)
