"""A local webhook receiver for the demo: it checks each delivery's signature and counts.

The step starts an HTTP server on a free loopback port, registers it as a webhook for every
event (replacing the subscriptions earlier demo runs left behind), and counts what arrives:
deliveries with a valid ``X-Fleetcare-Signature``, per event, and any with a bad one
(answered 401, so the outbox retries and shows the failure).
"""

from __future__ import annotations

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fleetcare.cli.demo import DemoRun

HOOK_PATH = "/fleetcare-demo/hook"
MAX_BODY = 1_000_000


class DeliveryCounts:
    """What the receiver saw; safe to read from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_event: Counter[str] = Counter()
        self.bad_signature = 0
        self.keys: set[str] = set()

    def verified(self, event: str, key: str) -> None:
        with self._lock:
            self.by_event[event] += 1
            self.keys.add(key)

    def rejected(self) -> None:
        with self._lock:
            self.bad_signature += 1

    @property
    def delivered(self) -> int:
        with self._lock:
            return sum(self.by_event.values())

    @property
    def distinct(self) -> int:
        with self._lock:
            return len(self.keys)


def _handler(secret: str, counts: DeliveryCounts) -> type[BaseHTTPRequestHandler]:
    from backend.care.signing import (
        EVENT_HEADER,
        IDEMPOTENCY_HEADER,
        SIGNATURE_HEADER,
        verify_signature,
    )

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if self.path != HOOK_PATH or not 0 < length <= MAX_BODY:
                self.send_error(404 if self.path != HOOK_PATH else 400)
                return
            body = self.rfile.read(length)
            if not verify_signature(secret, body, self.headers.get(SIGNATURE_HEADER)):
                counts.rejected()
                self.send_error(401)
                return
            counts.verified(
                self.headers.get(EVENT_HEADER) or "unknown",
                self.headers.get(IDEMPOTENCY_HEADER) or "",
            )
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return  # the live view shows the counts

    return Handler


class WebhookReceiverStep:
    """Start the receiver and subscribe it to every care event."""

    title = "webhook receiver"

    def __init__(self) -> None:
        self.counts = DeliveryCounts()
        self.url = ""

    def run(self, demo: DemoRun) -> None:
        import secrets

        import psycopg

        from backend.care.webhooks import WebhookCreate, create_webhook

        secret = secrets.token_urlsafe(32)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(secret, self.counts))
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, name="webhooks", daemon=True)
        thread.start()
        demo.resources.callback(server.server_close)
        demo.resources.callback(server.shutdown)
        port = server.server_address[1]
        self.url = f"http://127.0.0.1:{port}{HOOK_PATH}"
        with psycopg.connect(demo.services().database_url) as conn:
            conn.execute(
                "UPDATE webhooks SET enabled = false WHERE url LIKE %s AND enabled",
                (f"http://127.0.0.1:%{HOOK_PATH}",),
            )
            create_webhook(conn, WebhookCreate(url=self.url, secret=secret), actor="demo")
            conn.commit()
        demo.note("webhook receiver", f"{self.url} (every event, signatures checked)")
