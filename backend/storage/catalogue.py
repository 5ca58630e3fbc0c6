"""Device models, their metric catalogue, and devices: rows, not schema."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from backend.storage.dialect import Connection
from backend.storage.errors import StorageError


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
    """Id of device model ``name``, registering it and its metric catalogue if needed.

    Metrics new to the model take the next free position of its value array; metrics
    already in the catalogue keep theirs (positions are never reused or moved).
    """
    row = conn.execute(
        "INSERT INTO device_models (name, kind, manufacturer) VALUES (%s, %s, %s) "
        "ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind RETURNING id",
        (name, kind, manufacturer),
    ).fetchone()
    assert row is not None
    model_id = int(str(row[0]))
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('fleetcare.catalogue'), %s)", (model_id,))
    for spec in metrics:
        metric_id = ensure_metric(conn, spec)
        conn.execute(
            "INSERT INTO device_model_metrics (model_id, metric_id, position, min_value, "
            "max_value, required) SELECT %(model)s, %(metric)s, "
            "coalesce(max(position), 0) + 1, %(lo)s, %(hi)s, %(required)s "
            "FROM device_model_metrics WHERE model_id = %(model)s "
            "ON CONFLICT (model_id, metric_id) DO UPDATE "
            "SET min_value = EXCLUDED.min_value, max_value = EXCLUDED.max_value, "
            "required = EXCLUDED.required",
            {
                "model": model_id,
                "metric": metric_id,
                "lo": spec.min_value,
                "hi": spec.max_value,
                "required": spec.required,
            },
        )
    return model_id


def model_positions(conn: Connection, model_id: int) -> dict[str, int]:
    """Metric name -> position in the value array, for one device model."""
    rows = conn.execute(
        "SELECT m.name, dm.position FROM device_model_metrics dm "
        "JOIN metrics m ON m.id = dm.metric_id WHERE dm.model_id = %s",
        (model_id,),
    ).fetchall()
    return {str(name): int(str(pos)) for name, pos in rows}


def ensure_device(
    conn: Connection,
    external_id: str,
    model_id: int,
    *,
    account_id: int | None = None,
    site_id: int | None = None,
    status: str = "active",
) -> int:
    """Id of device ``external_id``, registering it if needed.

    Raises:
        StorageError: the device exists with another model (its telemetry positions
            belong to that model's catalogue, so the model of a device never changes).
    """
    conn.execute(
        "INSERT INTO devices (external_id, model_id, account_id, site_id, status) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (external_id) DO NOTHING",
        (external_id, model_id, account_id, site_id, status),
    )
    row = conn.execute(
        "SELECT id, model_id FROM devices WHERE external_id = %s", (external_id,)
    ).fetchone()
    assert row is not None
    if int(str(row[1])) != model_id:
        raise StorageError(
            f"device {external_id} is registered with model {row[1]}, not {model_id}; "
            "register a new device id for a different model"
        )
    return int(str(row[0]))


def metric_ids(conn: Connection) -> dict[str, int]:
    """Every metric name with its id."""
    return {str(name): int(str(mid)) for mid, name in conn.execute("SELECT id, name FROM metrics")}
