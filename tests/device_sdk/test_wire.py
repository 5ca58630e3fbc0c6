"""The wire contract: topics, payload models, the fast decoder and the batch encoder."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_sdk.wire import (
    BatchKind,
    Channel,
    CommandRequest,
    DesiredConfig,
    Direction,
    PayloadError,
    TelemetryBatch,
    TopicError,
    batch_adapter,
    build_topic,
    decode_batch,
    decode_model,
    encode_batch,
    encode_model,
    parse_topic,
    subscription,
)
from device_sdk.wire.payloads import MAX_BATCH_ENTRIES, MAX_PAYLOAD_BYTES

DEVICE_IDS = st.from_regex(r"[A-Za-z0-9_.-]{1,64}", fullmatch=True)
ROOTS = st.lists(
    st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True).filter(
        lambda level: not (level.startswith("v") and level[1:].isdigit())
    ),
    min_size=1,
    max_size=3,
).map("/".join)


# ---------------------------------------------------------------- topics


def test_topic_layout() -> None:
    assert build_topic("pump-0042", Channel.TELEMETRY) == "fleetcare/v1/pump-0042/telemetry"
    assert build_topic("p", Channel.CONFIG_DESIRED, "acme/eu") == "acme/eu/v1/p/config/desired"
    assert subscription(Channel.EVENTS, root="acme") == "acme/v1/+/events"
    assert Channel.COMMANDS.direction is Direction.DOWN
    assert Channel.COMMAND_REPLY.direction is Direction.UP
    assert Channel.CONFIG_DESIRED.retained and not Channel.TELEMETRY.retained


@given(root=ROOTS, device=DEVICE_IDS, channel=st.sampled_from(list(Channel)))
def test_parse_inverts_build(root: str, device: str, channel: Channel) -> None:
    assert parse_topic(build_topic(device, channel, root)) == (root, 1, device, channel)


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("fleetcare/v1/pump/unknown", "channel in"),
        ("fleetcare/pump/telemetry", "channel in"),
        ("fleetcare/x1/pump/telemetry", "version level"),
        ("fleetcare/v1/bad id/telemetry", "device id"),
        ("/v1/pump/telemetry", "root"),
        ("v2/v1/pump/telemetry", "looks like a protocol version"),
        ("", "non-empty"),
    ],
)
def test_parse_topic_errors_say_what_is_wrong(topic: str, reason: str) -> None:
    with pytest.raises(TopicError, match=reason) as caught:
        parse_topic(topic)
    assert caught.value.topic == topic


def test_parse_topic_returns_other_versions_for_the_caller_to_check() -> None:
    assert parse_topic("fleetcare/v2/pump/telemetry").version == 2


def test_build_topic_refuses_bad_ids_and_wildcards() -> None:
    for device in ("", "a/b", "+", "#", "x" * 65, "ünï"):
        with pytest.raises(TopicError):
            build_topic(device, Channel.TELEMETRY)
    with pytest.raises(TopicError):
        build_topic("pump", Channel.TELEMETRY, root="fleet/+")


# ---------------------------------------------------------------- payloads


def sample_batch(**overrides: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "v": 1,
        "device": "pump-0042",
        "kind": "telemetry",
        "boot": "7ad7dfd967cf4d57",
        "sent": 1_732_530_000_500,
        "up": 86_400_000,
        "dropped": 0,
        "entries": [
            {
                "seq": 1041,
                "t": 1_732_530_000_000,
                "u": 86_399_500,
                "m": {"temp_c": 21.5, "rpm": 1450, "door": None},
            },
        ],
    }
    doc.update(overrides)
    return doc


def test_fast_decoder_and_models_agree_on_a_good_batch() -> None:
    payload = orjson.dumps(sample_batch())
    fast = decode_batch(payload, device_id="pump-0042", kind="telemetry")
    model = batch_adapter().validate_json(payload)
    assert isinstance(model, TelemetryBatch)
    assert fast.kind is BatchKind.TELEMETRY and fast.up == 86_400_000
    assert fast.entries[0]["m"] == {"temp_c": 21.5, "rpm": 1450.0, "door": None}
    assert isinstance(fast.entries[0]["m"]["rpm"], float)
    assert model.entries[0].m == fast.entries[0]["m"]


BAD_BATCHES = [
    sample_batch(v=2),
    sample_batch(v=True),
    sample_batch(device="bad id"),
    sample_batch(kind="metrics"),
    sample_batch(extra=1),
    sample_batch(sent=-1),
    sample_batch(entries=[]),
    sample_batch(entries=[{"seq": -1, "t": 1, "m": {"a": 1.0}}]),
    sample_batch(entries=[{"seq": 1, "t": "now", "m": {"a": 1.0}}]),
    sample_batch(entries=[{"seq": 1, "t": 1, "m": {}}]),
    sample_batch(entries=[{"seq": 1, "t": 1, "m": {"a": True}}]),
    sample_batch(entries=[{"seq": 1, "t": 1, "m": {"a": "1.0"}}]),
    sample_batch(entries=[{"seq": 1, "t": 1, "m": {"bad name": 1.0}}]),
    sample_batch(entries=[{"seq": 1, "t": 1, "m": {"a": 1.0}, "x": 1}]),
    sample_batch(entries=[{"seq": 1, "t": 1, "m": {f"m{i}": 1.0 for i in range(257)}}]),
    sample_batch(kind="events", entries=[{"seq": 1, "t": 1, "type": "fault", "severity": "bad"}]),
    sample_batch(kind="usage", entries=[{"seq": 1, "t": 1, "name": "s", "dur": -1.0}]),
    sample_batch(kind="usage", entries=[{"seq": 1, "t": 1, "name": "s", "attrs": {"k": [1]}}]),
]


@pytest.mark.parametrize("doc", BAD_BATCHES)
def test_both_decoders_refuse_bad_batches(doc: dict[str, object]) -> None:
    payload = orjson.dumps(doc)
    with pytest.raises(PayloadError):
        decode_batch(payload)
    with pytest.raises(PayloadError):
        decode_model(payload, TelemetryBatch if doc["kind"] == "telemetry" else CommandRequest)


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_non_finite_numbers_are_refused(literal: bytes) -> None:
    payload = orjson.dumps(sample_batch()).replace(b"21.5", literal)
    with pytest.raises(PayloadError):
        decode_batch(payload)
    with pytest.raises(PayloadError):
        decode_model(payload, TelemetryBatch)


def test_topic_and_payload_must_agree() -> None:
    payload = orjson.dumps(sample_batch())
    with pytest.raises(PayloadError, match="topic's device"):
        decode_batch(payload, device_id="other")
    with pytest.raises(PayloadError, match="topic's channel"):
        decode_batch(payload, kind="events")


def test_size_bounds() -> None:
    with pytest.raises(PayloadError, match="exceeds"):
        decode_batch(b" " * (MAX_PAYLOAD_BYTES + 1))
    entries = [{"seq": i, "t": 1, "m": {"a": 1.0}} for i in range(MAX_BATCH_ENTRIES + 1)]
    with pytest.raises(PayloadError, match="entries"):
        decode_batch(orjson.dumps(sample_batch(entries=entries)))


def test_encode_batch_splices_seq_into_stored_bodies() -> None:
    payload = encode_batch(
        device="pump-0042",
        kind=BatchKind.EVENTS,
        boot="b1",
        sent=5,
        up=None,
        dropped=3,
        entries=[(7, b'{"t":1,"type":"fault","severity":"error"}'), (8, b'{"t":2,"type":"x"}')],
    )
    doc = orjson.loads(payload)
    assert list(doc) == ["v", "device", "kind", "boot", "sent", "dropped", "entries"]
    assert doc["entries"][0] == {"seq": 7, "t": 1, "type": "fault", "severity": "error"}
    batch = decode_batch(payload, kind="events")
    assert [e["seq"] for e in batch.entries] == [7, 8]
    assert batch.dropped == 3


def test_down_link_models_round_trip() -> None:
    command = CommandRequest(v=1, id="c-1", name="reboot", args={"delay_s": 5})
    assert decode_model(encode_model(command), CommandRequest) == command
    desired = DesiredConfig(v=1, version=3, config={"sample_hz": 2.0})
    assert decode_model(encode_model(desired), DesiredConfig) == desired
    with pytest.raises(PayloadError, match="version"):
        decode_model(b'{"v":1,"version":-1,"config":{}}', DesiredConfig)


METRIC_NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.:-]{0,20}", fullmatch=True)
VALUES = st.one_of(
    st.none(), st.floats(allow_nan=False, allow_infinity=False), st.integers(-(10**15), 10**15)
)


@given(
    readings=st.lists(
        st.dictionaries(METRIC_NAMES, VALUES, min_size=1, max_size=8), min_size=1, max_size=20
    )
)
def test_sdk_encoding_is_accepted_by_both_decoders(readings: list[dict[str, float | None]]) -> None:
    from device_sdk._entries import EntryEncoder

    encoder = EntryEncoder(catalogue=None, max_metrics=256)
    bodies = [(seq, encoder.reading(m, None)) for seq, m in enumerate(readings, start=1)]
    payload = encode_batch(
        device="d", kind=BatchKind.TELEMETRY, boot="b", sent=1, up=2, dropped=0, entries=bodies
    )
    fast = decode_batch(payload, device_id="d", kind="telemetry")
    model = decode_model(payload, TelemetryBatch)
    assert [e["m"] for e in fast.entries] == [e.m for e in model.entries]
    assert [e["m"] for e in fast.entries] == [
        {k: (None if v is None else float(v)) for k, v in m.items()} for m in readings
    ]
