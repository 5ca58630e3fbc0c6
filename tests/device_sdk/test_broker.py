"""The client against a real Mosquitto: delivery, state, failover, protocol fallback, security."""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from device_sdk import DeviceClient, DeviceConfig, TlsConfig
from device_sdk.wire import Channel, StateMessage, decode_model
from fleetcare.embedded.mosquitto import MosquittoBroker
from tests.device_sdk.conftest import Collector, broker_config, dead_url
from tests.fixtures.fix_mqtt import MosquittoFactory

pytestmark = pytest.mark.services

CollectorFactory = Callable[[MosquittoBroker, str], Collector]


def test_round_trip_exactly_once(
    broker: MosquittoBroker,
    collector_factory: CollectorFactory,
    make_config: Callable[..., DeviceConfig],
    topic_root: str,
) -> None:
    collector = collector_factory(broker, topic_root)
    with DeviceClient(make_config(broker.url, batch_max_entries=200)) as client:
        client.wait_connected(5)
        seqs = [client.record({"temp_c": 20.0 + i % 7, "rpm": 1450.0}) for i in range(2000)]
        seqs += list(client.record_many([(None, {"temp_c": 1.0})] * 500))
        seqs.append(client.usage("operating_hours", 1234.5, unit="h"))
        seqs.append(client.event("reboot", severity="info", attrs={"reason": "update"}))
        client.flush(10)
        health = client.health()
    collector.wait_for(lambda: len(collector.seqs("dev-1")) == len(seqs))
    assert collector.seqs("dev-1") == set(seqs)
    assert collector.errors == []
    assert health.sent == len(seqs) and health.queued == 0 and health.oldest_unsent_age_s is None
    assert health.protocol == "MQTTv5" and health.broker == broker.url
    kinds = {b["kind"] for b in collector.batches}
    assert kinds == {"telemetry", "usage", "events"}
    assert max(b["n"] for b in collector.batches) <= 200
    assert all(b["boot"] and b["up"] is not None for b in collector.batches)


def test_batching_by_size_and_by_time(
    broker: MosquittoBroker,
    collector_factory: CollectorFactory,
    make_config: Callable[..., DeviceConfig],
    topic_root: str,
) -> None:
    collector = collector_factory(broker, topic_root)
    config = make_config(broker.url, batch_linger_s=0.3, batch_max_entries=50)
    with DeviceClient(config) as client:
        client.wait_connected(5)
        started = time.monotonic()
        for i in range(3):  # a partial batch waits for the linger time, then goes as one
            client.record({"a": float(i)})
        collector.wait_for(lambda: len(collector.seqs("dev-1")) == 3, timeout=5)
        waited = time.monotonic() - started
        client.record_many([(None, {"a": 1.0})] * 120)  # full batches go at once
        client.flush(5)
    assert 0.25 <= waited < 3.0
    sizes = [b["n"] for b in collector.batches]
    assert sizes[0] == 3 and max(sizes) == 50 and sum(sizes) == 123


def test_state_messages_online_periodic_and_offline(
    broker: MosquittoBroker,
    collector_factory: CollectorFactory,
    make_config: Callable[..., DeviceConfig],
    topic_root: str,
) -> None:
    collector = collector_factory(broker, topic_root)
    with DeviceClient(make_config(broker.url, state_interval_s=0.2)) as client:
        client.wait_connected(5)
        client.record({"a": 1.0})
        collector.wait_for(lambda: len(collector.messages(Channel.STATE)) >= 3)
    collector.wait_for(lambda: collector.messages(Channel.STATE)[-1]["online"] is False)
    states = [
        decode_model(orjson.dumps(m), StateMessage) for m in collector.messages(Channel.STATE)
    ]
    online = [s for s in states if s.online]
    assert online and all(s.health is not None for s in online)
    assert online[-1].health is not None and online[-1].health.recorded == 1


def test_failover_to_the_next_broker_url(
    broker: MosquittoBroker,
    collector_factory: CollectorFactory,
    make_config: Callable[..., DeviceConfig],
    topic_root: str,
) -> None:
    collector = collector_factory(broker, topic_root)
    with DeviceClient(make_config([dead_url(), broker.url])) as client:
        seq = client.record({"a": 1.0})
        client.wait_connected(5)
        client.flush(5)
        health = client.health()
    assert health.connect_failures >= 1 and "refused" in (health.last_error or "")
    collector.wait_for(lambda: collector.seqs("dev-1") == {seq})


