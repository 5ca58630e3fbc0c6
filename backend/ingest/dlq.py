"""Dead letters: list them, and replay them through the same checks and writer as live input.

A replay is for after the cause is fixed (the device registered, the metric added to the
catalogue, the clock corrected, a bug in ingest fixed). Each replayed row gets
``replayed_at`` and ``replay_result``: ``stored``, or ``rejected: <reason>: <detail>``. A
replay never adds dead letters and is idempotent: readings already stored are skipped by
the deduplication.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from backend.ingest.metrics import IngestMetrics
from backend.ingest.pending import Inbound
from backend.ingest.service import build_writer, database_dialect
from backend.ingest.settings import IngestSettings
from backend.storage.connect import connect


@dataclass(frozen=True)
class DeadLetterRow:
    """One row of ``dead_letters`` (payload size instead of the payload)."""

    id: int
    received_at: datetime
    topic: str
    reason: str
    detail: str
    device_ref: str | None
    size: int
    replayed_at: datetime | None
    replay_result: str | None


def list_dead_letters(
    database_url: str,
    *,
    reason: str | None = None,
    limit: int = 50,
    include_replayed: bool = True,
) -> list[DeadLetterRow]:
    """The newest dead letters first, optionally of one reason."""
    with connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT id, received_at, topic, reason, detail, device_ref, length(payload), "
            "replayed_at, replay_result FROM dead_letters "
            "WHERE (%(reason)s::text IS NULL OR reason = %(reason)s) "
            "AND (%(all)s OR replayed_at IS NULL) ORDER BY id DESC LIMIT %(limit)s",
            {"reason": reason, "all": include_replayed, "limit": limit},
        ).fetchall()
    return [DeadLetterRow(*row) for row in rows]  # type: ignore[arg-type]


def count_dead_letters(database_url: str) -> dict[str, int]:
    """Dead letters not replayed yet, per reason."""
    with connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT reason, count(*) FROM dead_letters WHERE replayed_at IS NULL "
            "GROUP BY reason ORDER BY reason"
        ).fetchall()
    return {str(r): int(str(n)) for r, n in rows}


def missing_dead_letters(database_url: str, ids: list[int]) -> list[int]:
    """Those of ``ids`` that name no dead letter."""
    with connect(database_url, autocommit=True) as conn:
        rows = conn.execute("SELECT id FROM dead_letters WHERE id = ANY(%s)", (ids,)).fetchall()
    found = {int(str(row[0])) for row in rows}
    return sorted(set(ids) - found)


@dataclass(frozen=True)
class ReplayReport:
    """What a replay did."""

    replayed: int
    stored: int
    rejected: dict[str, int]


def replay_dead_letters(
    database_url: str,
    topic_root: str,
    settings: IngestSettings,
    *,
    ids: list[int] | None = None,
    reason: str | None = None,
    include_replayed: bool = False,
    batch_size: int = 500,
) -> ReplayReport:
    """Replay the dead letters chosen by ``ids`` or ``reason`` (all not replayed when neither)."""
    dialect = database_dialect(database_url)
    writer = build_writer(
        database_url, topic_root, settings, dialect, IngestMetrics(), record_dead_letters=False
    )
    stored = 0
    rejected: dict[str, int] = {}
    replayed = 0
    last_id = 0
    try:
        with connect(database_url, autocommit=True) as conn:
            while True:
                rows = conn.execute(
                    "SELECT id, topic, payload FROM dead_letters WHERE id > %(after)s "
                    "AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s)) "
                    "AND (%(reason)s::text IS NULL OR reason = %(reason)s) "
                    "AND (%(again)s OR replayed_at IS NULL) ORDER BY id LIMIT %(n)s",
                    {
                        "after": last_id,
                        "ids": ids,
                        "reason": reason,
                        "again": include_replayed,
                        "n": batch_size,
                    },
                ).fetchall()
                if not rows:
                    break
                last_id = int(str(rows[-1][0]))
                by_message: dict[int, int] = {}
                messages: list[Inbound] = []
                now = time.time()
                for row_id, topic, payload in rows:
                    raw = payload if isinstance(payload, bytes) else bytes(memoryview(payload))  # type: ignore[arg-type]
                    message = Inbound(str(topic), raw, qos=1, received_at=now)
                    by_message[id(message)] = int(str(row_id))
                    messages.append(message)
                result = writer.write(messages)
                outcomes: list[tuple[str, int]] = []
                for item in result.prepared.accepted:
                    outcomes.append(("stored", by_message[id(item.inbound)]))
                refused = result.prepared.dead + result.refused
                for letter in refused:
                    r = letter.rejection
                    outcomes.append(
                        (
                            f"rejected: {r.reason.value}: {r.detail}"[:2000],
                            by_message[id(letter.inbound)],
                        )
                    )
                    rejected[r.reason.value] = rejected.get(r.reason.value, 0) + 1
                refused_ids = {id(letter.inbound) for letter in result.refused}
                stored += sum(
                    1 for item in result.prepared.accepted if id(item.inbound) not in refused_ids
                )
                final = {row_id: text for text, row_id in outcomes}
                with conn.transaction(), conn.cursor() as cur:
                    cur.executemany(
                        "UPDATE dead_letters SET replayed_at = now(), replay_result = %s "
                        "WHERE id = %s",
                        [(text, row_id) for row_id, text in sorted(final.items())],
                    )
                replayed += len(rows)
    finally:
        writer.close()
    return ReplayReport(replayed, stored, rejected)
