"""The writer against a real database, without MQTT: rows, deduplication, dead letters, liveness."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator

import orjson
import psycopg
import pytest

from backend.ingest import decode as decode_module
from backend.ingest.liveness import mark_silent_offline
from backend.ingest.loadgen import FleetSpec
from backend.ingest.metrics import IngestMetrics
from backend.ingest.service import build_writer, database_dialect
from backend.ingest.settings import IngestSettings
from backend.ingest.writer import BatchWriter
from backend.storage.catalogue import (
    MetricSpec,
    ensure_device,
    ensure_device_model,
    model_positions,
)
from device_sdk.wire import Channel
from tests.ingest.conftest import FleetFactory
from tests.ingest.helpers import dead_letters, inbound, now_ms, stored, telemetry_payload

DAY_MS = 86_400_000


@pytest.fixture
def writer(ingest_db: str, root: str) -> Iterator[BatchWriter]:
    settings = IngestSettings(unknown_retry_s=0, liveness_interval_s=0, metrics_port=None)
    w = build_writer(ingest_db, root, settings, database_dialect(ingest_db), IngestMetrics())
    yield w
    w.close()


def batch(spec: FleetSpec, root: str, device: int, seqs: range, **kw: object) -> bytes:
    metrics = {name: float(i) for i, name in enumerate(spec.metrics)}
    return telemetry_payload(spec.device_id(device), seqs, metrics, **kw)


def test_rows_are_stored_and_a_redelivery_adds_nothing(
    writer: BatchWriter, fleet: FleetFactory, root: str, ingest_db: str
) -> None:
    spec = fleet(devices=2, metrics=("a", "b", "c"))
    first = [
        inbound(root, spec.device_id(d), "telemetry", batch(spec, root, d, range(10)))
        for d in (0, 1)
    ]
    result = writer.write(first)
    assert result.rows_inserted == 20
    assert stored(ingest_db, spec) == (20, 20, 20)
    # The same messages again (a crash between commit and ack), plus new readings:
    again = [
        *first,
        inbound(root, spec.device_id(0), "telemetry", batch(spec, root, 0, range(10, 15))),
    ]
    result = writer.write(again)
    assert (result.rows_inserted, result.rows_duplicate) == (5, 20)
    assert writer.metrics.dedup_batches.total() == 1
    assert stored(ingest_db, spec) == (25, 25, 25)
    # Flagged redeliveries take the deduplicating path up front.
    dup = inbound(root, spec.device_id(1), "telemetry", first[1].payload, dup=True)
    assert writer.write([dup]).rows_duplicate == 10
    assert stored(ingest_db, spec).duplicates == 0


def test_readings_with_the_same_time_but_other_seq_are_kept(
    writer: BatchWriter, fleet: FleetFactory, root: str, ingest_db: str
) -> None:
    spec = fleet(devices=1, metrics=("a",))
    t = now_ms()
    writer.write(
        [inbound(root, spec.device_id(0), "telemetry", batch(spec, root, 0, range(5), t=t))]
    )
    assert stored(ingest_db, spec) == (5, 5, 5)


def test_invalid_input_is_dead_lettered_and_never_stored(
    writer: BatchWriter, fleet: FleetFactory, root: str, ingest_db: str
) -> None:
    spec = fleet(devices=2, metrics=("a",))
    with psycopg.connect(ingest_db) as conn:
        conn.execute(
            "UPDATE devices SET status = 'decommissioned' WHERE external_id = %s",
            (spec.device_id(1),),
        )
    ok = spec.device_id(0)
    messages = [
        inbound(
            root, "nobody-here", "telemetry", telemetry_payload("nobody-here", [1], {"a": 1.0})
        ),
        inbound(root, spec.device_id(1), "telemetry", batch(spec, root, 1, range(3))),
        inbound(root, ok, "telemetry", telemetry_payload(ok, [1], {"zzz_not_in_catalogue": 1.0})),
        inbound(root, ok, "telemetry", b"garbage"),
        inbound(root, ok, "telemetry", telemetry_payload(ok, [1], {"a": 1.0}, t=now_ms() + DAY_MS)),
        inbound(root, ok, "telemetry", batch(spec, root, 0, range(2))),
    ]
    result = writer.write(messages)
    assert len(result.prepared.accepted) == 1
    reasons = sorted(r for r, _, _ in dead_letters(ingest_db, root))
    assert reasons == [
        "decommissioned_device",
        "malformed",
        "timestamp_future",
        "unknown_device",
        "unknown_metric",
    ]
    assert stored(ingest_db, spec) == (2, 2, 2)
    with psycopg.connect(ingest_db) as conn:
        row = conn.execute(
            "SELECT payload, device_ref FROM dead_letters WHERE topic LIKE %s AND reason = 'malformed'",
            (root + "/%",),
        ).fetchone()
    assert row == (b"garbage", ok)


def vals_of(ingest_db: str, device: str) -> list[tuple[int, list[float | None]]]:
    with psycopg.connect(ingest_db) as conn:
        rows = conn.execute(
            "SELECT t.seq, t.vals FROM telemetry t JOIN devices d ON d.id = t.device_id "
            "WHERE d.external_id = %s ORDER BY t.seq",
            (device,),
        ).fetchall()
    return [(int(seq), list(vals)) for seq, vals in rows]


def test_values_land_at_their_catalogue_positions(
    writer: BatchWriter, root: str, ingest_db: str
) -> None:
    name = f"pos-{secrets.token_hex(3)}"
    with psycopg.connect(ingest_db) as conn:
        model = ensure_device_model(conn, name, "pump", [MetricSpec(m) for m in ("a", "b", "c")])
        ensure_device(conn, name, model)
    t = now_ms()
    payload = orjson.dumps({
        "v": 1, "device": name, "kind": "telemetry", "boot": "b", "sent": t,
        "entries": [
            {"seq": 1, "t": t, "m": {"a": 1.0, "b": 2.0, "c": 3.0}},
            {"seq": 2, "t": t, "m": {"c": 3.5, "a": 1.5}},
            {"seq": 3, "t": t, "m": {"b": None}},
            {"seq": 4, "t": t, "m": {"a": 1, "b": 2, "c": 3}},
            {"seq": 5, "t": t, "m": {"b": 2.5, "a": 1.25, "c": 3.25}},
        ],
    })  # fmt: skip
    writer.write([inbound(root, name, "telemetry", payload)])
    assert vals_of(ingest_db, name) == [
        (1, [1.0, 2.0, 3.0]),
        (2, [1.5, None, 3.5]),
        (3, [None, None]),
        (4, [1.0, 2.0, 3.0]),
        (5, [1.25, 2.5, 3.25]),
    ]


def test_a_model_without_catalogue_learns_it_from_its_first_message(
    writer: BatchWriter, root: str, ingest_db: str
) -> None:
    name = f"open-{secrets.token_hex(3)}"
    first, second = f"m_{secrets.token_hex(3)}", f"m_{secrets.token_hex(3)}"
    with psycopg.connect(ingest_db) as conn:
        model = ensure_device_model(conn, name, "sensor", [])
        ensure_device(conn, name, model)
    writer.write(
        [inbound(root, name, "telemetry", telemetry_payload(name, [1], {first: 2.0, second: 4.0}))]
    )
    writer.write(
        [inbound(root, name, "telemetry", telemetry_payload(name, [2], {"later_metric": 1.0}))]
    )
    assert vals_of(ingest_db, name) == [(1, [2.0, 4.0])]
    with psycopg.connect(ingest_db) as conn:
        assert model_positions(conn, model) == {first: 1, second: 2}
    assert [r for r, _, _ in dead_letters(ingest_db, root)] == ["unknown_metric"]


def test_old_readings_get_their_partition(
    writer: BatchWriter, fleet: FleetFactory, root: str, ingest_db: str
) -> None:
    spec = fleet(devices=1, metrics=("a",))
    old = now_ms() - 20 * DAY_MS
    writer.write(
        [inbound(root, spec.device_id(0), "telemetry", batch(spec, root, 0, range(3), t=old))]
    )
    assert stored(ingest_db, spec).readings == 3


def test_usage_events_and_state_are_stored_once(
    writer: BatchWriter, fleet: FleetFactory, root: str, ingest_db: str
) -> None:
    spec = fleet(devices=1, metrics=("a",))
    device = spec.device_id(0)
    t = now_ms()
    usage = orjson.dumps({
        "v": 1, "device": device, "kind": "usage", "boot": "b", "sent": t,
        "entries": [
            {"seq": 1, "t": t, "name": "session", "value": 3, "unit": "min", "dur": 180.0},
            {"seq": 2, "t": t, "name": "wash", "attrs": {"kind": "feature", "program": "eco"}},
        ],
    })  # fmt: skip
    events = orjson.dumps({
        "v": 1, "device": device, "kind": "events", "boot": "b", "sent": t,
        "entries": [{"seq": 3, "t": t, "type": "fault", "severity": "error", "code": "E42",
                     "msg": "motor stalled", "attrs": {"rpm": 0}}],
    })  # fmt: skip
    state = orjson.dumps({"v": 1, "device": device, "boot": "b", "sent": t, "online": True})
    messages = [
        inbound(root, device, Channel.USAGE, usage),
        inbound(root, device, Channel.EVENTS, events),
        inbound(root, device, Channel.STATE, state),
    ]
    writer.write(messages)
    writer.write(
        [inbound(root, device, m.topic.rsplit("/", 1)[1], m.payload, dup=True) for m in messages]
    )
    with psycopg.connect(ingest_db) as conn:
        usage_rows = conn.execute(
            "SELECT kind, name, value, duration_s, attributes FROM usage_records u "
            "JOIN devices d ON d.id = u.device_id WHERE d.external_id = %s ORDER BY seq",
            (device,),
        ).fetchall()
        event_rows = conn.execute(
            "SELECT kind, severity, code, message FROM device_events e JOIN devices d "
            "ON d.id = e.device_id WHERE d.external_id = %s AND e.seq IS NOT NULL",
            (device,),
        ).fetchall()
        states = conn.execute(
            "SELECT report->>'online' FROM device_state_reports s JOIN devices d "
            "ON d.id = s.device_id WHERE d.external_id = %s",
            (device,),
        ).fetchall()
    assert usage_rows == [
        ("usage", "session", 3.0, 180.0, {"unit": "min"}),
        ("feature", "wash", None, None, {"program": "eco"}),
    ]
    assert event_rows == [("fault", "error", "E42", "motor stalled")]
    assert states == [("true",)]


def test_a_row_the_database_refuses_is_found_by_splitting(
    writer: BatchWriter,
    fleet: FleetFactory,
    root: str,
    ingest_db: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If a check misses something the database refuses, only that message is dead-lettered."""
    monkeypatch.setattr(decode_module, "_nul_in_entry", lambda entry: False)
    spec = fleet(devices=1, metrics=("a",))
    device = spec.device_id(0)
    t = now_ms()
    bad = orjson.dumps({
        "v": 1, "device": device, "kind": "events", "boot": "b", "sent": t,
        "entries": [{"seq": 99, "t": t, "type": "fault", "msg": "nul\x00inside"}],
    })  # fmt: skip
    good = [
        inbound(root, device, "telemetry", batch(spec, root, 0, range(i * 5, i * 5 + 5)))
        for i in range(5)
    ]
    result = writer.write([*good[:3], inbound(root, device, Channel.EVENTS, bad), *good[3:]])
    assert result.split
    assert [r.rejection.reason.value for r in result.refused] == ["write_error"]
    assert stored(ingest_db, spec).readings == 25
    assert [r for r, _, _ in dead_letters(ingest_db, root)] == ["write_error"]


