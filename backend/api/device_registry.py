"""Device registration and credentials: register once, issue a password once, rotate.

Passwords are kept only as mosquitto PBKDF2-SHA512 hashes (``devices.credential_hash``);
the plaintext is returned to the caller once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from backend.api.mosquitto_passwd import hash_password, new_password

Connection = psycopg.Connection[Any]


class RegistrationError(ValueError):
    """The registration refers to something missing or inconsistent (``field`` says what)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class DuplicateDeviceError(RegistrationError):
    """A device (or a broker service account) already uses this id."""


@dataclass(frozen=True)
class DeviceRegistration:
    """What identifies a new device and where it belongs."""

    external_id: str
    model: str
    account_id: int | None = None
    site_id: int | None = None
    gateway_external_id: str | None = None
    serial_number: str | None = None
    firmware_version: str | None = None


@dataclass(frozen=True)
class IssuedCredentials:
    """A device's broker login; ``password`` exists only in this object."""

    device_id: int
    username: str
    password: str


def _one(conn: Connection, query: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
    row: tuple[Any, ...] | None = conn.execute(query, params).fetchone()
    return row


def _resolve_placement(
    conn: Connection, reg: DeviceRegistration
) -> tuple[int, int | None, int | None, int | None]:
    model = _one(conn, "SELECT id FROM device_models WHERE name = %s", (reg.model,))
    if model is None:
        raise RegistrationError("model", f"device model {reg.model!r} does not exist")
    account_id = reg.account_id
    if (
        account_id is not None
        and _one(conn, "SELECT 1 FROM accounts WHERE id = %s", (account_id,)) is None
    ):
        raise RegistrationError("account_id", f"account {account_id} does not exist")
    site_id = reg.site_id
    if site_id is not None:
        site = _one(conn, "SELECT account_id FROM sites WHERE id = %s", (site_id,))
        if site is None:
            raise RegistrationError("site_id", f"site {site_id} does not exist")
        if account_id is not None and int(site[0]) != account_id:
            raise RegistrationError(
                "site_id", f"site {site_id} belongs to account {site[0]}, not {account_id}"
            )
        account_id = int(site[0])
    gateway_id = None
    if reg.gateway_external_id is not None:
        gateway = _one(
            conn, "SELECT id FROM devices WHERE external_id = %s", (reg.gateway_external_id,)
        )
        if gateway is None:
            raise RegistrationError(
                "gateway_external_id", f"gateway device {reg.gateway_external_id!r} does not exist"
            )
        gateway_id = int(gateway[0])
    return int(model[0]), account_id, site_id, gateway_id


def username_taken(conn: Connection, username: str) -> bool:
    """Whether a device or a broker service account already has this MQTT username."""
    return (
        _one(
            conn,
            "SELECT 1 FROM devices WHERE external_id = %s"
            " UNION ALL SELECT 1 FROM broker_service_accounts WHERE username = %s",
            (username, username),
        )
        is not None
    )


def register_device(conn: Connection, reg: DeviceRegistration) -> IssuedCredentials:
    """Insert a device (status ``provisioned``) with fresh credentials.

    Raises:
        DuplicateDeviceError: the id is taken by a device or a broker service account.
        RegistrationError: the model, account, site or gateway is missing or inconsistent.
    """
    model_id, account_id, site_id, gateway_id = _resolve_placement(conn, reg)
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('fleetcare.broker_usernames'))")
    if username_taken(conn, reg.external_id):
        raise DuplicateDeviceError("external_id", f"device id {reg.external_id!r} is taken")
    password = new_password()
    row = _one(
        conn,
        "INSERT INTO devices (external_id, model_id, account_id, site_id, gateway_id,"
        " serial_number, firmware_version, status, credential_hash, credential_issued_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, 'provisioned', %s, now()) RETURNING id",
        (
            reg.external_id,
            model_id,
            account_id,
            site_id,
            gateway_id,
            reg.serial_number,
            reg.firmware_version,
            hash_password(password),
        ),
    )
    assert row is not None
    return IssuedCredentials(device_id=int(row[0]), username=reg.external_id, password=password)


def rotate_credentials(conn: Connection, device_id: int) -> IssuedCredentials:
    """Replace a device's password; the old one stops working once the broker reloads.

    Raises:
        LookupError: no such device, or it is decommissioned.
    """
    password = new_password()
    row = _one(
        conn,
        "UPDATE devices SET credential_hash = %s, credential_issued_at = now()"
        " WHERE id = %s AND status <> 'decommissioned' RETURNING external_id",
        (hash_password(password), device_id),
    )
    if row is None:
        raise LookupError(f"device {device_id} does not exist or is decommissioned")
    return IssuedCredentials(device_id=device_id, username=str(row[0]), password=password)


def create_service_account(conn: Connection, username: str) -> str:
    """A broker account for a backend service (full access under the topic root).

    Returns the plaintext password, once.

    Raises:
        DuplicateDeviceError: a device or service account already uses ``username``.
    """
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('fleetcare.broker_usernames'))")
    if username_taken(conn, username):
        raise DuplicateDeviceError("username", f"broker username {username!r} is taken")
    password = new_password()
    conn.execute(
        "INSERT INTO broker_service_accounts (username, credential_hash) VALUES (%s, %s)",
        (username, hash_password(password)),
    )
    return password
