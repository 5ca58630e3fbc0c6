"""The MQTT client of a backend service that must not lose a message: persistent session,
acknowledgements sent by the service once it has stored what it received."""

from __future__ import annotations

import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from fleetcare.cli.mqtt_probe import BrokerEndpoint, MqttProtocol


def persistent_session_client(
    endpoint: BrokerEndpoint, client_id: str, protocol: MqttProtocol
) -> mqtt.Client:
    """A paho client with manual acknowledgements, the endpoint's credentials and TLS, and
    reconnection every 1-5 s. Its session outlives a disconnection: MQTT 3.1.1 with
    ``Clean Session = 0`` here; MQTT 5 with ``clean_start=False`` and a session expiry,
    which the caller passes to ``connect_async``."""
    v5 = protocol == "5"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
        clean_session=None if v5 else False,
        manual_ack=True,
    )
    if endpoint.username is not None:
        client.username_pw_set(endpoint.username, endpoint.password)
    if endpoint.tls:
        client.tls_set_context(ssl.create_default_context())
    client.reconnect_delay_set(min_delay=1, max_delay=5)
    return client