def test_a_redelivered_bad_message_is_dead_lettered_once(
    writer: BatchWriter, root: str, ingest_db: str
) -> None:
    message = inbound(root, "ghost-1", "telemetry", b"{broken")
    writer.write([message])
    writer.write([inbound(root, "ghost-1", "telemetry", b"{broken", dup=True)])
    assert len(dead_letters(ingest_db, root)) == 1


def events_of(ingest_db: str, device: str) -> list[str]:
    with psycopg.connect(ingest_db) as conn:
        rows = conn.execute(
            "SELECT e.kind FROM device_events e JOIN devices d ON d.id = e.device_id "
            "WHERE d.external_id = %s AND e.seq IS NULL ORDER BY e.time, e.kind",
            (device,),
        ).fetchall()
    return [str(r[0]) for r in rows]


def test_liveness_online_goodbye_and_silence(
    writer: BatchWriter, fleet: FleetFactory, root: str, ingest_db: str
) -> None:
    spec = fleet(devices=2, metrics=("a",))
    one, two = spec.device_id(0), spec.device_id(1)
    writer.write([inbound(root, one, "telemetry", batch(spec, root, 0, range(2)))])
    writer.write([inbound(root, one, "telemetry", batch(spec, root, 0, range(2, 4)))])
    assert events_of(ingest_db, one) == ["online"], "one event per transition, not per batch"
    will = orjson.dumps({"v": 1, "device": one, "boot": "b", "sent": 1000, "online": False})
    writer.write([inbound(root, one, Channel.STATE, will)])
    assert events_of(ingest_db, one) == ["online", "offline"]
    writer.write([inbound(root, one, "telemetry", batch(spec, root, 0, range(4, 6)))])
    assert events_of(ingest_db, one) == ["online", "offline", "online"]
    # A retained state message is old news: stored, but no transition.
    retained = orjson.dumps({"v": 1, "device": two, "boot": "b", "sent": now_ms(), "online": True})
    writer.write([inbound(root, two, Channel.STATE, retained, retain=True)])
    assert events_of(ingest_db, two) == []
    writer.write([inbound(root, two, "telemetry", batch(spec, root, 1, range(2)))])
    with psycopg.connect(ingest_db) as conn:
        conn.execute(
            "UPDATE devices SET last_seen_at = now() - interval '1 hour' WHERE external_id = %s",
            (two,),
        )
        conn.commit()
        conn.autocommit = True
        marked = mark_silent_offline(conn, offline_after_s=600)
        online = conn.execute(
            "SELECT external_id, online, clock_offset_s IS NOT NULL FROM devices "
            "WHERE external_id = ANY(%s) ORDER BY external_id",
            ([one, two],),
        ).fetchall()
    assert len(marked) >= 1
    assert online == [(one, True, True), (two, False, True)]
    assert events_of(ingest_db, two) == ["online", "offline"]


