"""A small seeded fleet for the API tests: users of every role, two CSMs' accounts, tickets."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from backend.api.auth import create_api_key, create_user
from backend.storage.catalogue import MetricSpec, ensure_device, ensure_device_model

START = datetime(2026, 3, 1, tzinfo=UTC)
METRICS = (
    MetricSpec("temperature_c", unit="degC", min_value=-40, max_value=150),
    MetricSpec("vibration_rms", unit="mm/s", min_value=0, max_value=100),
)


@dataclass
class Fleet:
    """Ids and plaintext keys of the seeded rows."""

    user_ids: dict[str, int] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    account_ids: dict[str, int] = field(default_factory=dict)
    site_ids: dict[str, int] = field(default_factory=dict)
    device_ids: dict[str, int] = field(default_factory=dict)
    ticket_ids: dict[str, int] = field(default_factory=dict)
    alert_ids: dict[str, int] = field(default_factory=dict)
    model_version_id: int = 0
    model_name: str = "pump-x1"

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


USERS: dict[str, dict[str, Any]] = {
    "admin": {"role": "admin"},
    "viewer": {"role": "viewer"},
    "csm_anna": {"role": "csm", "email": "anna@example.com"},
    "csm_ben": {"role": "csm", "email": "ben@example.com"},
    "field_north": {"role": "field", "region": "north", "team": "north-1"},
    "field_south": {"role": "field", "region": "south", "team": "south-1"},
    "provisioner": {"role": "provisioner"},
}


def _one(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...]) -> int:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(row[0])


def seed_fleet(conn: psycopg.Connection[Any]) -> Fleet:
    """Two accounts (Anna's and Ben's), a site each, devices, tickets in north and south."""
    fleet = Fleet()
    for name, spec in USERS.items():
        user_id = create_user(
            conn,
            name,
            spec["role"],
            email=spec.get("email"),
            region=spec.get("region"),
            team=spec.get("team"),
        )
        fleet.user_ids[name] = user_id
        fleet.keys[name] = create_api_key(conn, user_id, f"test {name}")
    for key, csm in (("acme", "csm_anna"), ("globex", "csm_ben")):
        fleet.account_ids[key] = _one(
            conn,
            "INSERT INTO accounts (customer_key, name, region, csm_user_id)"
            " VALUES (%s, %s, %s, %s) RETURNING id",
            (key, key.title(), "north" if key == "acme" else "south", fleet.user_ids[csm]),
        )
        fleet.site_ids[key] = _one(
            conn,
            "INSERT INTO sites (account_id, name, region) VALUES (%s, %s, %s) RETURNING id",
            (fleet.account_ids[key], f"{key} plant", "north" if key == "acme" else "south"),
        )
    model_id = ensure_device_model(conn, fleet.model_name, "pump", METRICS)  # type: ignore[arg-type]
    for account in ("acme", "globex"):
        for i in range(3):
            external_id = f"{account}-pump-{i}"
            fleet.device_ids[external_id] = ensure_device(
                conn,  # type: ignore[arg-type]
                external_id,
                model_id,
                account_id=fleet.account_ids[account],
                site_id=fleet.site_ids[account],
            )
    fleet.model_version_id = _one(
        conn,
        "INSERT INTO model_versions (name, version, kind, status, manifest, artifact_uri,"
        " artifact_sha256) VALUES ('pump-risk', '1.0.0', 'failure_risk', 'champion', %s,"
        " 'file:///models/pump-risk-1.0.0.onnx', %s) RETURNING id",
        (json.dumps({"features": ["temperature_c__mean"], "window_hours": 24}), "a" * 64),
    )
    for external_id, risk in (("acme-pump-0", 0.8), ("globex-pump-0", 0.7)):
        for hours in (0, 1, 2):
            conn.execute(
                "INSERT INTO predictions (predicted_at, device_id, model_version_id,"
                " window_start, window_end, horizon_hours, failure_risk, rul_hours,"
                " failure_mode, mode_probabilities) VALUES (%s, %s, %s, %s, %s, 72, %s, %s,"
                " 'bearing_wear', %s)",
                (
                    START + timedelta(hours=hours),
                    fleet.device_ids[external_id],
                    fleet.model_version_id,
                    START + timedelta(hours=hours - 24),
                    START + timedelta(hours=hours),
                    risk + hours / 100,
                    100.0 - hours,
                    json.dumps({"bearing_wear": risk}),
                ),
            )
    for external_id, region, team in (
        ("acme-pump-0", "north", "north-1"),
        ("globex-pump-0", "south", "south-1"),
    ):
        device_id = fleet.device_ids[external_id]
        account = external_id.split("-")[0]
        fleet.ticket_ids[external_id] = _one(
            conn,
            "INSERT INTO tickets (dedup_key, device_id, account_id, site_id, region, team,"
            " failure_mode, failure_risk, priority) VALUES (%s, %s, %s, %s, %s, %s,"
            " 'bearing_wear', 0.8, 2) RETURNING id",
            (
                f"{device_id}:bearing_wear",
                device_id,
                fleet.account_ids[account],
                fleet.site_ids[account],
                region,
                team,
            ),
        )
    return fleet
