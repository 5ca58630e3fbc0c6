"""Device liveness: last seen, online/offline, and the transitions as ``device_events``.

* Data (or a state message saying ``online: true``) marks a device seen and online: one
  ``UPDATE`` per device per batch, at most once per ``liveness_interval_s`` per device and
  worker, in the batch's transaction. A device that was offline gets an ``online`` event.
* A state message saying ``online: false`` (the SDK's last will, or a clean goodbye) marks it
  offline, unless data arrived after the state message did.
* :func:`mark_silent_offline` marks devices offline that sent nothing for
  ``offline_after_s``; one worker at a time runs it (advisory lock).

Rows are locked in id order, so concurrent workers never deadlock on ``devices``; and
``FOR NO KEY UPDATE`` (what an ``UPDATE`` of non-key columns takes anyway), not ``FOR
UPDATE``, so they never wait for transactions that insert rows referencing a device
(predictions, tickets: the foreign-key check key-share-locks it, in any order).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from psycopg.types.json import Jsonb

from backend.storage.dialect import Connection

_OFFLINE_LOCK = int.from_bytes(b"fcoffln", "big")


@dataclass(frozen=True, slots=True)
class Seen:
    """A device seen in a batch: when its last message arrived, and its clock offset."""

    device_id: int
    at: datetime
    clock_offset_s: float | None
    source: str


@dataclass(frozen=True, slots=True)
class Goodbye:
    """A state message with ``online: false``, received at ``at``."""

    device_id: int
    at: datetime
    boot: str


def mark_seen(conn: Connection, seen: list[Seen]) -> list[int]:
    """Update last-seen/online of ``seen`` devices; returns the ids that came online."""
    if not seen:
        return []
    ordered = sorted(seen, key=lambda s: s.device_id)
    ids = [s.device_id for s in ordered]
    was: dict[int, bool] = {
        int(str(device_id)): bool(online)
        for device_id, online in conn.execute(
            "SELECT id, online FROM devices WHERE id = ANY(%s) ORDER BY id FOR NO KEY UPDATE",
            (ids,),
        )
    }
    conn.execute(
        "UPDATE devices d SET last_seen_at = GREATEST(d.last_seen_at, s.at), online = true, "
        "clock_offset_s = COALESCE(s.offset_s, d.clock_offset_s) "
        "FROM unnest(%s::bigint[], %s::timestamptz[], %s::float8[]) AS s(id, at, offset_s) "
        "WHERE d.id = s.id",
        (ids, [s.at for s in ordered], [s.clock_offset_s for s in ordered]),
    )
    came_online = [s for s in ordered if was.get(s.device_id) is False]
    if came_online:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO device_events (time, device_id, kind, severity, message, attributes)"
                " VALUES (%s, %s, 'online', 'info', %s, %s)",
                [
                    (s.at, s.device_id, "device is online", Jsonb({"source": s.source}))
                    for s in came_online
                ],
            )
    return [s.device_id for s in came_online]


def mark_goodbyes(conn: Connection, goodbyes: list[Goodbye]) -> list[int]:
    """Mark devices offline after their ``online: false`` state; returns those that changed."""
    changed: list[int] = []
    for bye in sorted(goodbyes, key=lambda g: g.device_id):
        row = conn.execute(
            "UPDATE devices SET online = false WHERE id = %s AND online "
            "AND (last_seen_at IS NULL OR last_seen_at <= %s) RETURNING id",
            (bye.device_id, bye.at),
        ).fetchone()
        if row is None:
            continue
        conn.execute(
            "INSERT INTO device_events (time, device_id, kind, severity, message, attributes) "
            "VALUES (%s, %s, 'offline', 'info', %s, %s)",
            (
                bye.at,
                bye.device_id,
                "device reported offline (state message or last will)",
                Jsonb({"source": "state", "boot": bye.boot}),
            ),
        )
        changed.append(bye.device_id)
    return changed


def mark_silent_offline(conn: Connection, offline_after_s: float) -> list[int]:
    """Mark devices silent for ``offline_after_s`` offline, with an ``offline`` event each.

    Runs in its own transaction; returns the ids marked (empty when another worker holds
    the detector's lock right now).
    """
    now = datetime.now(UTC)
    with conn.transaction():
        row = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (_OFFLINE_LOCK,)).fetchone()
        if not row or not row[0]:
            return []
        rows = conn.execute(
            "WITH gone AS ("
            " UPDATE devices SET online = false WHERE id IN ("
            "  SELECT id FROM devices WHERE online"
            "  AND (last_seen_at IS NULL OR last_seen_at < %(cutoff)s)"
            "  ORDER BY id FOR NO KEY UPDATE SKIP LOCKED)"
            " RETURNING id, last_seen_at) "
            "INSERT INTO device_events (time, device_id, kind, severity, message, attributes) "
            "SELECT %(now)s, id, 'offline', 'warning', %(message)s, "
            "jsonb_build_object('source', 'timeout', 'last_seen_at', last_seen_at) FROM gone "
            "RETURNING device_id",
            {
                "cutoff": datetime.fromtimestamp(now.timestamp() - offline_after_s, UTC),
                "now": now,
                "message": f"no message for {offline_after_s:g} s",
            },
        ).fetchall()
    return [int(str(r[0])) for r in rows]
