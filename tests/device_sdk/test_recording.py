"""record/usage/event: validation at the call site, nothing queued on bad input, no blocking.

No broker is needed: the client points at a port nothing listens on, which also shows that
recording never waits for the network.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from device_sdk import (
    ClientStateError,
    ConfigError,
    DeviceClient,
    DeviceConfig,
    InvalidInputError,
    QueueLockedError,
    Reading,
    UnknownMetricError,
)
from tests.device_sdk.conftest import dead_url


@pytest.fixture
def offline(make_config: Callable[..., DeviceConfig]) -> Iterator[DeviceClient]:
    client = DeviceClient(make_config(dead_url(), metric_catalogue=None))
    client.start()
    yield client
    client.stop(timeout=0)


@pytest.fixture
def catalogued(make_config: Callable[..., DeviceConfig]) -> Iterator[DeviceClient]:
    config = make_config(dead_url(), metric_catalogue=frozenset({"temp_c", "rpm"}))
    with DeviceClient(config) as client:
        yield client


def queued(client: DeviceClient) -> int:
    return client.health().queued


def test_record_returns_increasing_sequence_numbers(offline: DeviceClient) -> None:
    first = offline.record({"temp_c": 21.5, "rpm": 1450, "door": None})
    second = offline.record({"temp_c": 21.6}, at=datetime.now(UTC))
    assert second == first + 1
    many = offline.record_many([(None, {"a": 1.0}), Reading(datetime.now(UTC), {"a": 2.0})])
    assert many == range(second + 1, second + 3)
    assert offline.usage("wash_cycle", duration_s=3420, attrs={"program": "eco"}) == many.stop
    assert offline.event("fault", severity="error", code="E42", message="dry") == many.stop + 1
    health = offline.health()
    assert health.queued == health.recorded == 6 and health.last_seq == many.stop + 1
    assert not health.connected and health.connect_failures >= 0


def test_numbers_that_are_not_floats_are_accepted(offline: DeviceClient) -> None:
    offline.record({"i": 3, "f": Fraction(3, 2), "big": 10**300})


@pytest.mark.parametrize(
    ("metrics", "field"),
    [
        ({"temp_c": math.nan}, "metrics['temp_c']"),
        ({"temp_c": math.inf}, "metrics['temp_c']"),
        ({"temp_c": -math.inf}, "metrics['temp_c']"),
        ({"temp_c": 10**400}, "metrics['temp_c']"),
        ({"temp_c": True}, "metrics['temp_c']"),
        ({"temp_c": "21.5"}, "metrics['temp_c']"),
        ({"temp_c": [1.0]}, "metrics['temp_c']"),
        ({"bad name": 1.0}, "metrics key"),
        ({"": 1.0}, "metrics key"),
        ({1: 1.0}, "metrics key"),
        ({}, "metrics"),
        ({f"m{i}": 1.0 for i in range(257)}, "metrics"),
    ],
)
def test_bad_readings_raise_and_queue_nothing(
    offline: DeviceClient, metrics: dict[Any, Any], field: str
) -> None:
    before = queued(offline)
    with pytest.raises(InvalidInputError) as caught:
        offline.record(metrics)
    assert caught.value.field == field
    assert queued(offline) == before


def test_naive_or_pre_epoch_times_are_refused(offline: DeviceClient) -> None:
    with pytest.raises(InvalidInputError, match="timezone-aware"):
        offline.record({"a": 1.0}, at=datetime(2026, 1, 1))
    with pytest.raises(InvalidInputError, match="1970"):
        offline.record({"a": 1.0}, at=datetime(1969, 1, 1, tzinfo=UTC))
    with pytest.raises(InvalidInputError, match="datetime"):
        offline.record({"a": 1.0}, at=1732530000)  # type: ignore[arg-type]
    assert queued(offline) == 0


def test_catalogue_refuses_unknown_metrics(catalogued: DeviceClient) -> None:
    catalogued.record({"temp_c": 1.0, "rpm": 2.0})
    with pytest.raises(UnknownMetricError, match="vibration"):
        catalogued.record({"temp_c": 1.0, "vibration": 0.1})
    assert queued(catalogued) == 1


def test_record_many_is_all_or_nothing(offline: DeviceClient) -> None:
    good = [(None, {"a": float(i)}) for i in range(10)]
    with pytest.raises(InvalidInputError) as caught:
        offline.record_many([*good, (None, {"a": math.nan}), *good])
    assert caught.value.field == "readings[10].metrics['a']"
    with pytest.raises(InvalidInputError, match="more than"):
        offline.record_many([(None, {"a": 1.0})] * 10_001)
    with pytest.raises(InvalidInputError, match="pair"):
        offline.record_many([{"a": 1.0}])  # type: ignore[list-item]
    with pytest.raises(InvalidInputError, match="no readings"):
        offline.record_many([])
    assert queued(offline) == 0


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.usage("bad name"), "name"),
        (lambda c: c.usage("s", math.nan), "value"),
        (lambda c: c.usage("s", duration_s=-1), "duration_s"),
        (lambda c: c.usage("s", unit=""), "unit"),
        (lambda c: c.usage("s", attrs={"k": [1]}), "attrs['k']"),
        (lambda c: c.usage("s", attrs={f"k{i}": 1 for i in range(33)}), "attrs"),
        (lambda c: c.event("fault", severity="fatal"), "severity"),
        (lambda c: c.event("fault", message="x" * 1025), "message"),
        (lambda c: c.event("fault", code=""), "code"),
        (lambda c: c.event("bad type"), "event_type"),
    ],
)
def test_bad_usage_and_events_raise_and_queue_nothing(
    offline: DeviceClient, call: Callable[[DeviceClient], int], field: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        call(offline)
    assert caught.value.field == field
    assert queued(offline) == 0


def test_recording_never_waits_for_the_network(offline: DeviceClient) -> None:
    start = time.perf_counter()
    for i in range(5000):
        offline.record({"a": float(i)})
    assert time.perf_counter() - start < 2.0  # ~0.1 s here; the broker is unreachable


def test_lifecycle_errors(make_config: Callable[..., DeviceConfig]) -> None:
    client = DeviceClient(make_config(dead_url()))
    with pytest.raises(ClientStateError):
        client.record({"a": 1.0})
    with pytest.raises(ClientStateError):
        client.health()
    client.start()
    with pytest.raises(ClientStateError):
        client.start()
    with pytest.raises(QueueLockedError):
        DeviceClient(client.config).start()  # same queue_path
    client.stop(timeout=0)
    with pytest.raises(ClientStateError):
        client.record({"a": 1.0})
    assert client.health().connected is False  # last snapshot stays readable
    client.start()  # restartable
    assert client.record({"a": 1.0}) == 1
    client.stop(timeout=0)


def test_sequence_continues_across_restarts(make_config: Callable[..., DeviceConfig]) -> None:
    config = make_config(dead_url())
    with DeviceClient(config) as client:
        last = client.record_many([(None, {"a": 1.0})] * 100).stop - 1
    with DeviceClient(config) as client:
        assert client.record({"a": 1.0}) == last + 1
        assert client.health().queued == 101


def test_config_errors_and_secrets(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        DeviceConfig(
            device_id="bad id",
            broker_urls=["mqtt://user:pw@host"],
            queue_path=tmp_path,
            batch_max_entries=0,
        )
    fields = [name for name, _message in caught.value.problems]
    assert fields == ["device_id", "broker_urls", "batch_max_entries"]
    assert "pw" not in str(caught.value)
    config = DeviceConfig(
        device_id="d",
        broker_urls="mqtts://h",
        queue_path=tmp_path,
        username="d",
        password="s3cret-pw",
        tls={"key_password": "k3y-pw"},
    )
    shown = repr(config) + str(config.redacted())
    assert "s3cret-pw" not in shown and "k3y-pw" not in shown
    assert config.brokers[0].port == 8883 and config.brokers[0].tls


def test_fsync_durability_syncs_before_returning(
    make_config: Callable[..., DeviceConfig],
) -> None:
    with DeviceClient(make_config(dead_url(), durability="fsync")) as client:
        client.record({"a": 1.0})
        client.record_many([(None, {"a": 2.0})] * 10)
        client.event("billing", attrs={"kwh": 1.5})
        queue = client._core._queue  # white-box: nothing is left unsynced
        assert queue is not None and not queue.unsynced
        assert client.health().queued == 12


def test_health_reports_the_age_of_the_oldest_unsent_entry(offline: DeviceClient) -> None:
    assert offline.health().oldest_unsent_age_s is None
    offline.record({"a": 1.0})
    time.sleep(0.3)
    offline.record({"a": 2.0})
    age = offline.health().oldest_unsent_age_s
    assert age is not None and 0.25 <= age < 5
    assert offline.health().queue_bytes > 0 and offline.health().queue_fill < 0.01
