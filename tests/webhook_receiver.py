"""A real HTTP webhook receiver on a loopback port, which can fail its first requests."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookReceiver:
    """Collects the bodies POSTed to ``url``; answers 500 to the first ``fail_first``.

    Example:
        >>> with WebhookReceiver(fail_first=2) as receiver:  # doctest: +SKIP
        ...     post_to(receiver.url)
        >>> receiver.events, receiver.failed  # doctest: +SKIP
    """

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.bodies: list[bytes] = []
        self.failed = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    failing = receiver.failed < receiver.fail_first
                    if failing:
                        receiver.failed += 1
                    else:
                        receiver.bodies.append(body)
                self.send_response(500 if failing else 200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def events(self) -> list[dict]:
        """The JSON events delivered."""
        with self._lock:
            return [json.loads(body) for body in self.bodies]

    def event_ids(self) -> set[str]:
        """The ``event_id`` of every JSON event delivered."""
        return {event["event_id"] for event in self.events}

    def raw_bodies(self) -> list[bytes]:
        """Every body delivered, as sent (e.g. CAP XML)."""
        with self._lock:
            return list(self.bodies)
