"""The ingest's telemetry fast path accepts only what the wire contract accepts, with the same
result, and takes the payloads devices really send."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from backend.ingest.decode import Decoded, Decoder
from backend.ingest.pending import Inbound
from backend.ingest.reasons import Rejection
from backend.ingest.telemetry_fast import TelemetryColumns, decode_telemetry
from device_sdk.wire import BatchKind, PayloadError, decode_batch, encode_batch

T0 = 1_764_000_000_000


def _batch(entries: list[dict[str, Any]], **envelope: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "v": 1,
        "device": "pump-0001",
        "kind": "telemetry",
        "boot": "b1",
        "sent": T0,
        "dropped": 0,
        "entries": entries,
    }
    doc.update(envelope)
    return doc


def _reference(payload: bytes) -> TelemetryColumns | None:
    """The wire contract's answer, as columns (``None``: refused, or not telemetry)."""
    try:
        batch = decode_batch(payload)
    except PayloadError:
        return None
    return TelemetryColumns.of_batch(batch) if batch.kind is BatchKind.TELEMETRY else None


def test_a_batch_as_the_sdk_encodes_it_takes_the_fast_path_with_the_same_result() -> None:
    bodies = [
        (
            100 + i,
            orjson.dumps({"t": T0 + i * 1000, "m": {"flow": 1.5 * i, "temp": None, "rpm": 3}}),
        )
        for i in range(50)
    ]
    payload = encode_batch(
        device="pump-0001",
        kind=BatchKind.TELEMETRY,
        boot="b1",
        sent=T0 + 60_000,
        up=12_000,
        dropped=2,
        entries=bodies,
    )
    fast = decode_telemetry(payload)
    assert fast is not None
    assert fast == _reference(payload)
    assert fast.device == "pump-0001"
    assert fast.sent == T0 + 60_000
    assert fast.seqs == list(range(100, 150))
    assert fast.times == [T0 + i * 1000 for i in range(50)]
    assert fast.metrics[3] == {"flow": 4.5, "temp": None, "rpm": 3.0}
    # Integers become floats, as the contract says.
    assert type(fast.metrics[0]["rpm"]) is float


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"v": 2}, "schema version"),
        ({"v": True}, "boolean version"),
        ({"kind": "usage"}, "another kind"),
        ({"device": "bad device"}, "device id"),
        ({"boot": ""}, "empty boot"),
        ({"sent": -1}, "negative time"),
        ({"sent": 2**53}, "time past the limit"),
        ({"dropped": 1.0}, "float counter"),
        ({"extra": 1}, "unknown envelope key"),
        ({"entries": []}, "no entries"),
        ({"entries": [{"seq": 1, "t": T0, "m": {}}]}, "empty metrics"),
        ({"entries": [{"seq": 1, "t": T0, "m": {"9bad": 1.0}}]}, "metric name"),
        ({"entries": [{"seq": 1, "t": T0, "m": {"x": True}}]}, "boolean value"),
        ({"entries": [{"seq": 1, "t": T0, "m": {"x": "1"}}]}, "string value"),
        ({"entries": [{"seq": True, "t": T0, "m": {"x": 1.0}}]}, "boolean seq"),
        ({"entries": [{"seq": 2**64, "t": T0, "m": {"x": 1.0}}]}, "seq too large"),
        ({"entries": [{"seq": 1, "t": T0, "m": {"x": 1.0}, "z": 1}]}, "unknown entry key"),
        ({"entries": [{"seq": 1, "m": {"x": 1.0}, "z": 1}]}, "missing time"),
        ({"entries": [{"seq": 1, "t": T0, "m": {"x": 1e999}}]}, "infinite value"),
    ],
)
def test_anything_the_contract_refuses_falls_through(change: dict[str, Any], why: str) -> None:
    doc = _batch([{"seq": 1, "t": T0, "m": {"x": 1.0}}])
    doc.update(change)
    payload = json.dumps(doc).encode()
    assert decode_telemetry(payload) is None, why
    with pytest.raises(PayloadError):
        decode_batch(payload)


def test_readings_with_an_uptime_are_left_to_the_contract() -> None:
    payload = orjson.dumps(_batch([{"seq": 1, "t": T0, "u": 5000, "m": {"x": 1.0}}]))
    assert decode_telemetry(payload) is None
    assert decode_batch(payload).entries[0]["u"] == 5000


