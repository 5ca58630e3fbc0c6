"""Ingest settings: ``FLEETCARE_INGEST_*`` variables and the ``[ingest]`` table of the TOML file."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.ingest.pending import Inbound, PendingWindow
from backend.ingest.settings import IngestSettings
from fleetcare.config import load_settings
from fleetcare.errors import ConfigError


def test_environment_and_toml_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "fleetcare.toml"
    config.write_text(
        'topic_root = "ignored-here"\n[ingest]\nbatch_max_messages = 123\nmax_future_s = 5\n'
    )
    monkeypatch.setenv("FLEETCARE_INGEST_MAX_FUTURE_S", "7.5")
    monkeypatch.setenv("FLEETCARE_INGEST_METRICS_PORT", "none")
    settings = load_settings(IngestSettings, config)
    assert settings.batch_max_messages == 123
    assert settings.max_future_s == 7.5  # the environment wins over the file
    assert settings.metrics_port is None


def test_bad_values_are_refused() -> None:
    with pytest.raises(ConfigError):
        load_settings(IngestSettings, batch_max_messages=10_000, max_pending_messages=100)
    with pytest.raises(ConfigError):
        load_settings(IngestSettings, liveness_interval_s=400, offline_after_s=600)


def test_the_window_is_bounded_and_closes() -> None:
    window = PendingWindow(max_messages=2, max_bytes=1024)
    assert window.put(Inbound("t", b"x"))
    assert window.put(Inbound("t", b"y"))
    taken = window.take(10, 0.0)
    assert [m.payload for m in taken] == [b"x", b"y"]
    assert window.held == 2  # taken, not yet released
    window.close()
    assert not window.put(Inbound("t", b"z")), "a closed window refuses without blocking"
    window.release(taken)
    assert (window.held, window.held_bytes, window.peak_held) == (0, 0, 2)


def test_take_stops_at_the_byte_budget() -> None:
    window = PendingWindow(max_messages=10, max_bytes=10_000)
    for _ in range(5):
        window.put(Inbound("t", b"x" * 100))
    assert len(window.take(10, 0.0, max_bytes=250)) == 3
