"""Property: whatever arrives, the decoder and the writer never crash, and every message is
either stored or dead-lettered with a reason; nothing invalid reaches ``telemetry``."""

from __future__ import annotations

import json
import time
from typing import Any

import psycopg
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from backend.ingest.metrics import IngestMetrics
from backend.ingest.pending import Inbound
from backend.ingest.reasons import Reason
from backend.ingest.service import build_writer, database_dialect
from backend.ingest.settings import IngestSettings
from tests.ingest.conftest import FleetFactory

CHANNELS = ["telemetry", "usage", "events", "state"]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


NOW_MS = time.time_ns() // 1_000_000  # fixed: generation must not depend on the clock


@st.composite
def valid_doc(draw: st.DrawFn, device: str) -> dict[str, Any]:
    kind = draw(st.sampled_from(["telemetry", "usage", "events", "state"]))
    now = NOW_MS
    t = st.integers(min_value=now - 3_600_000, max_value=now + 60_000)
    seq = st.integers(min_value=0, max_value=2**63 - 1)
    if kind == "state":
        return {
            "v": 1,
            "device": device,
            "boot": "b",
            "sent": draw(t),
            "online": draw(st.booleans()),
        }
    if kind == "telemetry":
        metrics = st.dictionaries(
            st.sampled_from(["a", "b", "c"]),
            st.none()
            | st.floats(allow_nan=False, allow_infinity=False)
            | st.integers(-(10**6), 10**6),
            min_size=1,
            max_size=4,
        )
        entry = st.fixed_dictionaries({"seq": seq, "t": t, "m": metrics})
    elif kind == "usage":
        entry = st.fixed_dictionaries(
            {"seq": seq, "t": t, "name": st.sampled_from(["run", "wash"])},
            optional={
                "value": st.floats(allow_nan=False, allow_infinity=False),
                "unit": st.text(min_size=1, max_size=4),
            },
        )
    else:
        entry = st.fixed_dictionaries(
            {"seq": seq, "t": t, "type": st.sampled_from(["fault", "reboot"])},
            optional={"msg": st.text(max_size=30), "code": st.text(min_size=1, max_size=8)},
        )
    return {
        "v": 1,
        "device": device,
        "kind": kind,
        "boot": "b",
        "sent": now,
        "entries": draw(st.lists(entry, min_size=1, max_size=5)),
    }


@st.composite
def message(draw: st.DrawFn, root: str, devices: list[str]) -> Inbound:
    device = draw(st.sampled_from([*devices, *devices, *devices, "unknown-dev"]))
    how = draw(st.sampled_from(["valid", "valid", "mutated", "mutated", "json", "bytes"]))
    channel = draw(st.sampled_from(CHANNELS[:4]))
    if how == "bytes":
        payload = draw(st.binary(max_size=200))
    elif how == "json":
        payload = json.dumps(draw(json_values)).encode()
    else:
        doc = draw(valid_doc(device))
        channel = str(doc.get("kind", "state"))
        if how == "mutated":
            key = draw(st.sampled_from(sorted(doc)))
            if draw(st.booleans()):
                del doc[key]
            else:
                doc[key] = draw(json_values)
        payload = json.dumps(doc).encode()
    topic = f"{root}/v1/{device}/{channel}"
    if draw(st.integers(0, 9)) == 0:  # now and then, a topic outside the contract
        topic = draw(
            st.sampled_from(
                [f"{root}/v2/{device}/telemetry", f"{root}/v1/bad device/{channel}",
                 f"{root}/v1/{device}/commands", f"{root}/v1/{device}/telemetry/x"]
            )
            | st.text(max_size=30)
        )  # fmt: skip
    return Inbound(topic, payload, dup=draw(st.booleans()), retain=draw(st.booleans()))


def test_every_message_is_stored_or_dead_lettered(
    ingest_db: str, root: str, fleet: FleetFactory
) -> None:
    spec = fleet(devices=2, metrics=("a", "b", "c"))
    writer = build_writer(
        ingest_db,
        root,
        IngestSettings(metrics_port=None, unknown_retry_s=0, liveness_interval_s=0),
        database_dialect(ingest_db),
        IngestMetrics(),
    )
    accepted_keys: set[tuple[str, int, int]] = set()

    @settings(
        max_examples=100,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(message(root, spec.device_ids), min_size=1, max_size=8))
    def check(messages: list[Inbound]) -> None:
        result = writer.write(messages)  # never raises on input
        accepted = {id(a.inbound) for a in result.prepared.accepted} - {
            id(r.inbound) for r in result.refused
        }
        dead = result.prepared.dead + result.refused
        assert len(accepted) + len(dead) == len(messages)
        assert {id(m) for m in messages} == accepted | {id(d.inbound) for d in dead}
        for letter in dead:
            assert isinstance(letter.rejection.reason, Reason)
            event(f"dead: {letter.rejection.reason.value}")
        for item in result.prepared.accepted:
            event(f"stored: {item.channel.value}")
        for item in result.prepared.accepted:
            if item.channel.value == "telemetry" and id(item.inbound) in accepted:
                doc = json.loads(item.inbound.payload)
                for entry in doc["entries"]:
                    accepted_keys.add((doc["device"], entry["t"], entry["seq"]))
        with psycopg.connect(ingest_db) as conn:
            for letter in dead:
                row = conn.execute(
                    "SELECT reason FROM dead_letters WHERE topic = %s AND payload = %s",
                    (letter.inbound.topic.replace("\x00", "\\0")[:1000], letter.inbound.payload),
                ).fetchone()
                assert row is not None, letter
            stored = conn.execute(
                "SELECT count(*) FROM telemetry t JOIN devices d ON d.id = t.device_id "
                "WHERE d.external_id = ANY(%s)",
                (spec.device_ids,),
            ).fetchone()
        assert stored == (len(accepted_keys),)

    try:
        check()
    finally:
        writer.close()
