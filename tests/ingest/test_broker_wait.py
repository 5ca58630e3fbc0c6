"""Ingest waits for a broker that is not up yet, and says so instead of staying silent."""

from __future__ import annotations

import logging
import socket

import pytest

from backend.ingest.receiver import choose_protocol
from fleetcare.errors import ServiceUnavailableError


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_waiting_for_an_absent_broker_is_logged_once_then_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"mqtt://127.0.0.1:{_closed_port()}"
    caplog.set_level(logging.INFO, logger="fleetcare.ingest")
    with pytest.raises(ServiceUnavailableError, match="unreachable"):
        choose_protocol(url, timeout_s=0.5, wait_s=2.5)
    waiting = [r.getMessage() for r in caplog.records if "waiting up to" in r.getMessage()]
    assert len(waiting) == 1
    assert waiting[0].startswith(f"waiting up to 2 s for the mqtt broker at {url} (")
    assert "refused" in waiting[0].lower()
