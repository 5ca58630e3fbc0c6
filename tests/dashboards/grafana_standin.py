"""A small stand-in for Grafana's HTTP API: the data source, folder and dashboard endpoints
``fleetcare dashboards push`` uses, in memory, recording every request.

Behaves like Grafana 11 where push depends on it: 404 for a missing uid, 409 for a data
source or folder uid that exists, 412 when a dashboard exists and ``overwrite`` is false,
401 without the right bearer token, an ``id`` and a ``version`` added to stored dashboards.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: Any


@dataclass
class GrafanaState:
    token: str
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    next_id: int = 1
    lock: threading.Lock = field(default_factory=threading.Lock)

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def writes(self) -> list[Request]:
        return [r for r in self.requests if r.method != "GET"]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        return

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        state = self.server.state
        with state.lock:
            state.requests.append(Request(method, self.path, body))
            if self.headers.get("Authorization") != f"Bearer {state.token}":
                self._reply(401, {"message": "Unauthorized"})
                return
            status, reply = _route(state, method, self.path.split("?")[0], body)
        self._reply(status, reply)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")


def _route(state: GrafanaState, method: str, path: str, body: Any) -> tuple[int, Any]:
    parts = path.strip("/").split("/")
    if parts[:1] != ["api"]:
        return 404, {"message": "Not found"}
    parts = parts[1:]
    if parts[:2] == ["datasources", "uid"] and len(parts) == 3:
        uid = parts[2]
        if uid not in state.datasources:
            return 404, {"message": "Data source not found"}
        if method == "GET":
            return 200, _public_datasource(state.datasources[uid])
        if method == "PUT":
            state.datasources[uid] = {**body, "id": state.datasources[uid]["id"]}
            return 200, {"message": "Datasource updated", "datasource": body}
    if parts == ["datasources"] and method == "POST":
        if body["uid"] in state.datasources:
            return 409, {"message": "data source with the same uid already exists"}
        state.datasources[body["uid"]] = {**body, "id": state.new_id()}
        return 200, {"message": "Datasource added", "datasource": body}
    if parts[:1] == ["folders"] and len(parts) == 2:
        uid = parts[1]
        if uid not in state.folders:
            return 404, {"message": "folder not found"}
        if method == "GET":
            return 200, state.folders[uid]
        if method == "PUT":
            state.folders[uid]["title"] = body["title"]
            return 200, state.folders[uid]
    if parts == ["folders"] and method == "POST":
        if body.get("uid") in state.folders:
            return 409, {"message": "a folder with the same uid already exists"}
        state.folders[body["uid"]] = {"uid": body["uid"], "title": body["title"], "id": 1}
        return 200, state.folders[body["uid"]]
    if parts[:2] == ["dashboards", "uid"] and len(parts) == 3 and method == "GET":
        stored = state.dashboards.get(parts[2])
        if stored is None:
            return 404, {"message": "Dashboard not found"}
        return 200, stored
    if parts == ["dashboards", "db"] and method == "POST":
        model = body["dashboard"]
        existing = state.dashboards.get(model["uid"])
        if existing is not None and not body.get("overwrite"):
            return 412, {"message": "The dashboard has been changed by someone else"}
        if body.get("folderUid") not in state.folders:
            return 400, {"message": "folder not found"}
        version = existing["dashboard"]["version"] + 1 if existing else 1
        ident = existing["dashboard"]["id"] if existing else state.new_id()
        state.dashboards[model["uid"]] = {
            "dashboard": {**model, "id": ident, "version": version},
            "meta": {"folderUid": body["folderUid"], "version": version},
        }
        return 200, {"id": ident, "uid": model["uid"], "status": "success", "version": version}
    return 404, {"message": "Not found"}


def _public_datasource(stored: dict[str, Any]) -> dict[str, Any]:
    """What Grafana returns: secure fields are never read back, only flagged."""
    public = {k: v for k, v in stored.items() if k != "secureJsonData"}
    public["secureJsonFields"] = dict.fromkeys(stored.get("secureJsonData", {}), True)
    return public


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: GrafanaState) -> None:
        self.state = state
        super().__init__(("127.0.0.1", 0), _Handler)


@contextmanager
def grafana_standin(token: str) -> Iterator[tuple[str, GrafanaState]]:
    """Serve the stand-in on a free loopback port: yields its base URL and its state."""
    state = GrafanaState(token)
    server = _Server(state)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
