"""The broker's configuration from the database: a mosquitto password file and ACL file.

- every device with credentials (not decommissioned) logs in as its ``external_id``;
- ``pattern`` lines let a device write only its own uplink topics and read only its own
  commands and desired config (``%u`` is the MQTT username, i.e. the device id);
- a gateway may also write the uplink topics of the devices registered behind it;
- broker service accounts (ingest, the downlink service) read and write everything under
  the root.

After writing, reload mosquitto (``SIGHUP``) so it re-reads both files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from device_sdk.wire.topics import DOWNLINK_CHANNELS, TOPIC_VERSION, UPLINK_CHANNELS, validate_root

Connection = psycopg.Connection[Any]

PASSWORD_FILE = "passwords"  # noqa: S105 (a file name)
ACL_FILE = "acl"


@dataclass(frozen=True)
class BrokerConfig:
    """The two files' contents and what went into them."""

    password_file: str
    acl_file: str
    devices: int
    service_accounts: int


def _device_topic(root: str, device: str, channel: str) -> str:
    return f"{root}/v{TOPIC_VERSION}/{device}/{channel}"


def render_acl(root: str, service_accounts: list[str], gateways: dict[str, list[str]]) -> str:
    """The ACL file: per-device patterns, gateway extras, full access for service accounts."""
    validate_root(root)
    lines = [
        "# fleetcare broker ACL (generated; edits are overwritten)",
        "# Every device (username = device id): its own uplink topics, its own downlink topics.",
    ]
    lines += [f"pattern write {_device_topic(root, '%u', c.value)}" for c in UPLINK_CHANNELS]
    lines += [f"pattern read {_device_topic(root, '%u', c.value)}" for c in DOWNLINK_CHANNELS]
    for username in service_accounts:
        lines += ["", f"user {username}", f"topic readwrite {root}/#"]
    for gateway, children in sorted(gateways.items()):
        lines += ["", f"user {gateway}"]
        for child in children:
            lines += [f"topic write {_device_topic(root, child, c.value)}" for c in UPLINK_CHANNELS]
            lines += [
                f"topic read {_device_topic(root, child, c.value)}" for c in DOWNLINK_CHANNELS
            ]
    return "\n".join(lines) + "\n"


def build_broker_config(conn: Connection, topic_root: str) -> BrokerConfig:
    """Read devices and service accounts and render both files."""
    devices = conn.execute(
        "SELECT external_id, credential_hash FROM devices"
        " WHERE credential_hash IS NOT NULL AND status <> 'decommissioned' ORDER BY external_id"
    ).fetchall()
    services = conn.execute(
        "SELECT username, credential_hash FROM broker_service_accounts"
        " WHERE revoked_at IS NULL ORDER BY username"
    ).fetchall()
    gateway_rows = conn.execute(
        "SELECT g.external_id, d.external_id FROM devices d JOIN devices g ON g.id = d.gateway_id"
        " WHERE d.status <> 'decommissioned' AND g.credential_hash IS NOT NULL"
        " AND g.status <> 'decommissioned' ORDER BY g.external_id, d.external_id"
    ).fetchall()
    gateways: dict[str, list[str]] = {}
    for gateway, child in gateway_rows:
        gateways.setdefault(str(gateway), []).append(str(child))
    password_lines = [f"{name}:{hashed}" for name, hashed in [*services, *devices]]
    return BrokerConfig(
        password_file="".join(line + "\n" for line in password_lines),
        acl_file=render_acl(topic_root, [str(name) for name, _ in services], gateways),
        devices=len(devices),
        service_accounts=len(services),
    )


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def write_broker_config(config: BrokerConfig, out_dir: Path) -> tuple[Path, Path]:
    """Write ``passwords`` and ``acl`` into ``out_dir`` (mode 0600, replaced atomically)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    password_path, acl_path = out_dir / PASSWORD_FILE, out_dir / ACL_FILE
    _write_private(password_path, config.password_file)
    _write_private(acl_path, config.acl_file)
    return password_path, acl_path
