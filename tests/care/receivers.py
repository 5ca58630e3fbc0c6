"""Local receivers for the notification tests: a webhook endpoint and a tiny SMTP server,
each in a thread, each recording what it got."""

from __future__ import annotations

import json
import socketserver
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from backend.care.signing import verify_signature


@dataclass
class WebhookLog:
    secret: str
    requests: int = 0
    bad_signatures: int = 0
    processed: dict[str, dict[str, Any]] = field(default_factory=dict)
    duplicates: int = 0
    timestamps: list[int] = field(default_factory=list)
    lose_first_response_of: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


class WebhookReceiver:
    """An HTTP endpoint that verifies signatures and deduplicates by Idempotency-Key.

    ``stop()`` closes the socket (the receiver is down: connections are refused) and
    ``start()`` opens it again on the same port.
    """

    def __init__(self, secret: str) -> None:
        self.log = WebhookLog(secret)
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        log = self.log

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                key = self.headers.get("Idempotency-Key", "")
                with log.lock:
                    log.requests += 1
                    if not verify_signature(
                        log.secret, body, self.headers.get("X-Fleetcare-Signature")
                    ):
                        log.bad_signatures += 1
                        self.send_response(401)
                        self.end_headers()
                        return
                    log.timestamps.append(int(self.headers.get("X-Fleetcare-Timestamp", "0")))
                    if key in log.processed:
                        log.duplicates += 1
                    else:
                        log.processed[key] = json.loads(body)
                    lose = key in log.lose_first_response_of
                    log.lose_first_response_of.discard(key)
                # processed, but the sender sees a failure (a lost response)
                self.send_response(500 if lose else 204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT."""

    server: SmtpServer

    def _reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self._reply("220 test ESMTP")
        recipients: list[str] = []
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            command = raw.decode().strip()
            verb = command[:4].upper()
            if verb in ("EHLO", "HELO"):
                self._reply("250 test")
            elif verb == "MAIL":
                recipients = []
                self._reply("250 OK")
            elif verb == "RCPT":
                recipients.append(command.split(":", 1)[1].strip(" <>"))
                self._reply("250 OK")
            elif verb == "DATA":
                self._reply("354 end with .")
                lines = []
                while True:
                    line = self.rfile.readline()
                    if line in (b".\r\n", b".\n", b""):
                        break
                    lines.append(line.decode())
                self.server.messages.append((recipients, "".join(lines)))
                self._reply("250 queued")
            elif verb == "QUIT":
                self._reply("221 bye")
                return
            else:
                self._reply("250 OK")


class SmtpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SmtpHandler)
        self.messages: list[tuple[list[str], str]] = []
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)