@pytest.mark.slow
def test_falls_back_to_mqtt_311(tmp_path: Path, make_config: Callable[..., DeviceConfig]) -> None:
    amqtt = pytest.importorskip("fleetcare.embedded.amqtt_broker")
    broker = amqtt.AmqttBroker(tmp_path / "amqtt")
    (tmp_path / "amqtt").mkdir()
    broker.start()
    try:
        with DeviceClient(make_config(broker.url)) as client:
            client.record({"a": 1.0})
            client.wait_connected(10)
            client.flush(10)
            assert client.health().protocol == "MQTTv311"
    finally:
        broker.stop()


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(directory: Path, name: str) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, signed by it."""
    directory.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        "req",
        "-x509",
        *ec,
        "-keyout",
        f"{name}-ca.key",
        "-out",
        f"{name}-ca.pem",
        "-days",
        "2",
        "-subj",
        f"/CN={name} test CA",
        cwd=directory,
    )
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for leaf, cn in (("server", "localhost"), ("client", "dev-1")):
        _openssl(
            "req",
            *ec,
            "-keyout",
            f"{leaf}.key",
            "-out",
            f"{leaf}.csr",
            "-subj",
            f"/CN={cn}",
            cwd=directory,
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            f"{leaf}.csr",
            "-CA",
            f"{name}-ca.pem",
            "-CAkey",
            f"{name}-ca.key",
            "-CAcreateserial",
            "-out",
            f"{leaf}.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            cwd=directory,
        )


@pytest.mark.slow
def test_tls_with_pinned_ca_and_client_certificate(
    tmp_path: Path,
    mosquitto_factory: MosquittoFactory,
    make_config: Callable[..., DeviceConfig],
) -> None:
    pki = tmp_path / "pki"
    make_pki(pki, "good")
    make_pki(tmp_path / "other", "other")
    broker = mosquitto_factory(
        broker_config(
            extra_lines=(
                f"cafile {pki / 'good-ca.pem'}",
                f"certfile {pki / 'server.pem'}",
                f"keyfile {pki / 'server.key'}",
                "require_certificate true",
                "use_identity_as_username true",
            )
        )
    )
    url = f"mqtts://127.0.0.1:{broker.port}"
    good = TlsConfig(
        ca_file=pki / "good-ca.pem", cert_file=pki / "client.pem", key_file=pki / "client.key"
    )
    # Nobody subscribes on this broker: the broker's acknowledgement is what is tested here.
    with DeviceClient(make_config(url, tls=good, hold_unrouted=False)) as client:
        client.record({"a": 1.0})
        client.wait_connected(5)
        client.flush(5)

    wrong_ca = TlsConfig(
        ca_file=tmp_path / "other" / "other-ca.pem",
        cert_file=pki / "client.pem",
        key_file=pki / "client.key",
    )
    with DeviceClient(make_config(url, tls=wrong_ca, device_id="dev-2")) as client:
        time.sleep(1.0)
        health = client.health()
    assert not health.connected and "certificate verification failed" in (health.last_error or "")

    no_client_cert = TlsConfig(ca_file=pki / "good-ca.pem")
    with DeviceClient(make_config(url, tls=no_client_cert, device_id="dev-3")) as client:
        time.sleep(1.0)
        assert client.health().connect_failures >= 1 and not client.health().connected


@pytest.mark.slow
def test_password_auth_and_secrets_stay_out_of_logs(
    tmp_path: Path,
    mosquitto_factory: MosquittoFactory,
    make_config: Callable[..., DeviceConfig],
    caplog: pytest.LogCaptureFixture,
) -> None:
    password_file = tmp_path / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(password_file), "dev-1", "right-pw-123"],
        check=True,
        capture_output=True,
    )
    broker = mosquitto_factory(broker_config(allow_anonymous=False, password_file=password_file))
    caplog.set_level(logging.DEBUG)
    with DeviceClient(make_config(broker.url, username="dev-1", password="wrong-pw-456")) as bad:
        time.sleep(1.0)
        health = bad.health()
    assert not health.connected and "refused" in (health.last_error or "")
    # Nobody subscribes on this broker: the broker's acknowledgement is what is tested here.
    right = make_config(broker.url, username="dev-1", password="right-pw-123", hold_unrouted=False)
    with DeviceClient(right) as ok:
        ok.record({"a": 1.0})
        ok.wait_connected(5)
        ok.flush(5)
    logged = caplog.text + repr(health)
    assert "wrong-pw-456" not in logged and "right-pw-123" not in logged
