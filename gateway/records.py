"""How one wire entry is kept in the gateway's durable queue.

An item's data is a small JSON header, a newline, and the entry's body exactly as it will
be sent (the entry object without ``seq``, see :func:`device_sdk.wire.encode_batch`)::

    ["pump-7","7ad7...",1234,-15,2210,0]\n{"t":1795608521366,"u":3351654,"m":{"temp_c":21.5}}

header = ``[device, device_boot, seq, sent_offset_ms, up_offset_ms, dropped]``:

* ``seq`` is the device's own sequence number, or ``-1`` for entries the gateway makes
  itself (Modbus readings, its own events): those take the queue index as ``seq``, which
  is strictly increasing and never reused across restarts and crashes (the queue's
  guarantee), so per device they increase with gaps.
* ``sent_offset_ms`` / ``up_offset_ms``: the device's wall clock and monotonic clock minus
  the gateway's when the entry arrived, so the envelope built later carries the device's
  ``sent``/``up`` as they would be now (protocol section 6); ``up_offset_ms`` is ``null``
  when unknown.
* ``dropped``: the device's own cumulative drop count from its last envelope.

The item's ``tag`` is the batch kind.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from device_sdk.wire import BatchKind

__all__ = ["KIND_TAGS", "StoredEntry", "decode_item", "encode_item"]

KIND_TAGS: dict[BatchKind, int] = {BatchKind.TELEMETRY: 0, BatchKind.USAGE: 1, BatchKind.EVENTS: 2}
_TAG_KINDS = {tag: kind for kind, tag in KIND_TAGS.items()}


@dataclass(frozen=True, slots=True)
class StoredEntry:
    device: str
    boot: str
    seq: int
    """``-1``: take the queue index."""
    sent_offset_ms: int
    up_offset_ms: int | None
    dropped: int
    body: bytes


def encode_item(
    device: str,
    boot: str,
    seq: int,
    body: bytes,
    *,
    sent_offset_ms: int = 0,
    up_offset_ms: int | None = 0,
    dropped: int = 0,
) -> bytes:
    header = orjson.dumps([device, boot, seq, sent_offset_ms, up_offset_ms, dropped])
    return header + b"\n" + body


def decode_item(data: bytes, tag: int) -> tuple[BatchKind, StoredEntry]:
    """Raises ``ValueError`` for data this module did not write."""
    cut = data.index(b"\n")
    device, boot, seq, sent_offset, up_offset, dropped = orjson.loads(data[:cut])
    return _TAG_KINDS[tag], StoredEntry(
        device, boot, seq, sent_offset, up_offset, dropped, data[cut + 1 :]
    )
