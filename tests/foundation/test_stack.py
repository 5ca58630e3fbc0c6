"""ServiceStack starts exactly what is not configured, and stops exactly what it started."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from backend.settings import BackendSettings
from fleetcare.embedded import broker as broker_module
from fleetcare.embedded.broker import BROKER_CHOICE_ENV
from fleetcare.embedded.stack import ServiceStack
from fleetcare.errors import EmbeddedServiceError


def _port_open(url: str) -> bool:
    parts = urlsplit(url)
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((parts.hostname or "", parts.port or 1883)) == 0


def test_configured_services_are_used_not_started(clean_env: Path) -> None:
    settings = BackendSettings(
        database_url="postgresql://fc:secret@db.example:5432/fleetcare",
        broker_url="mqtt://broker.example:1883",
        data_dir=clean_env,
    )
    lines: list[str] = []
    with ServiceStack(settings, announce=lines.append) as stack:
        assert stack.database_url == "postgresql://fc:secret@db.example:5432/fleetcare"
        assert stack.broker_url == "mqtt://broker.example:1883"
        assert stack.started == []
        assert stack.broker_supports_mqtt5 is None
    assert lines == []
    assert not clean_env.exists(), "nothing embedded, so nothing written to the data dir"


def test_only_the_unconfigured_service_is_started(clean_env: Path, force_amqtt: None) -> None:
    settings = BackendSettings(
        database_url="postgresql://fc@db.example:5432/fleetcare", data_dir=clean_env
    )
    lines: list[str] = []
    with ServiceStack(settings, announce=lines.append) as stack:
        assert stack.started == ["broker"]
        assert stack.database_url == "postgresql://fc@db.example:5432/fleetcare"
        assert stack.broker_supports_mqtt5 is False
        broker_url = stack.broker_url
        assert _port_open(broker_url)
    assert len(lines) == 1
    assert lines[0].startswith("embedded MQTT broker (amqtt")
    assert broker_url in lines[0]
    assert not _port_open(broker_url)
    assert not (clean_env / "postgres").exists()


def test_nothing_configured_starts_both_and_stops_both(clean_env: Path) -> None:
    settings = BackendSettings(data_dir=clean_env)
    lines: list[str] = []
    with ServiceStack(settings, announce=lines.append) as stack:
        assert stack.started == ["database", "broker"]
        with psycopg.connect(stack.database_url) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("fleetcare",)
        database_url, broker_url = stack.database_url, stack.broker_url
        assert _port_open(broker_url)
    assert [line.split(" ")[1] for line in lines] == ["PostgreSQL", "MQTT"]
    assert str(clean_env / "postgres") in lines[0]
    assert not _port_open(broker_url)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(database_url, connect_timeout=2)
    assert (clean_env / "postgres" / "PG_VERSION").is_file()


def test_services_argument_limits_what_starts(clean_env: Path) -> None:
    with ServiceStack(BackendSettings(data_dir=clean_env), services=("database",)) as stack:
        assert stack.started == ["database"]
        with pytest.raises(EmbeddedServiceError, match="no broker"):
            _ = stack.broker_url


def test_a_failing_broker_stops_the_database_already_started(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BROKER_CHOICE_ENV, "mosquitto")
    monkeypatch.setattr(broker_module, "mosquitto_binary", lambda: None)
    stack = ServiceStack(BackendSettings(data_dir=clean_env))
    with pytest.raises(EmbeddedServiceError, match="mosquitto"):
        stack.start()
    assert stack.started == []
    assert not (clean_env / "postgres" / "postmaster.pid").exists(), "PostgreSQL left running"


def test_the_stack_refuses_reentry(clean_env: Path) -> None:
    settings = BackendSettings(
        database_url="postgresql://fc@db.example/fc",
        broker_url="mqtt://b.example",
        data_dir=clean_env,
    )
    with ServiceStack(settings) as stack, pytest.raises(EmbeddedServiceError, match="already"):
        stack.start()
