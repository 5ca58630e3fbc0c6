"""The console in headless Chromium: sign in with a key, see only your scope, resolve a ticket.

Uses the system's Chromium (Debian package ``chromium``) through Playwright's driver; no
browser is downloaded. A screenshot of every page visited is saved under
``$FLEETCARE_SCREENSHOT_DIR`` (default ``artifacts/console``).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from psycopg_pool import ConnectionPool

from backend.api.app import create_app
from tests.console.conftest import ConsoleWorld

pytestmark = [pytest.mark.services, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
if CHROMIUM is None:
    pytest.skip("no system Chromium (install Debian's chromium package)", allow_module_level=True)

SCREENSHOTS = Path(
    os.environ.get(
        "FLEETCARE_SCREENSHOT_DIR", Path(__file__).resolve().parents[2] / "artifacts" / "console"
    )
)
PHONE = {"width": 390, "height": 844}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def console_url(console_pool: ConnectionPool[Any]) -> Iterator[str]:
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(pool=console_pool), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the console server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/console"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            yield instance
        finally:
            instance.close()


def _shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _sign_in(page: Any, base: str, key: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Log in").click()


def test_field_technician_on_a_phone_resolves_a_ticket(
    console_world: ConsoleWorld, console_url: str, browser: Any
) -> None:
    page = browser.new_page(viewport=PHONE)
    page.goto(f"{console_url}/tickets")
    assert page.url.endswith("/console/login")
    _shot(page, "login")
    _sign_in(page, console_url, console_world.keys["field_north"])
    page.wait_for_url("**/console/tickets")
    north, south = console_world.tickets["north"], console_world.tickets["south"]
    assert page.get_by_role("link", name=f"#{north} bearing wear").is_visible()
    assert page.get_by_role("link", name=f"#{south} bearing wear").count() == 0
    _shot(page, "field-ticket-queue")
    page.get_by_role("link", name=f"#{north} bearing wear").click()
    assert page.locator("svg.chart").is_visible()
    _shot(page, "field-ticket")
    page.get_by_role("button", name="Assign").click()
    page.get_by_role("button", name="Start work").click()
    page.get_by_label("What did you find?").select_option("failure_prevented")
    page.get_by_label("Notes").fill("Bearing replaced before it failed")
    page.get_by_role("button", name="Resolve").click()
    assert page.locator("#ticket-status").inner_text() == "resolved (failure prevented)"
    _shot(page, "field-ticket-resolved")
    response = page.goto(f"{console_url}/tickets/{south}")
    assert response is not None and response.status == 404


def test_csm_sees_their_accounts_and_acknowledges_an_alert(
    console_world: ConsoleWorld, console_url: str, browser: Any
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    _sign_in(page, console_url, console_world.keys["csm_a"])
    page.wait_for_url("**/console/accounts")
    assert page.get_by_role("link", name="Acme Water").is_visible()
    assert page.get_by_role("link", name="Borealis Foods").count() == 0
    _shot(page, "csm-accounts")
    page.get_by_role("link", name="Acme Water").click()
    _shot(page, "csm-account")
    page.get_by_role("button", name="Acknowledge").first.click()
    assert page.get_by_role("status").inner_text() == "Alert acknowledged."
    _shot(page, "csm-alert-acknowledged")
    other = console_world.accounts["Borealis Foods"]
    response = page.goto(f"{console_url}/accounts/{other}")
    assert response is not None and response.status == 404
