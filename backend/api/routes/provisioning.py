"""Provisioning: register devices, issue their broker credentials once, broker config."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from backend.api.auth import Principal, require_roles
from backend.api.broker_config import build_broker_config
from backend.api.deps import Connection, DbConnection
from backend.api.device_registry import (
    DeviceRegistration,
    DuplicateDeviceError,
    IssuedCredentials,
    RegistrationError,
    create_service_account,
    register_device,
    rotate_credentials,
)
from backend.api.errors import ApiError, error_responses, not_found
from backend.api.pagination import MAX_ID
from backend.api.params import ResourceId
from device_sdk.wire.topics import DOWNLINK_CHANNELS, TOPIC_VERSION, UPLINK_CHANNELS

router = APIRouter(prefix="/provisioning", tags=["provisioning"])

Provisioner = Annotated[Principal, Depends(require_roles("admin", "provisioner"))]
Admin = Annotated[Principal, Depends(require_roles("admin"))]

DEVICE_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
_TEXT = r"^[^\x00]*$"


class DeviceRegistrationRequest(BaseModel):
    """A device to register: its id on the wire, its model, where it is installed."""

    external_id: str = Field(pattern=DEVICE_ID_PATTERN, description="device id and MQTT username")
    model: str = Field(min_length=1, max_length=200, pattern=_TEXT, description="device model name")
    account_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    site_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="implies the site's account"
    )
    gateway_external_id: str | None = Field(default=None, pattern=DEVICE_ID_PATTERN)
    serial_number: str | None = Field(default=None, max_length=200, pattern=_TEXT)
    firmware_version: str | None = Field(default=None, max_length=100, pattern=_TEXT)


class DeviceCredentials(BaseModel):
    """A device's broker login. The password is shown once and cannot be retrieved again."""

    device_id: int
    username: str
    password: str = Field(description="shown once")
    publish_topics: list[str] = Field(description="topics this device may publish on")
    subscribe_topics: list[str] = Field(description="topics this device may read")


class ServiceAccountCreate(BaseModel):
    username: str = Field(pattern=DEVICE_ID_PATTERN)


class ServiceAccountCredentials(BaseModel):
    """A backend service's broker login (full access under the topic root), shown once."""

    username: str
    password: str


class BrokerConfigFiles(BaseModel):
    """The mosquitto ``password_file`` and ``acl_file`` contents."""

    password_file: str
    acl_file: str
    devices: int
    service_accounts: int


def _topic_root(request: Request) -> str:
    return str(request.app.state.topic_root)


def _credentials(issued: IssuedCredentials, root: str) -> DeviceCredentials:
    base = f"{root}/v{TOPIC_VERSION}/{issued.username}"
    return DeviceCredentials(
        device_id=issued.device_id,
        username=issued.username,
        password=issued.password,
        publish_topics=[f"{base}/{c.value}" for c in UPLINK_CHANNELS],
        subscribe_topics=[f"{base}/{c.value}" for c in DOWNLINK_CHANNELS],
    )


def _audit(conn: Connection, principal: Principal, action: str, kind: str, subject: str) -> None:
    conn.execute(
        "INSERT INTO audit_log (actor, action, subject_kind, subject_id, detail)"
        " VALUES (%s, %s, %s, %s, %s::jsonb)",
        (f"user:{principal.user_id}", action, kind, subject, json.dumps({})),
    )


@router.post(
    "/devices",
    response_model=DeviceCredentials,
    status_code=201,
    summary="Register a device",
    responses=error_responses(401, 403, 409, 422),
)
def register_device_route(
    conn: DbConnection,
    principal: Provisioner,
    request: Request,
    body: DeviceRegistrationRequest,
) -> DeviceCredentials:
    """Register a device and issue its broker password (in this response only).

    Regenerate the broker configuration afterwards so the broker accepts the new login.
    """
    registration = DeviceRegistration(**body.model_dump())
    try:
        issued = register_device(conn, registration)
    except DuplicateDeviceError as exc:
        raise ApiError(409, "conflict", str(exc), {"field": exc.field}) from None
    except RegistrationError as exc:
        raise ApiError(422, "invalid_request", str(exc), {"field": exc.field}) from None
    _audit(conn, principal, "device.register", "device", str(issued.device_id))
    return _credentials(issued, _topic_root(request))


@router.post(
    "/devices/{device_id}/credentials",
    response_model=DeviceCredentials,
    summary="Issue new device credentials",
    responses=error_responses(401, 403, 404, 422),
)
def rotate_credentials_route(
    conn: DbConnection, principal: Provisioner, request: Request, device_id: ResourceId
) -> DeviceCredentials:
    """Replace a device's password (the old one works until the broker config is reloaded)."""
    try:
        issued = rotate_credentials(conn, device_id)
    except LookupError:
        raise not_found("device", device_id) from None
    _audit(conn, principal, "device.credentials.rotate", "device", str(device_id))
    return _credentials(issued, _topic_root(request))


@router.post(
    "/service-accounts",
    response_model=ServiceAccountCredentials,
    status_code=201,
    summary="Create a broker service account",
    responses=error_responses(401, 403, 409, 422),
)
def create_service_account_route(
    conn: DbConnection, principal: Admin, body: ServiceAccountCreate
) -> ServiceAccountCredentials:
    """A broker login for a backend service (ingest, the downlink service); password shown once."""
    try:
        password = create_service_account(conn, body.username)
    except DuplicateDeviceError as exc:
        raise ApiError(409, "conflict", str(exc), {"field": exc.field}) from None
    _audit(conn, principal, "broker.service_account.create", "broker_account", body.username)
    return ServiceAccountCredentials(username=body.username, password=password)


@router.get(
    "/broker-config",
    response_model=BrokerConfigFiles,
    summary="Broker password and ACL files",
    responses=error_responses(401, 403),
)
def get_broker_config(conn: DbConnection, _: Admin, request: Request) -> BrokerConfigFiles:
    """The mosquitto password file (hashes only) and ACL file for the current fleet."""
    config = build_broker_config(conn, _topic_root(request))
    return BrokerConfigFiles(
        password_file=config.password_file,
        acl_file=config.acl_file,
        devices=config.devices,
        service_accounts=config.service_accounts,
    )
