"""The API and the console on localhost, with a user and a key for each role a person
signs in with: an admin, a CSM (owner of the demo's accounts) and a field technician (the
region with the most devices).
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import psycopg

if TYPE_CHECKING:
    from fleetcare.cli.demo import DemoRun


@dataclass(frozen=True)
class DemoUser:
    role: str
    name: str
    key: str
    region: str | None = None


def _free_port(host: str, preferred: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind((host, preferred))
            return preferred
        except OSError:
            sock.bind((host, 0))
            return int(sock.getsockname()[1])


def _busiest_region(conn: psycopg.Connection[Any], devices: list[str]) -> str | None:
    row = conn.execute(
        "SELECT COALESCE(s.region, a.region) FROM devices d JOIN accounts a ON a.id = d.account_id"
        " LEFT JOIN sites s ON s.id = d.site_id WHERE d.external_id = ANY(%s)"
        " GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
        (devices,),
    ).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def create_demo_users(conn: psycopg.Connection[Any], devices: list[str]) -> list[DemoUser]:
    """An admin, a CSM owning the fleet's accounts and a field user; one new key each."""
    from backend.api.auth import create_api_key, create_user

    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    users = []
    admin = create_user(conn, f"Demo admin ({stamp})", "admin")
    users.append(DemoUser("admin", "Demo admin", create_api_key(conn, admin, "demo")))
    csm = create_user(conn, f"Demo CSM ({stamp})", "csm")
    conn.execute(
        "UPDATE accounts SET csm_user_id = %s WHERE id IN"
        " (SELECT account_id FROM devices WHERE external_id = ANY(%s))",
        (csm, devices),
    )
    users.append(DemoUser("csm", "Demo CSM", create_api_key(conn, csm, "demo")))
    region = _busiest_region(conn, devices)
    field = create_user(conn, f"Demo technician ({stamp})", "field", region=region)
    users.append(DemoUser("field", "Demo technician", create_api_key(conn, field, "demo"), region))
    conn.commit()
    return users


class ApiStep:
    """Serve the API and the console with uvicorn in a thread; print where and the keys.

    Args:
        devices: the demo fleet's device ids (the CSM owns their accounts), read when the
            step runs.
    """

    title = "API and console"

    def __init__(self, devices: Any) -> None:
        self._devices = devices
        self.base_url = ""
        self.users: list[DemoUser] = []

    def run(self, demo: DemoRun) -> None:
        import uvicorn

        from backend.api.app import create_app

        database_url = demo.services().database_url
        with psycopg.connect(database_url) as conn:
            self.users = create_demo_users(conn, list(self._devices()))
        host = demo.settings.api_host
        port = _free_port(host, demo.settings.api_port)
        app = create_app(demo.settings.model_copy(update={"database_url": database_url}))
        server = uvicorn.Server(
            uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
        )
        thread = threading.Thread(target=server.run, name="api", daemon=True)
        thread.start()
        demo.resources.callback(thread.join, 10)
        demo.resources.callback(setattr, server, "should_exit", True)
        deadline = time.monotonic() + 20
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not server.started:
            raise RuntimeError(f"the API did not start on {host}:{port}")
        self.base_url = f"http://{host}:{port}"
        demo.note("console", f"{self.base_url}/console (sign in with a key below)")
        demo.note("API", f"{self.base_url}/docs")
        for user in self.users:
            where = f", region {user.region}" if user.region else ""
            demo.note(f"API key ({user.role}{where})", user.key)

    def console_answers(self) -> bool:
        """Whether the console's sign-in page and the admin's ticket list answer."""
        if not self.base_url:
            return False
        admin = next(u for u in self.users if u.role == "admin")
        try:
            page = httpx.get(f"{self.base_url}/console/login", timeout=5)
            tickets = httpx.get(
                f"{self.base_url}/tickets", headers={"X-API-Key": admin.key}, timeout=5
            )
        except httpx.HTTPError:
            return False
        return page.status_code == 200 and tickets.status_code == 200