def test_metrics_count_what_happened(writer: BatchWriter, fleet: FleetFactory, root: str) -> None:
    spec = fleet(devices=1, metrics=("a", "b"))
    device = spec.device_id(0)
    writer.write(
        [
            inbound(root, device, "telemetry", batch(spec, root, 0, range(4))),
            inbound(root, device, "telemetry", b"[]"),
        ]
    )
    m = writer.metrics
    assert m.messages_written.value("telemetry") == 1
    assert m.readings_written.value("telemetry") == 4
    assert m.rows_written.total() == 4
    assert m.messages_rejected.value("malformed") == 1
    assert m.lag_seconds.count == 1
    assert m.commit_seconds.count == 1
    text = m.render()
    assert 'fleetcare_ingest_messages_rejected_total{reason="malformed"} 1' in text
    assert "fleetcare_ingest_end_to_end_lag_seconds_bucket" in text


def test_models_with_a_catalogue_refuse_other_metrics(
    writer: BatchWriter, root: str, ingest_db: str
) -> None:
    name = f"cat-{secrets.token_hex(3)}"
    with psycopg.connect(ingest_db) as conn:
        model = ensure_device_model(conn, name, "pump", [MetricSpec("in_catalogue")])
        ensure_device(conn, name, model)
        conn.execute(
            "INSERT INTO metrics (name) VALUES ('registered_elsewhere') ON CONFLICT DO NOTHING"
        )
    writer.write([
        inbound(root, name, "telemetry", telemetry_payload(name, [1], {"in_catalogue": 1.0})),
        inbound(root, name, "telemetry", telemetry_payload(name, [2], {"registered_elsewhere": 1.0})),
    ])  # fmt: skip
    assert [r for r, _, _ in dead_letters(ingest_db, root)] == ["unknown_metric"]


def test_liveness_does_not_wait_for_writers_of_rows_that_reference_a_device(
    writer: BatchWriter, fleet: FleetFactory, root: str, ingest_db: str
) -> None:
    """Scoring and the care engine insert rows referencing ``devices`` (predictions,
    tickets): each insert key-share-locks its device. Marking devices seen must not wait for
    those transactions; waiting in id order while they lock in any order deadlocked."""
    spec = fleet(devices=1, metrics=("a",))
    device = spec.device_id(0)
    with psycopg.connect(ingest_db) as scoring:
        # What a prediction insert's foreign-key check takes, held open.
        scoring.execute(
            "SELECT id FROM devices WHERE external_id = %s FOR KEY SHARE", (device,)
        ).fetchone()
        done = threading.Event()
        write = threading.Thread(
            target=lambda: (
                writer.write([inbound(root, device, "telemetry", batch(spec, root, 0, range(2)))]),
                done.set(),
            )
        )
        write.start()
        finished_while_held = done.wait(10)
        scoring.rollback()
        write.join(30)
    assert finished_while_held, "marking the device seen waited for the open transaction"
    assert events_of(ingest_db, device) == ["online"]
