"""Commands for devices: queue one, read them back.

A command is a row until the ``downlink`` service publishes it; the caller gets its id at
once and follows its status (``queued`` → ``sent`` → the device's answer, or ``expired``).
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any, Literal

from psycopg import Connection
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

from backend.storage.jsonb import has_nul
from device_sdk.wire.payloads import NAME_PATTERN

#: The channel of PostgreSQL ``NOTIFY`` that wakes the downlink service.
NOTIFY_CHANNEL = "fleetcare_downlink"

CommandStatus = Literal["queued", "sent", "ok", "error", "unknown", "invalid", "expired"]
#: Statuses after which nothing more is sent (a late answer may still replace ``expired``).
FINAL_STATUSES: frozenset[str] = frozenset({"ok", "error", "unknown", "invalid", "expired"})

MAX_ARGS_BYTES = 64 * 1024


class CommandRecord(BaseModel):
    """A command and what became of it."""

    id: str = Field(description="the command id on the wire (unique)")
    device_id: int
    name: str
    args: dict[str, Any]
    status: CommandStatus = Field(
        description="queued (waiting for the broker), sent (waiting for the device), the "
        "device's answer (ok, error, unknown, invalid), or expired (no answer in time)"
    )
    requested_by: str
    created_at: datetime
    expires_at: datetime
    attempts: int = Field(description="times it was published")
    sent_at: datetime | None
    answered_at: datetime | None = Field(description="the device's time of its answer")
    result: dict[str, Any] | None
    error: str | None


class NewCommand(BaseModel):
    """A command to queue for a device."""

    name: str = Field(pattern=f"^{NAME_PATTERN}$", description="the device's handler name")
    args: dict[str, Any] = Field(default_factory=dict, description="JSON object, at most 64 KiB")
    ttl_s: int | None = Field(
        default=None,
        ge=1,
        le=7 * 86_400,
        description="seconds the command may wait for its device before it expires "
        "(default FLEETCARE_DOWNLINK_COMMAND_TTL_S)",
    )


_COLUMNS = (
    "command_id AS id, device_id, name, args, status, requested_by, created_at, expires_at,"
    " attempts, sent_at, answered_at, result, error"
)


def new_command_id() -> str:
    """A fresh command id: ``cmd-`` and 24 hex digits (unguessable, wire-safe)."""
    return f"cmd-{secrets.token_hex(12)}"


def wake_downlink(conn: Connection[Any]) -> None:
    """Tell the downlink service there is something to send (delivered at commit)."""
    conn.execute("SELECT pg_notify(%s, '')", (NOTIFY_CHANNEL,))


def args_json(args: dict[str, Any]) -> str:
    """``args`` as JSON text.

    Raises:
        ValueError: not JSON-serialisable, a NaN or infinity, or larger than 64 KiB.
    """
    try:
        text = json.dumps(args, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not plain JSON: {exc}") from None
    if len(text.encode()) > MAX_ARGS_BYTES:
        raise ValueError(f"larger than 64 KiB ({MAX_ARGS_BYTES} bytes) serialised")
    if has_nul(args):
        raise ValueError("a string contains a NUL character")
    return text


def queue_command(
    conn: Connection[Any],
    device_id: int,
    request: NewCommand,
    *,
    requested_by: str,
    default_ttl_s: int,
) -> CommandRecord:
    """Store a command for ``device_id`` and wake the service; the caller commits.

    Raises:
        ValueError: ``request.args`` cannot be sent (see :func:`args_json`).
    """
    ttl_s = request.ttl_s if request.ttl_s is not None else default_ttl_s
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "INSERT INTO device_commands (command_id, device_id, name, args, requested_by,"
            " expires_at) VALUES (%s, %s, %s, %s::jsonb, %s,"
            f" now() + make_interval(secs => %s)) RETURNING {_COLUMNS}",
            (
                new_command_id(),
                device_id,
                request.name,
                args_json(request.args),
                requested_by,
                ttl_s,
            ),
        ).fetchone()
    assert row is not None
    conn.execute(
        "INSERT INTO audit_log (actor, action, subject_kind, subject_id, detail)"
        " VALUES (%s, 'device.command', 'device', %s, %s::jsonb)",
        (requested_by, str(device_id), json.dumps({"command_id": row["id"], "name": row["name"]})),
    )
    wake_downlink(conn)
    return CommandRecord.model_validate(row)


def device_commands(
    conn: Connection[Any], device_id: int, *, limit: int = 50, before_id: str | None = None
) -> list[CommandRecord]:
    """A device's commands, newest first (``before_id``: those queued before that one)."""
    query = f"SELECT {_COLUMNS} FROM device_commands WHERE device_id = %(device)s"
    if before_id is not None:
        query += (
            " AND id < (SELECT id FROM device_commands WHERE command_id = %(before)s"
            " AND device_id = %(device)s)"
        )
    query += " ORDER BY id DESC LIMIT %(limit)s"
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query, {"device": device_id, "before": before_id, "limit": limit})
        return [CommandRecord.model_validate(row) for row in rows.fetchall()]


def find_command(conn: Connection[Any], device_id: int, command_id: str) -> CommandRecord | None:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"SELECT {_COLUMNS} FROM device_commands WHERE device_id = %s AND command_id = %s",
            (device_id, command_id),
        ).fetchone()
    return None if row is None else CommandRecord.model_validate(row)
