"""Recording registry versions in the ``model_versions`` table (psycopg 3, synchronous).

The backend reads ``model_versions``; the file registry stays the source of the
artifacts. ``record_version`` is idempotent on ``(name, version)``.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from models.manifest import Manifest
from models.registry import FileRegistry, ModelEntry

_UPSERT = """
INSERT INTO model_versions
    (name, version, kind, status, manifest, metrics, artifact_uri, artifact_sha256,
     created_at, promoted_at, retired_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (name, version) DO UPDATE SET
    status = EXCLUDED.status,
    metrics = EXCLUDED.metrics,
    promoted_at = EXCLUDED.promoted_at,
    retired_at = EXCLUDED.retired_at
RETURNING id
"""


def record_version(conn: psycopg.Connection[Any], entry: ModelEntry, manifest: Manifest) -> int:
    """Insert or update one version; a new champion retires the old one first.

    Runs in one transaction (the caller's, or its own when the connection is idle).

    Returns:
        the ``model_versions.id`` of the row.
    """
    with conn.transaction():
        if entry.status == "champion":
            conn.execute(
                "UPDATE model_versions SET status = 'retired', retired_at = now() "
                "WHERE name = %s AND status = 'champion' AND version <> %s",
                (entry.name, entry.version),
            )
        row = conn.execute(
            _UPSERT,
            (
                entry.name,
                entry.version,
                entry.kind,
                entry.status,
                Jsonb(manifest.model_dump(mode="json")),
                Jsonb(manifest.metrics),
                entry.artifact.resolve().as_uri(),
                manifest.artifact_sha256,
                entry.created_at,
                entry.promoted_at,
                entry.retired_at,
            ),
        ).fetchone()
    assert row is not None
    return int(row[0])


def sync_registry(conn: psycopg.Connection[Any], registry: FileRegistry) -> dict[str, int]:
    """Record every version of the file registry; returns ``"name/version" -> id``."""
    out = {}
    for entry in sorted(registry.list(), key=lambda e: e.status == "champion"):
        manifest = registry.manifest(entry.name, entry.version)
        out[f"{entry.name}/{entry.version}"] = record_version(conn, entry, manifest)
    return out


def champion_id(conn: psycopg.Connection[Any], name: str) -> int | None:
    row = conn.execute(
        "SELECT id FROM model_versions WHERE name = %s AND status = 'champion'", (name,)
    ).fetchone()
    return int(row[0]) if row is not None else None
