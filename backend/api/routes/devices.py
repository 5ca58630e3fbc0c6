"""Devices: list with filters, get one, read the twin, set the twin's desired config."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from psycopg import sql
from psycopg.rows import dict_row
from pydantic import BaseModel, Field, field_validator

from backend.api.auth import Principal, require_roles
from backend.api.deps import Connection, DbConnection
from backend.api.errors import ApiError, error_responses
from backend.api.pagination import MAX_ID, Page, PageParams, page_params
from backend.api.params import ResourceId
from backend.api.rows import fetch_one, fetch_page
from backend.api.scoping import device_condition
from backend.downlink.commands import wake_downlink
from backend.storage.jsonb import has_nul

router = APIRouter(tags=["devices"])

DeviceReader = Annotated[Principal, Depends(require_roles("admin", "viewer", "csm", "field"))]
TwinWriter = Annotated[Principal, Depends(require_roles("admin", "csm", "field"))]
DeviceStatus = Literal["provisioned", "active", "decommissioned"]

MAX_DESIRED_BYTES = 64 * 1024


class DevicePublic(BaseModel):
    """A device as the API shows it (never its credentials)."""

    id: int
    external_id: str = Field(description="the device id on the wire and its MQTT username")
    model_id: int
    model_name: str
    account_id: int | None
    site_id: int | None
    gateway_id: int | None
    serial_number: str | None
    firmware_version: str | None
    status: DeviceStatus
    online: bool
    last_seen_at: datetime | None
    installed_at: datetime | None
    credential_issued_at: datetime | None
    created_at: datetime


TwinSync = Literal["in_sync", "pending", "delivered", "rejected"]


class Twin(BaseModel):
    """Desired configuration (set here) and reported configuration (sent by the device)."""

    device_id: int
    desired: dict[str, Any]
    desired_version: int
    desired_at: datetime | None
    desired_sent_version: int = Field(
        description="the newest desired version the broker holds for the device (retained)"
    )
    desired_sent_at: datetime | None
    reported: dict[str, Any] = Field(description="the configuration the device runs")
    reported_version: int = Field(description="the desired version the device answered last")
    reported_status: Literal["applied", "rejected"] | None
    reported_error: str | None = Field(description="why the device rejected that version")
    reported_at: datetime | None
    sync: TwinSync = Field(
        description="in_sync: the device applied the desired version (or none was set); "
        "pending: not yet handed to the broker (the downlink service sends it); delivered: "
        "with the broker, no answer from the device yet; rejected: the device refused it"
    )


class DesiredConfigUpdate(BaseModel):
    """A new desired configuration; it replaces the previous one as a whole."""

    desired: dict[str, Any] = Field(description="JSON object, at most 64 KiB serialised")
    expected_version: int | None = Field(
        default=None,
        ge=0,
        le=2**31 - 1,
        description="refuse with 409 unless the current desired_version is this one",
    )

    @field_validator("desired")
    @classmethod
    def _storable(cls, value: dict[str, Any]) -> dict[str, Any]:
        if has_nul(value):
            raise ValueError("strings may not contain NUL characters")
        if len(json.dumps(value, allow_nan=False, default=str)) > MAX_DESIRED_BYTES:
            raise ValueError(f"desired config is larger than {MAX_DESIRED_BYTES} bytes")
        return value


_DEVICE_COLUMNS = sql.SQL(
    "d.id, d.external_id, d.model_id, m.name AS model_name, d.account_id, d.site_id,"
    " d.gateway_id, d.serial_number, d.firmware_version, d.status, d.online, d.last_seen_at,"
    " d.installed_at, d.credential_issued_at, d.created_at"
    " FROM devices d JOIN device_models m ON m.id = d.model_id"
)


def fetch_device(conn: Connection, principal: Principal, device_id: int) -> DevicePublic:
    """The device when it exists and the caller may see it; 404 otherwise."""
    scope, params = device_condition(principal)
    query = sql.SQL("SELECT {} WHERE d.id = %(device_id)s AND {}").format(_DEVICE_COLUMNS, scope)
    return fetch_one(
        conn, query, {**params, "device_id": device_id}, DevicePublic, "device", device_id
    )


@router.get(
    "/devices",
    response_model=Page[DevicePublic],
    summary="List devices",
    responses=error_responses(401, 403, 422),
)
def list_devices(
    conn: DbConnection,
    principal: DeviceReader,
    page: Annotated[PageParams, Depends(page_params)],
    account_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    site_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    model: Annotated[str | None, Query(max_length=200, description="device model name")] = None,
    status: DeviceStatus | None = None,
    online: bool | None = None,
    external_id_prefix: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[DevicePublic]:
    """Devices the caller may see, by id, filtered by account, site, model, status, online."""
    scope, params = device_condition(principal)
    query = sql.SQL(
        "SELECT {} WHERE d.id > %(after)s AND {}"
        " AND (%(account_id)s::bigint IS NULL OR d.account_id = %(account_id)s)"
        " AND (%(site_id)s::bigint IS NULL OR d.site_id = %(site_id)s)"
        " AND (%(model)s::text IS NULL OR m.name = %(model)s)"
        " AND (%(status)s::text IS NULL OR d.status = %(status)s)"
        " AND (%(online)s::boolean IS NULL OR d.online = %(online)s)"
        " AND (%(prefix)s::text IS NULL OR starts_with(d.external_id, %(prefix)s))"
        " ORDER BY d.id LIMIT %(limit)s"
    ).format(_DEVICE_COLUMNS, scope)
    values = {
        **params,
        "after": page.after_ascending(),
        "account_id": account_id,
        "site_id": site_id,
        "model": model,
        "status": status,
        "online": online,
        "prefix": external_id_prefix,
        "limit": page.limit + 1,
    }
    return fetch_page(conn, query, values, DevicePublic, page)


@router.get(
    "/devices/{device_id}",
    response_model=DevicePublic,
    summary="Get a device",
    responses=error_responses(401, 403, 404, 422),
)
def get_device(conn: DbConnection, principal: DeviceReader, device_id: ResourceId) -> DevicePublic:
    """One device; 404 when it does not exist or is outside the caller's scope."""
    return fetch_device(conn, principal, device_id)


