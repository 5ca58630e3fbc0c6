"""Versioned SQL migrations: idempotent, recorded, safe when several processes run them.

Files live in ``backend/storage/migrations`` as ``NNNN_name.sql`` (both dialects) or
``NNNN_name.timescaledb.sql`` + ``NNNN_name.postgres.sql`` (one per dialect). Each migration
runs in its own transaction and is recorded in ``fleetcare_migrations`` with its checksum;
a session-level advisory lock serialises concurrent migrators. The dialect is chosen once,
on the first migration, and recorded in ``fleetcare_meta``.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

from backend.storage.connect import connect
from backend.storage.dialect import (
    DIALECT_NAMES,
    Connection,
    Dialect,
    DialectName,
    choose_dialect,
    dialect_for,
    ensure_partitions_around,
)
from backend.storage.errors import DialectError, MigrationDriftError, MigrationError

MIGRATIONS_PACKAGE = "backend.storage.migrations"
LOCK_KEY = int.from_bytes(b"fleetmig", "big") & 0x7FFF_FFFF_FFFF_FFFF
LOCK_WAIT_S = 120.0
_FILE_PATTERN = re.compile(
    r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)(?:\.(?P<dialect>timescaledb|postgres))?\.sql$"
)

_BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS fleetcare_migrations (
    version      integer PRIMARY KEY,
    name         text NOT NULL,
    checksum     text NOT NULL,
    applied_at   timestamptz NOT NULL DEFAULT now(),
    duration_ms  integer NOT NULL
);
CREATE TABLE IF NOT EXISTS fleetcare_meta (
    key    text PRIMARY KEY,
    value  text NOT NULL
);
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


@dataclass(frozen=True)
class AppliedMigration:
    version: int
    name: str
    applied_at: datetime
    checksum: str


@dataclass(frozen=True)
class MigrationRun:
    """The outcome of :func:`apply_migrations`."""

    dialect: DialectName
    applied: list[str]
    already_applied: int


@dataclass(frozen=True)
class MigrationStatus:
    """What :func:`migration_status` found; ``dialect`` is ``None`` before the first migration."""

    dialect: DialectName | None
    applied: list[AppliedMigration]
    pending: list[str]


def load_migrations(dialect: DialectName) -> list[Migration]:
    """The migrations for ``dialect`` in version order.

    Raises:
        MigrationError: on a misnamed file, a duplicate version, a version with only one
            dialect variant, or a gap in the version sequence.
    """
    by_version: dict[int, dict[str | None, tuple[str, str]]] = {}
    for entry in resources.files(MIGRATIONS_PACKAGE).iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE_PATTERN.match(entry.name)
        if match is None:
            raise MigrationError(
                f"migration file {entry.name!r} does not match NNNN_name[.dialect].sql"
            )
        version = int(match["version"])
        variants = by_version.setdefault(version, {})
        key = match["dialect"]
        if key in variants:
            raise MigrationError(f"two migration files for version {version}", version)
        variants[key] = (match["name"], entry.read_text(encoding="utf-8"))
    migrations = []
    for expected, version in enumerate(sorted(by_version), start=1):
        if version != expected:
            raise MigrationError(f"migration versions must be 1..N; {expected} is missing", version)
        variants = by_version[version]
        if None in variants and len(variants) > 1:
            raise MigrationError(f"version {version} has both common and dialect files", version)
        if None not in variants and set(variants) != set(DIALECT_NAMES):
            raise MigrationError(f"version {version} lacks a variant for one dialect", version)
        name, text = variants[None] if None in variants else variants[dialect]
        migrations.append(Migration(version, name, text))
    return migrations


def _acquire_lock(conn: Connection, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while True:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
        if row and row[0]:
            return
        if time.monotonic() > deadline:
            raise MigrationError(
                f"another process has held the migration lock for over {wait_s:.0f} s"
            )
        time.sleep(0.1)


def _recorded_dialect(conn: Connection) -> DialectName | None:
    exists = conn.execute("SELECT to_regclass('fleetcare_meta')").fetchone()
    if not exists or exists[0] is None:
        return None
    row = conn.execute("SELECT value FROM fleetcare_meta WHERE key = 'dialect'").fetchone()
    if row is None:
        return None
    value = str(row[0])
    for name in DIALECT_NAMES:
        if value == name:
            return name
    raise DialectError(f"fleetcare_meta records an unknown dialect {value!r}")


def _applied(conn: Connection) -> dict[int, AppliedMigration]:
    exists = conn.execute("SELECT to_regclass('fleetcare_migrations')").fetchone()
    if not exists or exists[0] is None:
        return {}
    rows = conn.execute(
        "SELECT version, name, applied_at, checksum FROM fleetcare_migrations ORDER BY version"
    ).fetchall()
    return {
        int(str(v)): AppliedMigration(int(str(v)), str(n), a, str(c))  # type: ignore[arg-type]
        for v, n, a, c in rows
    }


def _check_drift(migrations: list[Migration], applied: dict[int, AppliedMigration]) -> None:
    for migration in migrations:
        done = applied.get(migration.version)
        if done is not None and done.checksum != migration.checksum:
            raise MigrationDriftError(
                f"migration {migration.label} changed after it was applied "
                f"(recorded sha256 {done.checksum[:12]}…, file {migration.checksum[:12]}…); "
                "add a new migration instead of editing an applied one",
                migration.version,
            )


def apply_migrations(
    url: str, dialect: str = "auto", *, timeout_s: float = 5.0, lock_wait_s: float = LOCK_WAIT_S
) -> MigrationRun:
    """Apply every pending migration to the database at ``url``.

    Safe to run repeatedly and from several processes at once.

    Raises:
        ServiceUnavailableError: the database cannot be reached.
        DialectError: ``dialect`` conflicts with the one the database was migrated with.
        MigrationDriftError: an applied migration file was edited.
        MigrationError: a migration failed (its transaction is rolled back).
    """
    with connect(url, timeout_s, autocommit=True) as conn:
        _acquire_lock(conn, lock_wait_s)
        try:
            conn.execute(_BOOTSTRAP)
            recorded = _recorded_dialect(conn)
            if recorded is not None and dialect not in ("auto", recorded):
                raise DialectError(
                    f"database was migrated with dialect {recorded}; cannot switch to {dialect}"
                )
            chosen: DialectName = recorded or choose_dialect(conn, dialect)
            if recorded is None:
                conn.execute(
                    "INSERT INTO fleetcare_meta (key, value) VALUES ('dialect', %s) "
                    "ON CONFLICT (key) DO NOTHING",
                    (chosen,),
                )
            migrations = load_migrations(chosen)
            applied = _applied(conn)
            _check_drift(migrations, applied)
            newly: list[str] = []
            for migration in migrations:
                if migration.version in applied:
                    continue
                started = time.monotonic()
                try:
                    with conn.transaction():
                        conn.execute(migration.sql.encode())
                        conn.execute(
                            "INSERT INTO fleetcare_migrations (version, name, checksum, "
                            "duration_ms) VALUES (%s, %s, %s, %s)",
                            (
                                migration.version,
                                migration.name,
                                migration.checksum,
                                round((time.monotonic() - started) * 1000),
                            ),
                        )
                except Exception as exc:
                    raise MigrationError(
                        f"migration {migration.label} failed and was rolled back: {exc}",
                        migration.version,
                    ) from exc
                newly.append(migration.label)
            ensure_partitions_around(conn, dialect_for(chosen), datetime.now(UTC))
            return MigrationRun(chosen, newly, len(applied))
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


def migration_status(url: str, *, timeout_s: float = 5.0) -> MigrationStatus:
    """Which migrations are applied (with when) and which are pending."""
    with connect(url, timeout_s, autocommit=True) as conn:
        recorded = _recorded_dialect(conn)
        applied = _applied(conn)
        dialect_name: DialectName = recorded or choose_dialect(conn, "auto")
        migrations = load_migrations(dialect_name)
        pending = [m.label for m in migrations if m.version not in applied]
        return MigrationStatus(recorded, sorted(applied.values(), key=lambda m: m.version), pending)


def dialect_of(conn: Connection) -> Dialect:
    """The dialect a migrated database was set up with.

    Raises:
        MigrationError: the database has not been migrated yet.
    """
    recorded = _recorded_dialect(conn)
    if recorded is None:
        raise MigrationError("database is not migrated yet: run `fleetcare db migrate`")
    return dialect_for(recorded)
