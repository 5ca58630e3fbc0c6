"""Commands for devices: queue one, list a device's, follow one to the device's answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import StringConstraints

from backend.api.auth import Principal, require_roles
from backend.api.deps import DbConnection
from backend.api.errors import ApiError, error_responses
from backend.api.params import ResourceId
from backend.api.routes.devices import DeviceReader, fetch_device
from backend.downlink.commands import (
    IDEMPOTENCY_KEY_PATTERN,
    CommandRecord,
    IdempotencyKeyReusedError,
    NewCommand,
    device_commands,
    find_command,
    queue_command,
)

router = APIRouter(tags=["devices"])

CommandSender = Annotated[Principal, Depends(require_roles("admin", "field"))]
CommandId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="1-128 printable ASCII characters, no spaces; a repeat of the same "
        "request with the same key queues nothing new and answers with the first command",
    ),
]


@router.post(
    "/devices/{device_id}/commands",
    response_model=CommandRecord,
    status_code=202,
    summary="Send a command to a device",
    responses=error_responses(401, 403, 404, 409, 422),
)
def send_command(
    request: Request,
    response: Response,
    conn: DbConnection,
    principal: CommandSender,
    device_id: ResourceId,
    command: NewCommand,
    idempotency_key: IdempotencyKey = None,
) -> CommandRecord:
    """Queue a command; the `downlink` service publishes it to the device.

    Answers 202 with the command's id at once. Follow `status`: `queued` (waiting for the
    broker), `sent` (waiting for the device), then the device's answer (`ok` with `result`,
    `error`, `unknown` for a name the device has no handler for, `invalid`), or `expired`
    when no answer came within `ttl_s`. A device that was busy gets the command again.

    Send an `Idempotency-Key` to retry safely after a timeout or a 503: the same request
    with the same key (same caller) answers 202 with the command queued the first time and
    `Idempotent-Replayed: true`, and queues nothing; the key with a different device, name,
    args or `ttl_s` answers 409 `idempotency_key_reused`.
    """
    device = fetch_device(conn, principal, device_id)
    if device.status == "decommissioned":
        raise ApiError(422, "invalid_request", "the device is decommissioned")
    try:
        queued = queue_command(
            conn,
            device_id,
            command,
            requested_by=f"user:{principal.user_id}",
            default_ttl_s=request.app.state.command_ttl_s,
            idempotency_key=idempotency_key,
        )
    except ValueError as exc:
        raise ApiError(422, "invalid_request", f"args: {exc}") from None
    except IdempotencyKeyReusedError as exc:
        raise ApiError(
            409,
            "idempotency_key_reused",
            "this Idempotency-Key was used for a different command",
            {"command_id": exc.existing.id},
        ) from None
    if queued.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return queued.record


@router.get(
    "/devices/{device_id}/commands",
    response_model=list[CommandRecord],
    summary="List a device's commands",
    responses=error_responses(401, 403, 404, 422),
)
def list_device_commands(
    conn: DbConnection,
    principal: DeviceReader,
    device_id: ResourceId,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[
        CommandId | None, Query(description="only commands queued before this one")
    ] = None,
) -> list[CommandRecord]:
    """The device's commands, newest first."""
    fetch_device(conn, principal, device_id)
    return device_commands(conn, device_id, limit=limit, before_id=before)


@router.get(
    "/devices/{device_id}/commands/{command_id}",
    response_model=CommandRecord,
    summary="Get one command",
    responses=error_responses(401, 403, 404, 422),
)
def get_command(
    conn: DbConnection, principal: DeviceReader, device_id: ResourceId, command_id: CommandId
) -> CommandRecord:
    """One command of the device, with its status and the device's answer."""
    fetch_device(conn, principal, device_id)
    record = find_command(conn, device_id, command_id)
    if record is None:
        raise ApiError(404, "not_found", f"device {device_id} has no command {command_id}")
    return record
