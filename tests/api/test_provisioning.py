"""Provisioning: credentials shown once and stored as mosquitto hashes, checked by a real broker.

The broker is a private mosquitto started with the generated password and ACL files and
anonymous access off: a device reaches only its own topics, never another device's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from backend.api.mosquitto_passwd import hash_password, verify_password
from fleetcare.cli.app import build_app
from fleetcare.embedded.mosquitto import MosquittoBroker, MosquittoConfig
from tests.api.conftest import TOPIC_ROOT
from tests.api.fleet import Fleet
from tests.api.mqtt_probe import MqttProbe

pytestmark = pytest.mark.services


def _register(client: TestClient, fleet: Fleet, external_id: str, **extra: Any) -> dict[str, Any]:
    response = client.post(
        "/provisioning/devices",
        headers=fleet.headers("provisioner"),
        json={"external_id": external_id, "model": fleet.model_name, **extra},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_mosquitto_passwd_hashes_verify_and_ours_match_its_format() -> None:
    binary = "/usr/bin/mosquitto_passwd"
    if not Path(binary).exists():
        pytest.skip("mosquitto_passwd not installed")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pw"
        subprocess.run([binary, "-b", "-c", str(path), "dev", "s3cret"], check=True)
        theirs = path.read_text().strip().split(":", 1)[1]
    assert verify_password("s3cret", theirs)
    assert not verify_password("s3cret!", theirs)
    ours = hash_password("s3cret")
    assert ours.split("$")[1:3] == theirs.split("$")[1:3] == ["7", "101"]
    assert len(ours) == len(theirs)


def test_registration_shows_the_password_once_and_stores_a_hash(
    client: TestClient, fleet: Fleet, api_database_url: str
) -> None:
    issued = _register(client, fleet, "reg-1", site_id=fleet.site_ids["acme"])
    assert issued["username"] == "reg-1"
    assert f"{TOPIC_ROOT}/v1/reg-1/telemetry" in issued["publish_topics"]
    assert issued["subscribe_topics"] == [
        f"{TOPIC_ROOT}/v1/reg-1/commands",
        f"{TOPIC_ROOT}/v1/reg-1/config/desired",
    ]
    with psycopg.connect(api_database_url) as conn:
        row = conn.execute(
            "SELECT credential_hash, account_id, status FROM devices WHERE external_id = 'reg-1'"
        ).fetchone()
    assert row is not None
    assert row[0] != issued["password"] and verify_password(issued["password"], row[0])
    assert row[1] == fleet.account_ids["acme"] and row[2] == "provisioned"
    device = client.get(f"/devices/{issued['device_id']}", headers=fleet.headers("admin")).json()
    assert "password" not in device and device["credential_issued_at"] is not None


def test_registration_errors(client: TestClient, fleet: Fleet) -> None:
    headers = fleet.headers("provisioner")
    _register(client, fleet, "reg-dup")
    duplicate = client.post(
        "/provisioning/devices",
        headers=headers,
        json={"external_id": "reg-dup", "model": fleet.model_name},
    )
    assert duplicate.status_code == 409
    unknown_model = client.post(
        "/provisioning/devices", headers=headers, json={"external_id": "reg-x", "model": "nope"}
    )
    assert unknown_model.status_code == 422
    assert unknown_model.json()["error"]["details"] == {"field": "model"}
    wrong_site = client.post(
        "/provisioning/devices",
        headers=headers,
        json={
            "external_id": "reg-y",
            "model": fleet.model_name,
            "account_id": fleet.account_ids["acme"],
            "site_id": fleet.site_ids["globex"],
        },
    )
    assert wrong_site.status_code == 422
    bad_id = client.post(
        "/provisioning/devices",
        headers=headers,
        json={"external_id": "a/b/#", "model": fleet.model_name},
    )
    assert bad_id.status_code == 422


class SecuredBroker:
    """Writes the broker config with ``fleetcare api provision broker-config`` and runs it."""

    def __init__(
        self, out: Path, database_url: str, factory: Callable[..., MosquittoBroker]
    ) -> None:
        self.out = out
        self.env = {"FLEETCARE_DATABASE_URL": database_url, "FLEETCARE_TOPIC_ROOT": TOPIC_ROOT}
        self.factory = factory

    def write_config(self) -> None:
        result = CliRunner().invoke(
            build_app(), ["api", "provision", "broker-config", "--out", str(self.out)], env=self.env
        )
        assert result.exit_code == 0, result.output
        assert (self.out / "passwords").stat().st_mode & 0o077 == 0

    def start(self) -> MosquittoBroker:
        self.write_config()
        config = MosquittoConfig(
            allow_anonymous=False,
            persistence=False,
            password_file=self.out / "passwords",
            acl_file=self.out / "acl",
        )
        return self.factory(config)


@pytest.fixture
def secured_broker(
    tmp_path: Path, api_database_url: str, mosquitto_factory: Callable[..., MosquittoBroker]
) -> SecuredBroker:
    return SecuredBroker(tmp_path / "broker", api_database_url, mosquitto_factory)


def test_broker_enforces_logins_and_topics(
    client: TestClient, fleet: Fleet, secured_broker: SecuredBroker
) -> None:
    dev_a = _register(client, fleet, "mq-a")
    dev_b = _register(client, fleet, "mq-b")
    gateway = _register(client, fleet, "mq-gw")
    child = _register(client, fleet, "mq-child", gateway_external_id="mq-gw")
    service = client.post(
        "/provisioning/service-accounts",
        headers=fleet.headers("admin"),
        json={"username": "svc-ingest"},
    )
    assert service.status_code == 201, service.text
    broker = secured_broker.start()
    root = f"{TOPIC_ROOT}/v1"
    probes: list[MqttProbe] = []

    def probe(username: str, password: str | None) -> MqttProbe:
        made = MqttProbe(broker.port, username, password)
        probes.append(made)
        return made

    try:
        assert probe("mq-a", "wrong-password").connect() != 0
        assert probe("mq-a", None).connect() != 0
        assert probe("nobody", dev_a["password"]).connect() != 0

        backend = probe("svc-ingest", service.json()["password"])
        assert backend.connect() == 0
        backend.subscribe(f"{TOPIC_ROOT}/#")
        a = probe("mq-a", dev_a["password"])
        assert a.connect() == 0

        # Publishing as another device is refused: nothing arrives before a's own marker.
        a.publish(f"{root}/mq-b/telemetry", b"forged")
        a.publish(f"{root}/mq-b/commands", b"forged command")
        a.publish(f"{root}/mq-a/telemetry", b"own")
        received = backend.wait_for(f"{root}/mq-a/telemetry", b"own")
        assert received == [(f"{root}/mq-a/telemetry", b"own")]

        # A device reads its own commands, never another device's.
        a.subscribe(f"{root}/mq-b/commands", f"{root}/mq-a/commands", f"{root}/+/telemetry")
        b = probe("mq-b", dev_b["password"])
        assert b.connect() == 0
        b.publish(f"{root}/mq-b/telemetry", b"b telemetry")
        backend.publish(f"{root}/mq-b/commands", b"for b")
        backend.publish(f"{root}/mq-a/commands", b"for a")
        got = a.wait_for(f"{root}/mq-a/commands", b"for a")
        assert got == [(f"{root}/mq-a/commands", b"for a")]

        # A gateway forwards for the devices behind it, and only for them.
        gw = probe("mq-gw", gateway["password"])
        assert gw.connect() == 0
        gw.publish(f"{root}/mq-a/telemetry", b"gw forged")
        gw.publish(f"{root}/{child['username']}/telemetry", b"child via gw")
        got = backend.wait_for(f"{root}/mq-child/telemetry", b"child via gw")
        assert (f"{root}/mq-a/telemetry", b"gw forged") not in got
    finally:
        for made in probes:
            made.close()


def test_rotated_credentials_replace_the_old_ones_after_reload(
    client: TestClient, fleet: Fleet, secured_broker: SecuredBroker
) -> None:
    issued = _register(client, fleet, "mq-rot")
    broker = secured_broker.start()
    first = MqttProbe(broker.port, "mq-rot", issued["password"])
    assert first.connect() == 0
    first.close()
    rotated = client.post(
        f"/provisioning/devices/{issued['device_id']}/credentials",
        headers=fleet.headers("provisioner"),
    )
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["password"] != issued["password"]
    secured_broker.write_config()
    assert broker.pid is not None
    os.kill(broker.pid, signal.SIGHUP)
    deadline = time.monotonic() + 5
    while True:
        old = MqttProbe(broker.port, "mq-rot", issued["password"])
        refused = old.connect() != 0
        old.close()
        if refused or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert refused
    new = MqttProbe(broker.port, "mq-rot", rotated.json()["password"])
    assert new.connect() == 0
    new.close()
