from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from models.registry import FileRegistry
from models.registry_db import champion_id, sync_registry
from tests.models.test_registry import make_version

pytestmark = pytest.mark.services


def test_versions_and_champion_are_recorded_in_model_versions(
    fresh_database_url: str, tmp_path: Path
) -> None:
    from backend.storage.migrator import apply_migrations

    apply_migrations(fresh_database_url)
    registry = FileRegistry(tmp_path / "reg")
    for version in ("v1", "v2"):
        registry.register(make_version(tmp_path / version, version=version))
    registry.promote("pump-rul", "v1")
    with psycopg.connect(fresh_database_url) as conn:
        ids = sync_registry(conn, registry)
        assert champion_id(conn, "pump-rul") == ids["pump-rul/v1"]
        registry.promote("pump-rul", "v2")
        again = sync_registry(conn, registry)
        assert again == ids  # idempotent on (name, version)
        assert champion_id(conn, "pump-rul") == ids["pump-rul/v2"]
        rows = conn.execute(
            "SELECT version, status, manifest->>'kind', metrics->>'auc', artifact_sha256 "
            "FROM model_versions ORDER BY version"
        ).fetchall()
    assert [r[:4] for r in rows] == [
        ("v1", "retired", "anomaly_pca", "0.9"),
        ("v2", "champion", "anomaly_pca", "0.9"),
    ]
    assert all(len(r[4]) == 64 for r in rows)
