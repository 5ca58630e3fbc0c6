"""The checks that need no database: every reason a message can be refused for."""

from __future__ import annotations

import orjson
import pytest

from backend.ingest.decode import Decoded, Decoder
from backend.ingest.pending import Inbound
from backend.ingest.reasons import Reason, Rejection
from tests.ingest.helpers import now_ms, telemetry_payload

ROOT = "acme/site-1"
TOPIC = f"{ROOT}/v1/pump-1/telemetry"


@pytest.fixture
def decoder() -> Decoder:
    return Decoder(ROOT, max_payload_bytes=4096, max_future_s=60, max_past_s=3600)


def decode(decoder: Decoder, payload: bytes, topic: str = TOPIC) -> Decoded | Rejection:
    return decoder.decode(Inbound(topic, payload), now_ms())


def reason(result: Decoded | Rejection) -> Reason | None:
    return result.reason if isinstance(result, Rejection) else None


def test_a_valid_batch_decodes(decoder: Decoder) -> None:
    result = decode(decoder, telemetry_payload("pump-1", [1, 2], {"a": 1.5, "b": None, "c": 3}))
    assert isinstance(result, Decoded)
    assert result.device_ref == "pump-1"
    assert result.telemetry is not None
    assert [m["c"] for m in result.telemetry.metrics] == [3.0, 3.0]
    assert result.telemetry.seqs == [1, 2]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"\xff\xfe not utf-8", Reason.MALFORMED),
        (b"{not json", Reason.MALFORMED),
        (b"[1, 2]", Reason.MALFORMED),
        (b"", Reason.MALFORMED),
        (
            b'{"v":1,"device":"pump-1","kind":"telemetry","boot":"b","sent":1,'
            b'"entries":[{"seq":1,"t":1,"m":{"a":NaN}}]}',
            Reason.NON_FINITE,
        ),
        (
            b'{"v":1,"device":"pump-1","kind":"telemetry","boot":"b","sent":1,'
            b'"entries":[{"seq":1,"t":1,"m":{"a":1e999}}]}',
            Reason.NON_FINITE,
        ),
        (
            b'{"v":1,"device":"pump-1","kind":"telemetry","boot":"b","sent":1,'
            b'"entries":[{"seq":1,"t":1,"m":{"a":-Infinity}}]}',
            Reason.NON_FINITE,
        ),
        (
            b'{"v":2,"device":"pump-1","kind":"telemetry","boot":"b","sent":1,"entries":[]}',
            Reason.SCHEMA,
        ),
        (
            b'{"v":1,"device":"pump-1","kind":"telemetry","boot":"b","sent":1,'
            b'"entries":[{"seq":-1,"t":1,"m":{"a":1}}]}',
            Reason.SCHEMA,
        ),
        (
            b'{"v":1,"device":"pump-1","kind":"telemetry","boot":"b","sent":1,'
            b'"entries":[{"seq":1,"t":1,"m":{"a":"1"}}]}',
            Reason.SCHEMA,
        ),
        (
            b'{"v":1,"device":"pump-1","kind":"telemetry","boot":"b","sent":1,'
            b'"entries":[{"seq":1,"t":1,"m":{"a":1}}],"extra":1}',
            Reason.SCHEMA,
        ),
    ],
)
def test_bad_payloads_get_their_reason(decoder: Decoder, payload: bytes, expected: Reason) -> None:
    assert reason(decode(decoder, payload)) is expected


def test_the_payload_device_must_be_the_topic_device(decoder: Decoder) -> None:
    result = decode(decoder, telemetry_payload("pump-2", [1], {"a": 1.0}))
    assert reason(result) is Reason.DEVICE_MISMATCH
    assert isinstance(result, Rejection)
    assert result.device_ref == "pump-1"


def test_the_payload_kind_must_be_the_channel(decoder: Decoder) -> None:
    payload = telemetry_payload("pump-1", [1], {"a": 1.0})
    assert reason(decode(decoder, payload, f"{ROOT}/v1/pump-1/usage")) is Reason.KIND_MISMATCH


def test_too_large(decoder: Decoder) -> None:
    payload = telemetry_payload("pump-1", range(200), {"a": 1.0})
    assert len(payload) > 4096
    assert reason(decode(decoder, payload)) is Reason.TOO_LARGE


@pytest.mark.parametrize(
    ("offset_ms", "expected"),
    [
        (59_000, None),
        (61_000, Reason.TIMESTAMP_FUTURE),
        (-3_599_000, None),
        (-3_601_000, Reason.TIMESTAMP_PAST),
    ],
)
def test_time_window(decoder: Decoder, offset_ms: int, expected: Reason | None) -> None:
    payload = telemetry_payload("pump-1", [1], {"a": 1.0}, t=now_ms() + offset_ms)
    assert reason(decode(decoder, payload)) is expected


@pytest.mark.parametrize(
    "topic",
    [
        f"{ROOT}/v2/pump-1/telemetry",
        "other/v1/pump-1/telemetry",
        f"{ROOT}/v1/pump-1/commands",
        f"{ROOT}/v1/pump 1/telemetry",
        f"{ROOT}/v1/pump-1/nonsense",
    ],
)
def test_topics_outside_the_contract(decoder: Decoder, topic: str) -> None:
    payload = telemetry_payload("pump-1", [1], {"a": 1.0})
    assert reason(decode(decoder, payload, topic)) is Reason.BAD_TOPIC


def test_nul_in_event_text_is_a_schema_violation(decoder: Decoder) -> None:
    payload = orjson.dumps(
        {
            "v": 1, "device": "pump-1", "kind": "events", "boot": "b", "sent": now_ms(),
            "entries": [{"seq": 1, "t": now_ms(), "type": "fault", "msg": "bad\x00byte"}],
        }
    )  # fmt: skip
    assert reason(decode(decoder, payload, f"{ROOT}/v1/pump-1/events")) is Reason.SCHEMA


def test_state_messages(decoder: Decoder) -> None:
    topic = f"{ROOT}/v1/pump-1/state"
    good = orjson.dumps(
        {"v": 1, "device": "pump-1", "boot": "b", "sent": now_ms(), "online": False}
    )
    result = decode(decoder, good, topic)
    assert isinstance(result, Decoded)
    assert result.state is not None
    assert result.state.online is False
    stale_will = orjson.dumps({"v": 1, "device": "pump-1", "boot": "b", "sent": 5, "online": False})
    result = decode(decoder, stale_will, topic)
    assert isinstance(result, Decoded), "a will's old 'sent' is not a reason to refuse it"
    assert result.time_ms > now_ms() - 10_000
    assert reason(decode(decoder, b'{"v":1}', topic)) is Reason.SCHEMA
    assert reason(decode(decoder, b"nope", topic)) is Reason.MALFORMED
    other = orjson.dumps({"v": 1, "device": "pump-9", "boot": "b", "sent": 1, "online": True})
    assert reason(decode(decoder, other, topic)) is Reason.DEVICE_MISMATCH
