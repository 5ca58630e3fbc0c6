"""The pipeline a tutorial would write: a paho subscriber, one INSERT and one commit per message.

``python -m benchmarks.ingest.naive --broker URL --root R --database URL`` runs until
SIGTERM. paho acknowledges each message as it arrives (before the INSERT), as tutorials do;
each message's readings go into one ``INSERT … VALUES (…), (…)`` with its own commit.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--broker-host", default="127.0.0.1")
    parser.add_argument("--broker-port", type=int, required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--database", required=True)
    args = parser.parse_args(argv)
    conn = psycopg.connect(args.database)
    ids = {str(e): int(i) for e, i in conn.execute("SELECT external_id, id FROM devices")}
    positions: dict[str, dict[str, int]] = {}
    for ext, name, pos in conn.execute(
        "SELECT d.external_id, m.name, dmm.position FROM devices d "
        "JOIN device_model_metrics dmm ON dmm.model_id = d.model_id "
        "JOIN metrics m ON m.id = dmm.metric_id"
    ):
        positions.setdefault(str(ext), {})[str(name)] = int(pos)
    conn.commit()
    stop = threading.Event()

    def on_message(client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        doc = json.loads(msg.payload)
        device = doc["device"]
        pos = positions[device]
        params: list[Any] = []
        for entry in doc["entries"]:
            vals: list[float | None] = [None] * max(pos.values())
            for name, value in entry["m"].items():
                vals[pos[name] - 1] = value
            params += [_EPOCH + timedelta(milliseconds=entry["t"]), ids[device], entry["seq"], vals]
        values = ",".join(["(%s, %s, %s, %s)"] * len(doc["entries"]))
        conn.execute(
            f"INSERT INTO telemetry (time, device_id, seq, vals) VALUES {values} "
            "ON CONFLICT DO NOTHING",
            params,
        )
        conn.commit()

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        client.subscribe(f"{args.root}/v1/+/telemetry", qos=1)

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"naive-{args.root}")
    client.on_message = on_message
    client.on_connect = on_connect
    client.connect(args.broker_host, args.broker_port, 60)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    client.loop_start()
    stop.wait()
    client.disconnect()
    client.loop_stop()
    conn.close()


if __name__ == "__main__":
    main()