def twin_sync(
    desired_version: int, sent_version: int, reported_version: int, reported_status: str | None
) -> TwinSync:
    """Where the newest desired version stands between the API and the device."""
    if desired_version == 0:
        return "in_sync"
    if reported_version == desired_version and reported_status is not None:
        return "in_sync" if reported_status == "applied" else "rejected"
    return "delivered" if sent_version >= desired_version else "pending"


def _read_twin(conn: Connection, device_id: int) -> Twin:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT device_id, desired, desired_version, desired_at, desired_sent_version,"
            " desired_sent_at, reported, reported_version, reported_status, reported_error,"
            " reported_at FROM device_twins WHERE device_id = %s",
            (device_id,),
        ).fetchone()
    if row is None:
        row = {
            "device_id": device_id,
            "desired": {},
            "desired_version": 0,
            "desired_at": None,
            "desired_sent_version": 0,
            "desired_sent_at": None,
            "reported": {},
            "reported_version": 0,
            "reported_status": None,
            "reported_error": None,
            "reported_at": None,
        }
    sync = twin_sync(
        row["desired_version"],
        row["desired_sent_version"],
        row["reported_version"],
        row["reported_status"],
    )
    return Twin.model_validate({**row, "sync": sync})


@router.get(
    "/devices/{device_id}/twin",
    response_model=Twin,
    summary="Get a device's twin",
    responses=error_responses(401, 403, 404, 422),
)
def get_twin(conn: DbConnection, principal: DeviceReader, device_id: ResourceId) -> Twin:
    """Desired and reported configuration of a device, with their versions."""
    fetch_device(conn, principal, device_id)
    return _read_twin(conn, device_id)


@router.put(
    "/devices/{device_id}/twin/desired",
    response_model=Twin,
    summary="Set a device's desired config",
    responses=error_responses(401, 403, 404, 409, 422),
)
def set_desired_config(
    conn: DbConnection,
    principal: TwinWriter,
    device_id: ResourceId,
    update: DesiredConfigUpdate,
) -> Twin:
    """Replace the desired configuration; its version goes up by one.

    The `downlink` service publishes it (retained) for the device, which applies it and
    reports back: follow `sync` in the twin.

    With ``expected_version`` the update is refused (409) when someone changed it meanwhile.
    """
    fetch_device(conn, principal, device_id)
    conn.execute(
        "INSERT INTO device_twins (device_id) VALUES (%s) ON CONFLICT (device_id) DO NOTHING",
        (device_id,),
    )
    row = conn.execute(
        "SELECT desired_version FROM device_twins WHERE device_id = %s FOR UPDATE", (device_id,)
    ).fetchone()
    assert row is not None
    current = int(row[0])
    if update.expected_version is not None and update.expected_version != current:
        raise ApiError(
            409,
            "version_conflict",
            f"desired config is at version {current}, not {update.expected_version}",
            {"desired_version": current},
        )
    conn.execute(
        "UPDATE device_twins SET desired = %s::jsonb, desired_version = desired_version + 1,"
        " desired_at = now() WHERE device_id = %s",
        (json.dumps(update.desired, allow_nan=False, default=str), device_id),
    )
    conn.execute(
        "INSERT INTO audit_log (actor, action, subject_kind, subject_id, detail)"
        " VALUES (%s, 'twin.desired.set', 'device', %s, %s::jsonb)",
        (
            f"user:{principal.user_id}",
            str(device_id),
            json.dumps({"desired_version": current + 1}),
        ),
    )
    wake_downlink(conn)
    return _read_twin(conn, device_id)