def test_the_ingest_decoder_gives_the_same_reasons_either_way() -> None:
    decoder = Decoder("fc", 256 * 1024, max_future_s=300, max_past_s=7 * 86_400)
    topic = "fc/v1/pump-0001/telemetry"
    good = orjson.dumps(_batch([{"seq": 1, "t": T0, "m": {"x": 1}}]))
    decoded = decoder.decode(Inbound(topic, good), T0)
    assert isinstance(decoded, Decoded)
    assert decoded.telemetry == TelemetryColumns("pump-0001", T0, [1], [T0], [{"x": 1.0}])
    for payload, reason in [
        (b'{"v":1,"device":"pump-0001","kind":"telemetry","entries":[NaN]}', "non_finite"),
        (b"\xff\xfe", "malformed"),
        (orjson.dumps(_batch([{"seq": 1, "t": T0, "m": {"x": "hot"}}])), "schema"),
        (
            orjson.dumps(_batch([{"seq": 1, "t": T0, "m": {"x": 1.0}}], device="pump-0002")),
            "device_mismatch",
        ),
        (orjson.dumps(_batch([{"seq": 1, "t": T0 + 10**9, "m": {"x": 1.0}}])), "timestamp_future"),
    ]:
        rejected = decoder.decode(Inbound(topic, payload), T0)
        assert isinstance(rejected, Rejection), payload
        assert rejected.reason.value == reason, (payload, rejected)


# Property: on documents close to valid (every field sometimes replaced by something else),
# the fast path either defers or agrees with the contract exactly.
_odd = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
# Mostly valid names and values, with the odd bad one (a property needs both outcomes).
_names = st.sampled_from(["flow", "temp", "a.b", "x:1"] * 8 + ["9bad", "", "ß", "n" * 70])
_good_values = st.one_of(
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**66), max_value=2**66),
)
_values = st.one_of(*([_good_values] * 10), st.booleans(), st.text(max_size=3))


def _maybe(draw: st.DrawFn, value: Any) -> Any:
    return draw(_odd) if draw(st.integers(0, 30)) == 17 else value


@st.composite
def near_valid_payloads(draw: st.DrawFn) -> bytes:
    entries: list[Any] = []
    for _ in range(draw(st.integers(1, 4)) if draw(st.integers(0, 20)) else 0):
        entry: dict[str, Any] = {
            "seq": _maybe(draw, draw(st.integers(0, 2**63 - 1))),
            "t": _maybe(draw, draw(st.integers(0, 2**53 - 1))),
            "m": _maybe(draw, draw(st.dictionaries(_names, _values, min_size=1, max_size=4))),
        }
        if draw(st.integers(0, 8)) == 5:
            entry["u"] = _maybe(draw, draw(st.integers(0, 2**53)))
        if draw(st.integers(0, 15)) == 9:
            del entry[draw(st.sampled_from(["seq", "t", "m"]))]
        if draw(st.integers(0, 15)) == 9:
            entry[draw(st.sampled_from(["x", "seq2"]))] = 1
        entries.append(_maybe(draw, entry))
    doc = _batch(entries)
    for key in list(doc):
        doc[key] = _maybe(draw, doc[key])
    if draw(st.integers(0, 10)) == 7:
        doc.pop(draw(st.sampled_from(sorted(doc))))
    text = json.dumps(doc)
    if draw(st.integers(0, 10)) == 7:  # break the JSON itself now and then
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.sampled_from(["", "NaN", "]", ',"x":1', "\ud800"])) + text[cut:]
    return text.encode("utf-8", "surrogatepass")


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_valid_payloads())
def test_the_fast_path_never_accepts_what_the_contract_refuses(payload: bytes) -> None:
    fast = decode_telemetry(payload)
    reference = _reference(payload)
    event("fast" if fast is not None else "deferred")
    event("valid" if reference is not None else "refused")
    if fast is not None:
        assert reference is not None
        assert fast == reference
        assert [type(v) for m in fast.metrics for v in m.values()] == [
            type(v) for m in reference.metrics for v in m.values()
        ]
