"""Commands for devices: queue one, list a device's, follow one to the device's answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import StringConstraints

from backend.api.auth import Principal, require_roles
from backend.api.deps import DbConnection
from backend.api.errors import ApiError, error_responses
from backend.api.params import ResourceId
from backend.api.routes.devices import DeviceReader, fetch_device
from backend.downlink.commands import (
    CommandRecord,
    NewCommand,
    device_commands,
    find_command,
    queue_command,
)

router = APIRouter(tags=["devices"])

CommandSender = Annotated[Principal, Depends(require_roles("admin", "field"))]
CommandId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]


@router.post(
    "/devices/{device_id}/commands",
    response_model=CommandRecord,
    status_code=202,
    summary="Send a command to a device",
    responses=error_responses(401, 403, 404, 422),
)
def send_command(
    request: Request,
    conn: DbConnection,
    principal: CommandSender,
    device_id: ResourceId,
    command: NewCommand,
) -> CommandRecord:
    """Queue a command; the `downlink` service publishes it to the device.

    Answers 202 with the command's id at once. Follow `status`: `queued` (waiting for the
    broker), `sent` (waiting for the device), then the device's answer (`ok` with `result`,
    `error`, `unknown` for a name the device has no handler for, `invalid`), or `expired`
    when no answer came within `ttl_s`. A device that was busy gets the command again.
    """
    device = fetch_device(conn, principal, device_id)
    if device.status == "decommissioned":
        raise ApiError(422, "invalid_request", "the device is decommissioned")
    try:
        return queue_command(
            conn,
            device_id,
            command,
            requested_by=f"user:{principal.user_id}",
            default_ttl_s=request.app.state.command_ttl_s,
        )
    except ValueError as exc:
        raise ApiError(422, "invalid_request", f"args: {exc}") from None


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
