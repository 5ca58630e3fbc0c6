"""The downlink service's reads and writes: what to publish, what was published, answers.

Each function runs in the caller's transaction and commits nothing.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import Connection

from device_sdk.wire import CommandReply, ReplyStatus, ReportedConfig, ReportStatus


@dataclass(frozen=True, slots=True)
class DesiredToSend:
    """A twin whose desired version the broker has not acknowledged yet."""

    device_id: int
    device_ref: str
    version: int
    config: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CommandToSend:
    """A queued command that is due; ``expires_at`` bounds its MQTT 5 message expiry."""

    row_id: int
    command_id: str
    device_ref: str
    name: str
    args: dict[str, Any]
    expires_at: datetime

    def remaining_s(self, now: datetime) -> int:
        return max(1, int((self.expires_at - now).total_seconds()))


def unsent_desired(conn: Connection[Any], limit: int) -> list[DesiredToSend]:
    """Twins with a desired version newer than the one the broker holds (live devices)."""
    rows = conn.execute(
        "SELECT t.device_id, d.external_id, t.desired_version, t.desired FROM device_twins t"
        " JOIN devices d ON d.id = t.device_id"
        " WHERE t.desired_version > t.desired_sent_version AND d.status <> 'decommissioned'"
        " ORDER BY t.device_id LIMIT %s",
        (limit,),
    ).fetchall()
    return [DesiredToSend(int(r[0]), str(r[1]), int(r[2]), dict(r[3])) for r in rows]


def mark_desired_sent(conn: Connection[Any], device_id: int, version: int) -> None:
    """The broker holds ``version`` (never moves the mark back)."""
    conn.execute(
        "UPDATE device_twins SET desired_sent_version = %s, desired_sent_at = now()"
        " WHERE device_id = %s AND desired_sent_version < %s",
        (version, device_id, version),
    )


def expire_commands(conn: Connection[Any]) -> int:
    """Commands past their deadline without an answer become ``expired``; how many."""
    cur = conn.execute(
        "UPDATE device_commands SET status = 'expired', error = CASE status"
        " WHEN 'queued' THEN 'not delivered before it expired'"
        " || coalesce(' (' || error || ')', '')"
        " ELSE 'no answer before it expired' END"
        " WHERE status IN ('queued', 'sent') AND expires_at <= now()"
    )
    return cur.rowcount


def due_commands(conn: Connection[Any], limit: int) -> list[CommandToSend]:
    """Queued commands whose time has come, oldest first, locked for this transaction."""
    rows = conn.execute(
        "SELECT c.id, c.command_id, d.external_id, c.name, c.args, c.expires_at"
        " FROM device_commands c JOIN devices d ON d.id = c.device_id"
        " WHERE c.status = 'queued' AND c.next_try_at <= now() AND c.expires_at > now()"
        " AND d.status <> 'decommissioned'"
        " ORDER BY c.id LIMIT %s FOR UPDATE OF c SKIP LOCKED",
        (limit,),
    ).fetchall()
    return [
        CommandToSend(int(r[0]), str(r[1]), str(r[2]), str(r[3]), dict(r[4]), r[5]) for r in rows
    ]


def mark_command_sent(conn: Connection[Any], row_id: int) -> None:
    conn.execute(
        "UPDATE device_commands SET status = 'sent', sent_at = now(), attempts = attempts + 1"
        " WHERE id = %s AND status = 'queued'",
        (row_id,),
    )


def postpone_command(conn: Connection[Any], row_id: int, retry: timedelta, why: str) -> None:
    """Keep a command queued and try again after ``retry`` (``why`` kept as its error)."""
    conn.execute(
        "UPDATE device_commands SET next_try_at = now() + %s, attempts = attempts + 1,"
        " error = %s WHERE id = %s AND status = 'queued'",
        (retry, why, row_id),
    )


def device_id_of(conn: Connection[Any], device_ref: str) -> int | None:
    row = conn.execute("SELECT id FROM devices WHERE external_id = %s", (device_ref,)).fetchone()
    return None if row is None else int(row[0])


def device_ids_of(conn: Connection[Any], device_refs: Collection[str]) -> dict[str, int]:
    """The ids of those of ``device_refs`` that are registered, in one statement."""
    if not device_refs:
        return {}
    rows = conn.execute(
        "SELECT external_id, id FROM devices WHERE external_id = ANY(%s)", (list(device_refs),)
    ).fetchall()
    return {str(ref): int(device_id) for ref, device_id in rows}


def _device_time(t_ms: int) -> datetime:
    return datetime.fromtimestamp(t_ms / 1000, tz=UTC)


def record_report(conn: Connection[Any], device_id: int, report: ReportedConfig) -> bool:
    """The device's answer to desired version ``report.version``; ``False`` when older than
    the answer already stored (a retained report replayed after a newer one)."""
    applied = report.status is ReportStatus.APPLIED
    cur = conn.execute(
        "INSERT INTO device_twins AS t (device_id, reported_version, reported_status,"
        " reported_error, reported, reported_at) VALUES (%(device)s, %(version)s, %(status)s,"
        " %(error)s, CASE WHEN %(applied)s THEN %(config)s::jsonb ELSE '{}'::jsonb END,"
        " %(at)s)"
        " ON CONFLICT (device_id) DO UPDATE SET reported_version = excluded.reported_version,"
        " reported_status = excluded.reported_status,"
        " reported_error = excluded.reported_error,"
        " reported = CASE WHEN %(applied)s THEN excluded.reported ELSE t.reported END,"
        " reported_at = excluded.reported_at"
        " WHERE t.reported_at IS NULL OR t.reported_version < excluded.reported_version"
        " OR (t.reported_version = excluded.reported_version"
        " AND t.reported_at <= excluded.reported_at)",
        {
            "version": report.version,
            "status": report.status.value,
            "error": report.error,
            "applied": applied,
            "config": json.dumps(report.config or {}),
            "at": _device_time(report.t),
            "device": device_id,
        },
    )
    return cur.rowcount == 1


def record_reply(
    conn: Connection[Any], device_id: int, reply: CommandReply, *, busy_retry: timedelta
) -> str:
    """Store the device's answer to one of *its* commands.

    Returns:
        ``stored``; ``retry`` when the device was busy (the command is queued again); or
        ``unknown_command`` when ``device_id`` has no command with that id.
    """
    if reply.status is ReplyStatus.BUSY:
        cur = conn.execute(
            "UPDATE device_commands SET status = 'queued', error = 'device busy',"
            " next_try_at = now() + %s"
            " WHERE command_id = %s AND device_id = %s AND status = 'sent'",
            (busy_retry, reply.id, device_id),
        )
        if cur.rowcount:
            return "retry"
        return "stored" if _exists(conn, device_id, reply.id) else "unknown_command"
    cur = conn.execute(
        "UPDATE device_commands SET status = %s, result = %s::jsonb, error = %s,"
        " answered_at = %s WHERE command_id = %s AND device_id = %s"
        " AND status IN ('queued', 'sent', 'expired')",
        (
            reply.status.value,
            None if reply.result is None else json.dumps(reply.result),
            reply.error,
            _device_time(reply.t),
            reply.id,
            device_id,
        ),
    )
    if cur.rowcount:
        return "stored"
    # Answered already (QoS 1 may deliver a reply twice), or not this device's command.
    return "stored" if _exists(conn, device_id, reply.id) else "unknown_command"


def _exists(conn: Connection[Any], device_id: int, command_id: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM device_commands WHERE command_id = %s AND device_id = %s",
        (command_id, device_id),
    ).fetchone()
    return row is not None
