"""Commands for devices: queue one, read them back.

A command is a row until the ``downlink`` service publishes it; the caller gets its id at
once and follows its status (``queued`` → ``sent`` → the device's answer, or ``expired``).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from psycopg import Connection
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

from backend.storage.jsonb import has_nul
from device_sdk.wire.payloads import NAME_PATTERN
from fleetcare.errors import FleetcareError

#: The channel of PostgreSQL ``NOTIFY`` that wakes the downlink service.
NOTIFY_CHANNEL = "fleetcare_downlink"

CommandStatus = Literal["queued", "sent", "ok", "error", "unknown", "invalid", "expired"]
#: Statuses after which nothing more is sent (a late answer may still replace ``expired``).
FINAL_STATUSES: frozenset[str] = frozenset({"ok", "error", "unknown", "invalid", "expired"})

MAX_ARGS_BYTES = 64 * 1024

#: An ``Idempotency-Key``: 1-128 printable ASCII characters without spaces.
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]{1,128}$"


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


class IdempotencyKeyReusedError(FleetcareError):
    """The key was used by the same user for a different command."""

    def __init__(self, existing: CommandRecord) -> None:
        super().__init__(f"the idempotency key was used for command {existing.id}")
        self.existing = existing


@dataclass(frozen=True)
class QueuedCommand:
    """The command, and whether it was queued earlier under the same idempotency key."""

    record: CommandRecord
    replayed: bool = False


def queue_command(
    conn: Connection[Any],
    device_id: int,
    request: NewCommand,
    *,
    requested_by: str,
    default_ttl_s: int,
    idempotency_key: str | None = None,
) -> QueuedCommand:
    """Store a command for ``device_id`` and wake the service; the caller commits.

    With an ``idempotency_key`` that ``requested_by`` already used for the same device,
    name, args and time to live, nothing is queued and that command is returned
    (``replayed``); a concurrent request with the key waits for the first to commit.

    Raises:
        ValueError: ``request.args`` cannot be sent (see :func:`args_json`).
        IdempotencyKeyReusedError: the key was used for a different command.
    """
    ttl_s = request.ttl_s if request.ttl_s is not None else default_ttl_s
    args = args_json(request.args)
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "INSERT INTO device_commands (command_id, device_id, name, args, requested_by,"
            " expires_at, idempotency_key) VALUES (%s, %s, %s, %s::jsonb, %s,"
            " now() + make_interval(secs => %s), %s)"
            " ON CONFLICT (requested_by, idempotency_key) WHERE idempotency_key IS NOT NULL"
            f" DO NOTHING RETURNING {_COLUMNS}",
            (new_command_id(), device_id, request.name, args, requested_by, ttl_s, idempotency_key),
        ).fetchone()
        if row is None:
            earlier = cur.execute(
                f"SELECT {_COLUMNS}, extract(epoch FROM expires_at - created_at) AS ttl_s"
                " FROM device_commands WHERE requested_by = %s AND idempotency_key = %s",
                (requested_by, idempotency_key),
            ).fetchone()
            assert earlier is not None
            record = CommandRecord.model_validate(earlier)
            same = (
                record.device_id == device_id
                and record.name == request.name
                and record.args == json.loads(args)
                and round(float(earlier["ttl_s"])) == ttl_s
            )
            if not same:
                raise IdempotencyKeyReusedError(record)
            return QueuedCommand(record, replayed=True)
    conn.execute(
        "INSERT INTO audit_log (actor, action, subject_kind, subject_id, detail)"
        " VALUES (%s, 'device.command', 'device', %s, %s::jsonb)",
        (requested_by, str(device_id), json.dumps({"command_id": row["id"], "name": row["name"]})),
    )
    wake_downlink(conn)
    return QueuedCommand(CommandRecord.model_validate(row))


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
