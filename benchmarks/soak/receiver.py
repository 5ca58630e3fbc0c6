"""A local webhook receiver: checks each POST's HMAC signature, records idempotency keys."""

from __future__ import annotations

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from backend.care.signing import verify_signature

MAX_BODY_BYTES = 1_000_000


class WebhookReceiver:
    """Listens on 127.0.0.1 (a free port) in a thread; answers 204 to a valid delivery,
    401 to a bad signature, 400 to a request without an idempotency key."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.received: Counter[str] = Counter()
        self.bad_signatures = 0
        self.events: Counter[str] = Counter()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY_BYTES)
                body = self.rfile.read(length)
                key = self.headers.get("Idempotency-Key")
                valid = verify_signature(
                    receiver.secret, body, self.headers.get("X-Fleetcare-Signature")
                )
                with receiver._lock:
                    if not valid:
                        receiver.bad_signatures += 1
                    elif key:
                        receiver.received[key] += 1
                        receiver.events[self.headers.get("X-Fleetcare-Event") or "?"] += 1
                self.send_response(204 if valid and key else (401 if not valid else 400))
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hooks/fleetcare"

    def snapshot(self) -> tuple[dict[str, int], int]:
        with self._lock:
            return dict(self.received), self.bad_signatures

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
