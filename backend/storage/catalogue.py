"""Device models, their metric catalogue, and devices: rows, not schema."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from backend.storage.dialect import Connection


@dataclass(frozen=True)
class MetricSpec:
    """A metric a device model reports, with its plausible range."""

    name: str
    unit: str = ""
    description: str = ""
    min_value: float | None = None
    max_value: float | None = None
    required: bool = False


def ensure_metric(conn: Connection, spec: MetricSpec) -> int:
    """Id of metric ``spec.name``, creating it if needed (unit/description are updated)."""
    row = conn.execute(
        "INSERT INTO metrics (name, unit, description) VALUES (%s, %s, %s) "
        "ON CONFLICT (name) DO UPDATE SET unit = EXCLUDED.unit, "
        "description = EXCLUDED.description RETURNING id",
        (spec.name, spec.unit, spec.description),
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


def ensure_device_model(
    conn: Connection,
    name: str,
    kind: str,
    metrics: Sequence[MetricSpec],
    manufacturer: str | None = None,
) -> int:
    """Id of device model ``name``, registering it and its metric catalogue if needed."""
    row = conn.execute(
        "INSERT INTO device_models (name, kind, manufacturer) VALUES (%s, %s, %s) "
        "ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind RETURNING id",
        (name, kind, manufacturer),
    ).fetchone()
    assert row is not None
    model_id = int(str(row[0]))
    for spec in metrics:
        metric_id = ensure_metric(conn, spec)
        conn.execute(
            "INSERT INTO device_model_metrics (model_id, metric_id, min_value, max_value, "
            "required) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (model_id, metric_id) DO UPDATE "
            "SET min_value = EXCLUDED.min_value, max_value = EXCLUDED.max_value, "
            "required = EXCLUDED.required",
            (model_id, metric_id, spec.min_value, spec.max_value, spec.required),
        )
    return model_id


def ensure_device(
    conn: Connection,
    external_id: str,
    model_id: int,
    *,
    account_id: int | None = None,
    site_id: int | None = None,
    status: str = "active",
) -> int:
    """Id of device ``external_id``, registering it if needed."""
    row = conn.execute(
        "INSERT INTO devices (external_id, model_id, account_id, site_id, status) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (external_id) DO UPDATE "
        "SET model_id = EXCLUDED.model_id RETURNING id",
        (external_id, model_id, account_id, site_id, status),
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


def metric_ids(conn: Connection) -> dict[str, int]:
    """Every metric name with its id."""
    return {str(name): int(str(mid)) for mid, name in conn.execute("SELECT id, name FROM metrics")}
