"""A worker made with ``end_session`` leaves no session behind on the broker (the demo's
worker: a session left subscribed would have the broker queue every later run's readings
for a worker that never comes back)."""

from __future__ import annotations

import secrets

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from backend.ingest.metrics import IngestMetrics
from backend.ingest.pending import PendingWindow
from backend.ingest.receiver import Receiver
from fleetcare.embedded.mosquitto import MosquittoBroker
from tests.ingest.helpers import wait_until

pytestmark = [pytest.mark.services]


def _session_present(broker: MosquittoBroker, client_id: str) -> bool:
    """Connect as ``client_id`` without a clean start: does the broker still hold a session?"""
    present: list[bool] = []
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )
    client.on_connect = lambda c, u, flags, rc, p: present.append(bool(flags.session_present))
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 60
    client.connect("127.0.0.1", broker.port, 30, clean_start=False, properties=props)
    client.loop_start()
    try:
        assert wait_until(lambda: bool(present), 10)
    finally:
        client.disconnect()
        client.loop_stop()
    return present[0]


@pytest.mark.parametrize("end_session", [False, True])
def test_the_session_outlives_the_worker_only_when_it_should(
    mosquitto: MosquittoBroker, end_session: bool
) -> None:
    client_id = f"ingest-{secrets.token_hex(4)}"
    receiver = Receiver(
        mosquitto.url, "root", client_id, PendingWindow(100, 1 << 20), IngestMetrics(),
        protocol="5", subscription="plain", end_session=end_session,
    )  # fmt: skip
    receiver.start()
    assert receiver.wait_connected(10)
    receiver.stop()
    assert _session_present(mosquitto, client_id) is (not end_session)


def test_the_demo_run_has_a_session_of_its_own_that_the_broker_drops_soon() -> None:
    from backend.ingest.demo import DEMO_SESSION_EXPIRY_S, demo_ingest_settings
    from backend.ingest.settings import IngestSettings

    span_s = 20 * 86_400.0
    settings = demo_ingest_settings(IngestSettings(metrics_port=None), span_s)
    assert settings.session_expiry_s == DEMO_SESSION_EXPIRY_S == 300
    assert "-demo-" in settings.client_id_prefix
    assert settings.max_past_s >= span_s
