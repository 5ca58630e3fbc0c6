"""Load a simulator output directory (``fleetcare sim generate``) into the database.

The source-system exports go through the importer and identity resolution like any real
export; the device registry, service-desk tickets, daily usage and device events follow
the accounts they were resolved to. The simulator has no order book, so orders are derived:
the contract purchase at its start and a service order per breakdown ticket. Renewal
outcomes are ground truth and only loaded when asked (``outcomes=True``), as the CRM would
record them once decided.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from psycopg import Connection

from backend.customers.identity import Thresholds
from backend.customers.importer import ImportReport, import_file
from backend.storage.dialect import TIME_PARTITIONED_TABLES, dialect_for
from backend.storage.migrator import dialect_of

EXPORTS = (
    ("crm", "crm_accounts"),
    ("erp", "erp_customers"),
    ("service", "servicedesk_organisations"),
)
SERVICE_ORDER_EUR = 450.0


@dataclass
class SimLoad:
    imports: list[ImportReport] = field(default_factory=list)
    devices: int = 0
    service_tickets: int = 0
    usage_rows: int = 0
    events: int = 0
    outcomes: int = 0


def _account_of(conn: Connection[Any], source: str) -> dict[str, int]:
    rows = conn.execute(
        "SELECT source_id, account_id FROM account_identities WHERE source = %s "
        "AND superseded_at IS NULL AND status = 'matched'",
        (source,),
    ).fetchall()
    return {str(s): int(a) for s, a in rows}


def load_simulation(
    conn: Connection[Any],
    out_dir: Path,
    *,
    thresholds: Thresholds | None = None,
    outcomes: bool = False,
) -> SimLoad:
    """Load ``out_dir`` (exports, usage, events; outcomes when asked) into the database."""
    thresholds = thresholds or Thresholds()
    result = SimLoad()
    for source, name in EXPORTS:
        result.imports.append(
            import_file(conn, out_dir / "exports" / f"{name}.csv", source, thresholds=thresholds)  # type: ignore[arg-type]
        )
    crm = _account_of(conn, "crm")
    manifest = json.loads((out_dir / "manifest.json").read_text(encoding="utf-8"))
    start = datetime.fromisoformat(manifest["start"])
    end = datetime.fromisoformat(manifest["end"])
    dialect = dialect_for(dialect_of(conn).name)
    with conn.transaction():
        for table in TIME_PARTITIONED_TABLES:
            dialect.ensure_partitions(
                conn, table, start - timedelta(days=1), end + timedelta(days=1)
            )
    device_ids = _load_devices(conn, out_dir, crm)
    result.devices = len(device_ids)
    result.service_tickets = _load_tickets(conn, out_dir, device_ids)
    result.usage_rows = _load_usage(conn, out_dir, device_ids)
    result.events = _load_events(conn, out_dir, device_ids)
    _derive_orders(conn)
    if outcomes:
        result.outcomes = load_outcomes(conn, out_dir)
    return result


def _load_devices(conn: Connection[Any], out_dir: Path, crm: dict[str, int]) -> dict[str, int]:
    registry = json.loads(
        (out_dir / "exports" / "device_registry.json").read_text(encoding="utf-8")
    )
    ids: dict[str, int] = {}
    for row in registry:
        model = conn.execute(
            "INSERT INTO device_models (name, kind) VALUES (%s, %s) ON CONFLICT (name) "
            "DO UPDATE SET kind = EXCLUDED.kind RETURNING id",
            (row["model"], row["machine_type"]),
        ).fetchone()
        assert model is not None
        account_id = crm.get(row["customer_ref"])
        site = None
        if account_id is not None:
            found = conn.execute(
                "SELECT id FROM sites WHERE account_id = %s AND name = %s",
                (account_id, row["site_name"]),
            ).fetchone()
            site = (
                found
                or conn.execute(
                    "INSERT INTO sites (account_id, name) VALUES (%s, %s) RETURNING id",
                    (account_id, row["site_name"]),
                ).fetchone()
            )
        device = conn.execute(
            "INSERT INTO devices (external_id, model_id, account_id, site_id, serial_number, "
            "firmware_version, status, installed_at) VALUES (%s, %s, %s, %s, %s, %s, 'active', %s) "
            "ON CONFLICT (external_id) DO UPDATE SET account_id = EXCLUDED.account_id, "
            "site_id = EXCLUDED.site_id RETURNING id",
            (
                row["device_id"],
                model[0],
                account_id,
                site[0] if site else None,
                row["serial"],
                row["firmware"],
                row["installed_on"],
            ),
        ).fetchone()
        assert device is not None
        ids[row["device_id"]] = int(device[0])
    return ids


def _load_tickets(conn: Connection[Any], out_dir: Path, device_ids: dict[str, int]) -> int:
    tickets = json.loads(
        (out_dir / "exports" / "servicedesk_tickets.json").read_text(encoding="utf-8")
    )
    org = _account_of(conn, "service")
    by_serial = dict(
        conn.execute(
            "SELECT serial_number, id FROM devices WHERE serial_number IS NOT NULL"
        ).fetchall()
    )
    rows = [
        (
            t["ticket_id"],
            org.get(t["org_id"]),
            t["org_id"],
            by_serial.get(t["serial"]) if t["serial"] else None,
            t["category"],
            t["opened_at"],
            t["first_response_at"] or None,
            t["resolved_at"] if t["status"] == "resolved" else None,
        )
        for t in tickets
    ]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO service_tickets (source_id, account_id, org_ref, device_id, category, "
            "opened_at, first_response_at, resolved_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (source_id) DO NOTHING",
            rows,
        )
    return len(rows)


def _load_usage(conn: Connection[Any], out_dir: Path, device_ids: dict[str, int]) -> int:
    table = pq.read_table(out_dir / "usage" / "usage.parquet").to_pylist()
    count = 0
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY usage_records (time, device_id, seq, kind, name, value, attributes) FROM STDIN"
        ) as copy,
    ):
        for row in table:
            device = device_ids.get(row["device_id"])
            if device is None:
                continue
            at = datetime.combine(row["date"], datetime.min.time(), UTC) + timedelta(hours=23)
            base = row["date"].toordinal() * 16
            values: list[tuple[str, float, str]] = [
                ("operating_hours", float(row["operating_hours"]), "{}"),
                ("sessions", float(row["sessions"]), "{}"),
            ]
            values += [
                ("feature_use", float(v), json.dumps({"feature": k.removeprefix("feature_")}))
                for k, v in row.items()
                if k.startswith("feature_") and v
            ]
            for offset, (name, value, attrs) in enumerate(values):
                copy.write_row((at, device, base + offset, "usage", name, value, attrs))
                count += 1
    return count


def _load_events(conn: Connection[Any], out_dir: Path, device_ids: dict[str, int]) -> int:
    rows = pq.read_table(out_dir / "events" / "events.parquet").to_pylist()
    count = 0
    with (
        conn.cursor() as cur,
        cur.copy("COPY device_events (time, device_id, seq, kind, code) FROM STDIN") as copy,
    ):
        for seq, row in enumerate(rows):
            device = device_ids.get(str(row["device_id"]))
            if device is not None:
                copy.write_row((row["ts"], device, seq, row["kind"], row["code"]))
                count += 1
    return count


def _derive_orders(conn: Connection[Any]) -> None:
    conn.execute(
        "INSERT INTO orders (account_id, ordered_at, amount, kind, source_ref) "
        "SELECT account_id, start_date, annual_value, 'purchase', 'sim:' || id FROM contracts c "
        "WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.source_ref = 'sim:' || c.id)"
    )
    conn.execute(
        "INSERT INTO orders (account_id, ordered_at, amount, kind, source_ref) "
        "SELECT account_id, opened_at, %s, 'service', 'sim:' || source_id FROM service_tickets t "
        "WHERE category = 'breakdown' AND account_id IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM orders o WHERE o.source_ref = 'sim:' || t.source_id)",
        (SERVICE_ORDER_EUR,),
    )


def true_account_map(conn: Connection[Any], out_dir: Path) -> dict[str, int]:
    """Simulator account id -> resolved account id, through its first matched record
    (CRM, then ERP, then service desk)."""
    identity = json.loads(
        (out_dir / "ground_truth" / "identity_map.json").read_text(encoding="utf-8")
    )
    systems = {"crm": "crm", "erp": "erp", "servicedesk": "service"}
    matched = {source: _account_of(conn, source) for source in systems.values()}
    mapping: dict[str, int] = {}
    for system in systems:
        for row in identity:
            account = matched[systems[system]].get(row["source_id"])
            if row["system"] == system and account is not None:
                mapping.setdefault(row["account_id"], account)
    return mapping


def load_outcomes(conn: Connection[Any], out_dir: Path) -> int:
    """Record the simulated renewal outcomes (ground truth) as the CRM would; how many."""
    truth = pq.read_table(out_dir / "ground_truth" / "outcomes.parquet").to_pylist()
    mapping = true_account_map(conn, out_dir)
    count = 0
    for row in truth:
        account_id = mapping.get(row["account_id"])
        if row["outcome"] == "pending" or account_id is None:
            continue
        outcome = {"churn": "churned", "renew": "renewed", "expand": "expanded"}[row["outcome"]]
        conn.execute(
            "INSERT INTO account_outcomes (account_id, decided_at, outcome, notes) "
            "VALUES (%s, %s, %s, %s)",
            (account_id, row["renewal_date"], outcome, row["reason"] or None),
        )
        count += 1
    return count
