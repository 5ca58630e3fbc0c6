"""A simulated fleet in the database, with everything the dashboards read.

The telemetry, device events and failures come from :mod:`firmware_sim` (the same engine as
``fleetcare sim generate``); the rows of services that act on them (predictions, health
scores, segments, tickets, alerts, the notification outbox, dead letters) are derived from
the simulation's ground truth with a seeded random generator, so that every panel of every
dashboard shows real numbers. Used by the dashboard tests and benchmark, and to demo
Grafana on an empty database.

Telemetry is written with ``INSERT`` (both dialects; the TimescaleDB WebAssembly server has
no ``COPY``) or with the binary ``COPY`` writer of the ingest (``method="copy"``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

import numpy as np
from psycopg.types.json import Jsonb

from backend.ingest.reasons import Reason
from backend.storage.catalogue import MetricSpec, ensure_device_model
from backend.storage.copy_writer import TelemetryCopyBatch, copy_telemetry, pack_reading
from backend.storage.dialect import Connection, Dialect
from backend.storage.telemetry import Reading, insert_readings
from firmware_sim.config import SimConfig
from firmware_sim.engagement import simulate_engagement
from firmware_sim.engine import DayBlock, Simulation
from firmware_sim.fleet import Fleet, build_fleet
from firmware_sim.groundtruth import GroundTruthLog
from firmware_sim.machines import MACHINE_TYPES, machine_spec

__all__ = ["BlockWriter", "SampleFleet", "WriteMethod", "load_sample_fleet", "start_for"]

WriteMethod = Literal["insert", "copy"]
#: Writes one simulated day of one machine type (device external id -> database id);
#: returns the readings written.
BlockWriter = Callable[[DayBlock, Mapping[str, int]], int]
BANDS = (("healthy", 75.0), ("watch", 60.0), ("at_risk", 40.0), ("critical", -1.0))
SEGMENTS = ("champions", "loyal", "potential", "needs_attention", "dormant")
OPEN_STATUSES = ("open", "assigned", "in_progress")


@dataclass(frozen=True)
class SampleFleet:
    """What was loaded: the time span and the database ids of devices and accounts."""

    start: datetime
    end: datetime
    device_ids: dict[str, int]
    account_ids: dict[str, int]
    readings: int
    failures: int


def start_for(days: int, now: datetime | None = None) -> date:
    """The simulation start that makes ``days`` of history end today (UTC midnight)."""
    today = (now or datetime.now(UTC)).date()
    return today - timedelta(days=days)


def _at(config: SimConfig, step: int) -> datetime:
    return config.start_at + timedelta(seconds=step * config.interval_s)


def _register(conn: Connection, fleet: Fleet) -> tuple[dict[str, int], dict[str, int]]:
    """Users, accounts, contracts, sites, device models and devices; returns id maps."""
    with conn.transaction(), conn.cursor() as cur:
        csm_ids: dict[str, int] = {}
        for csm in fleet.csms:
            row = cur.execute(
                "INSERT INTO users (name, email, role) VALUES (%s, %s, 'csm') RETURNING id",
                (csm.name, csm.email),
            ).fetchone()
            assert row is not None
            csm_ids[csm.csm_id] = int(str(row[0]))
        account_ids: dict[str, int] = {}
        for account in fleet.accounts:
            row = cur.execute(
                "INSERT INTO accounts (customer_key, name, domain, industry, size_band, region,"
                " country, csm_user_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (
                    account.account_id,
                    account.name,
                    account.domain,
                    account.industry,
                    account.size,
                    account.region,
                    account.country,
                    csm_ids.get(account.csm_id),
                ),
            ).fetchone()
            assert row is not None
            account_ids[account.account_id] = int(str(row[0]))
            end = account.contract_start + timedelta(days=30 * account.term_months)
            cur.execute(
                "INSERT INTO contracts (account_id, annual_value, currency, start_date, end_date,"
                " renewal_date) VALUES (%s, %s, %s, %s, %s, %s)",
                (
                    account_ids[account.account_id],
                    round(account.contract_value, 2),
                    account.currency,
                    account.contract_start,
                    max(end, account.renewal_date),
                    account.renewal_date,
                ),
            )
        site_ids: dict[str, int] = {}
        for site in fleet.sites:
            row = cur.execute(
                "INSERT INTO sites (account_id, name, region) VALUES (%s, %s, %s) RETURNING id",
                (account_ids[site.account_id], site.name, site.region),
            ).fetchone()
            assert row is not None
            site_ids[site.site_id] = int(str(row[0]))
        model_ids: dict[str, int] = {}
        for machine_type in MACHINE_TYPES:
            spec = machine_spec(machine_type)
            metrics = [
                MetricSpec(m.name, m.unit, m.description, m.low, m.high) for m in spec.metrics
            ]
            model_ids[machine_type] = ensure_device_model(conn, machine_type, machine_type, metrics)
        device_ids: dict[str, int] = {}
        for device in fleet.devices:
            row = cur.execute(
                "INSERT INTO devices (external_id, model_id, account_id, site_id, serial_number,"
                " firmware_version, status, installed_at) VALUES (%s, %s, %s, %s, %s, %s,"
                " 'active', %s) RETURNING id",
                (
                    device.device_id,
                    model_ids[device.machine_type],
                    account_ids[device.account_id],
                    site_ids[device.site_id],
                    device.serial,
                    device.firmware,
                    datetime.combine(device.installed_on, datetime.min.time(), UTC),
                ),
            ).fetchone()
            assert row is not None
            device_ids[device.device_id] = int(str(row[0]))
    return device_ids, account_ids


def _block_rows(
    block: DayBlock, config: SimConfig, device_ids: dict[str, int]
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Per device of a day block: its database id, the steps and the values (steps × width)."""
    names = machine_spec(block.machine_type).metric_names
    values = np.stack([block.values[name] for name in names], axis=-1).astype(np.float64)
    steps = np.arange(block.first_step, block.first_step + values.shape[1], dtype=np.int64)
    for index, external_id in enumerate(block.device_ids):
        yield device_ids[external_id], steps, values[index]


def _write_block(
    conn: Connection,
    dialect: Dialect,
    block: DayBlock,
    config: SimConfig,
    device_ids: dict[str, int],
    method: WriteMethod,
) -> int:
    start_ms = int(config.start_at.timestamp() * 1000)
    step_ms = config.interval_s * 1000
    if method == "insert":
        readings = [
            Reading(
                _at(config, int(step)),
                device_id,
                int(step),
                [None if np.isnan(v) else float(v) for v in row],
            )
            for device_id, steps, values in _block_rows(block, config, device_ids)
            for step, row in zip(steps, values, strict=True)
        ]
        return insert_readings(conn, dialect, readings)
    parts: list[bytes] = []
    rows = 0
    for device_id, steps, values in _block_rows(block, config, device_ids):
        for step, row in zip(steps.tolist(), values, strict=True):
            vals = [None if np.isnan(v) else float(v) for v in row]
            parts.append(pack_reading(start_ms + step * step_ms, device_id, step, vals))
        rows += len(steps)
    day_start = _at(config, block.first_step)
    with conn.transaction():
        dialect.ensure_partitions(conn, "telemetry", day_start, day_start + timedelta(days=1))
        return copy_telemetry(conn, TelemetryCopyBatch(parts, rows)).inserted


def _events(
    conn: Connection,
    dialect: Dialect,
    config: SimConfig,
    log: GroundTruthLog,
    device_ids: dict[str, int],
) -> None:
    horizon = config.days * config.steps_per_day
    rows = [
        (_at(config, e.step), device_ids[e.device_id], index, e.kind, e.code)
        for index, e in enumerate(log.device_events)
        if e.step < horizon
    ]
    with conn.transaction(), conn.cursor() as cur:
        dialect.ensure_partitions(conn, "device_events", config.start_at, config.end_at)
        cur.executemany(
            "INSERT INTO device_events (time, device_id, seq, kind, severity, code, message)"
            " VALUES (%s, %s, %s, %s, CASE WHEN %s = 'trip' THEN 'error' ELSE 'info' END, %s,"
            " %s)",
            [(t, d, s, k, k, c, f"{k} ({c})") for t, d, s, k, c in rows],
        )


def _liveness(
    conn: Connection, end: datetime, device_ids: dict[str, int], g: np.random.Generator
) -> None:
    """Most devices online, a few gone quiet, with their online/offline events."""
    rows = []
    for device_id in device_ids.values():
        offline = bool(g.random() < 0.06)
        seen = end - timedelta(minutes=float(g.uniform(30, 600) if offline else g.uniform(0, 2)))
        rows.append((not offline, seen, device_id))
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany("UPDATE devices SET online = %s, last_seen_at = %s WHERE id = %s", rows)
        cur.executemany(
            "INSERT INTO device_events (time, device_id, kind, severity, message)"
            " VALUES (%s, %s, %s, 'info', %s)",
            [
                (seen, device_id, "online" if online else "offline", "liveness")
                for online, seen, device_id in rows
            ],
        )


def _predictions(
    conn: Connection,
    config: SimConfig,
    log: GroundTruthLog,
    device_ids: dict[str, int],
    every_h: int,
    g: np.random.Generator,
) -> None:
    """A prediction per device every ``every_h`` hours: risk and RUL from the true failures."""
    failures: dict[str, list[tuple[datetime, str]]] = {}
    for failure in sorted(log.failures, key=lambda f: f.step):
        failures.setdefault(failure.device_id, []).append((_at(config, failure.step), failure.mode))
    with conn.transaction(), conn.cursor() as cur:
        row = cur.execute(
            "INSERT INTO model_versions (name, version, kind, status, manifest, artifact_uri,"
            " artifact_sha256, promoted_at) VALUES ('failure', 'sample-1', 'failure_risk',"
            " 'champion', %s, 'memory://sample', %s, %s) RETURNING id",
            (Jsonb({"horizon_hours": 168}), "0" * 64, config.start_at),
        ).fetchone()
        assert row is not None
        model_id = int(str(row[0]))
        rows = []
        times = [
            config.start_at + timedelta(hours=h)
            for h in range(every_h, config.days * 24 + 1, every_h)
        ]
        for external_id, device_id in device_ids.items():
            ahead = failures.get(external_id, [])
            default_rul = float(g.uniform(24, 1500))
            for at in times:
                upcoming = next(((t, m) for t, m in ahead if t > at), None)
                if upcoming is not None:
                    rul = (upcoming[0] - at).total_seconds() / 3600
                    mode: str | None = upcoming[1]
                else:
                    rul = max(default_rul - (at - config.start_at).total_seconds() / 3600, 24.0)
                    mode = None
                risk = float(np.clip(np.exp(-rul / 120.0) + g.normal(0, 0.02), 0.0, 1.0))
                latency_s = float(g.gamma(2.0, 4.0))
                window_end = at - timedelta(seconds=latency_s)
                rows.append(
                    (
                        at,
                        device_id,
                        model_id,
                        window_end - timedelta(hours=24),
                        window_end,
                        risk,
                        round(rul, 1),
                        mode if risk > 0.2 else None,
                    )
                )
        cur.executemany(
            "INSERT INTO predictions (predicted_at, device_id, model_version_id, window_start,"
            " window_end, horizon_hours, failure_risk, rul_hours, failure_mode)"
            " VALUES (%s, %s, %s, %s, %s, 168, %s, %s, %s)",
            rows,
        )


def _band(score: float) -> str:
    return next(name for name, floor in BANDS if score >= floor)


def _health(
    conn: Connection,
    config: SimConfig,
    account_ids: dict[str, int],
    g: np.random.Generator,
) -> dict[int, tuple[float, str, float]]:
    """Daily health scores and weekly segments per account; returns the latest per account."""
    engagement = simulate_engagement(config.seed, config.n_accounts, config.days)
    latest: dict[int, tuple[float, str, float]] = {}
    scores, segments = [], []
    for day in range(config.days):
        at = config.start_at + timedelta(days=day + 1) - timedelta(minutes=5)
        level = engagement.on(day)
        for index, account_id in enumerate(account_ids.values()):
            score = float(np.clip(62 + 18 * level[index] + g.normal(0, 4), 0, 100))
            previous = latest.get(account_id, (score, "", 0.0))[0]
            churn = float(np.clip(1 - score / 100 + g.normal(0, 0.05), 0, 1))
            band = _band(score)
            latest[account_id] = (score, band, churn)
            scores.append(
                (
                    account_id,
                    at,
                    round(score, 1),
                    band,
                    round(score - previous, 2),
                    round(churn, 3),
                    Jsonb({"usage": round(score * 0.4, 1), "service": round(score * 0.3, 1)}),
                    Jsonb({"engagement": float(level[index])}),
                )
            )
            if day % 7 == 0:
                segment = SEGMENTS[min(int((100 - score) / 15), len(SEGMENTS) - 1)]
                segments.append((account_id, at, segment, Jsonb({"score": round(score, 1)})))
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO health_scores (account_id, computed_at, score, band, trend, churn_risk,"
            " components, inputs, weights_version) VALUES (%s, %s, %s, %s, %s, %s, %s, %s,"
            " 'sample-1')",
            scores,
        )
        cur.executemany(
            "INSERT INTO account_segments (account_id, computed_at, segment, features)"
            " VALUES (%s, %s, %s, %s)",
            segments,
        )
    return latest


def _tickets(
    conn: Connection,
    config: SimConfig,
    log: GroundTruthLog,
    device_ids: dict[str, int],
    end: datetime,
    g: np.random.Generator,
) -> list[tuple[int, datetime]]:
    """A ticket ahead of every true failure and false alarms on other devices, over the
    simulated span and the 30 days before it (ticket history predates the telemetry);
    returns (id, created) of each ticket."""
    candidates: list[tuple[str, datetime, str, bool]] = [
        (f.device_id, _at(config, f.step), f.mode, True) for f in log.failures
    ]
    history_start = config.start_at - timedelta(days=30)
    span_h = (end - history_start).total_seconds() / 3600
    externals = list(device_ids)
    for index in g.choice(len(externals), size=max(4, len(externals) // 8)):
        at = history_start + timedelta(hours=float(g.uniform(0, span_h)))
        candidates.append((externals[int(index)], at, "bearing_wear", bool(g.random() < 0.6)))
    created: list[tuple[int, datetime]] = []
    open_keys: set[tuple[int, str]] = set()
    with conn.transaction(), conn.cursor() as cur:
        for external_id, failure_at, mode, real in sorted(candidates, key=lambda c: c[1]):
            device_id = device_ids[external_id]
            lead = timedelta(hours=float(g.uniform(24, 14 * 24)))
            opened = max(failure_at - lead, history_start)
            if opened >= end:
                continue
            due_by = opened + timedelta(hours=float(g.uniform(4, 48)))
            resolved = due_by if due_by < end and (real or g.random() > 0.3) else None
            if resolved is None:
                if (device_id, mode) in open_keys:
                    continue
                open_keys.add((device_id, mode))
                status, outcome = str(g.choice(OPEN_STATUSES)), None
            else:
                status = "resolved"
                if real:
                    outcome = "failure_prevented" if resolved < failure_at else "failure_confirmed"
                else:
                    outcome = str(g.choice(["no_fault_found", "auto_closed"]))
            row = cur.execute(
                "INSERT INTO tickets (dedup_key, device_id, account_id, site_id, region,"
                " failure_mode, failure_risk, expected_failure_at, priority, status, outcome,"
                " created_at, updated_at, resolved_at) SELECT %s, d.id, d.account_id, d.site_id,"
                " s.region, %s, %s, %s, %s, %s, %s, %s, %s, %s FROM devices d"
                " LEFT JOIN sites s ON s.id = d.site_id WHERE d.id = %s RETURNING id",
                (
                    f"{external_id}:{mode}:{opened.isoformat()}",
                    mode,
                    round(float(g.uniform(0.5, 0.99)), 3),
                    failure_at,
                    int(g.integers(1, 6)),
                    status,
                    outcome,
                    opened,
                    resolved or opened,
                    resolved,
                    device_id,
                ),
            ).fetchone()
            assert row is not None
            ticket_id = int(str(row[0]))
            created.append((ticket_id, opened))
            cur.execute(
                "INSERT INTO ticket_events (ticket_id, at, actor, to_status) VALUES"
                " (%s, %s, 'care', 'open')",
                (ticket_id, opened),
            )
            if resolved is not None:
                cur.execute(
                    "INSERT INTO ticket_events (ticket_id, at, actor, from_status, to_status,"
                    " note) VALUES (%s, %s, 'field', 'open', 'resolved', %s)",
                    (ticket_id, resolved, outcome),
                )
    return created


def _alerts(
    conn: Connection,
    latest: dict[int, tuple[float, str, float]],
    end: datetime,
    g: np.random.Generator,
) -> list[tuple[int, datetime]]:
    """An open alert for every account whose latest band is at risk or critical, and one for
    the account with the lowest score whatever its band."""
    created: list[tuple[int, datetime]] = []
    lowest = min(latest, key=lambda account_id: latest[account_id][0])
    with conn.transaction(), conn.cursor() as cur:
        for account_id, (score, band, churn) in latest.items():
            if band not in {"at_risk", "critical"} and account_id != lowest:
                continue
            reasons = [f"health score {score:.0f} ({band})"]
            if churn > 0.5:
                reasons.append(f"churn risk {churn:.0%}")
            at = end - timedelta(hours=float(g.uniform(1, 72)))
            row = cur.execute(
                "INSERT INTO alerts (dedup_key, account_id, csm_user_id, kind, severity, reasons,"
                " created_at) SELECT %s, a.id, a.csm_user_id, %s, %s, %s, %s FROM accounts a"
                " WHERE a.id = %s RETURNING id",
                (
                    f"{account_id}:{band}",
                    "churn_risk" if churn > 0.5 else "health_band",
                    "critical" if band == "critical" else "warning",
                    Jsonb(reasons),
                    at,
                    account_id,
                ),
            ).fetchone()
            assert row is not None
            created.append((int(str(row[0])), at))
    return created


def _outbox(
    conn: Connection,
    announced: Sequence[tuple[str, int, datetime]],
    end: datetime,
    g: np.random.Generator,
) -> None:
    """A webhook notification per ticket and alert: most delivered, some retried or failed."""
    with conn.transaction(), conn.cursor() as cur:
        row = cur.execute(
            "INSERT INTO webhooks (url, secret, events) VALUES"
            " ('https://crm.example.com/fleetcare', 'sample-secret', '{ticket,alert}')"
            " RETURNING id"
        ).fetchone()
        assert row is not None
        webhook_id = int(str(row[0]))
        rows = []
        for event, subject_id, at in announced:
            fate = g.random()
            delivered = at + timedelta(seconds=float(g.gamma(2.0, 1.5)))
            attempts = 1
            if fate < 0.05:
                delivered_at, dead_at, attempts, error = (
                    None,
                    at + timedelta(hours=1),
                    8,
                    "HTTP 500",
                )
            elif fate < 0.1 and at > end - timedelta(hours=6):
                delivered_at, dead_at, attempts, error = None, None, 2, "timeout"
            else:
                if fate < 0.2:
                    delivered, attempts = delivered + timedelta(minutes=float(g.uniform(1, 20))), 2
                delivered_at, dead_at, error = min(delivered, end), None, None
            rows.append(
                (
                    at,
                    webhook_id,
                    event,
                    Jsonb({"id": subject_id}),
                    f"{event}:{subject_id}",
                    attempts,
                    delivered_at,
                    dead_at,
                    error,
                )
            )
        cur.executemany(
            "INSERT INTO notification_outbox (created_at, channel, webhook_id, event, payload,"
            " idempotency_key, attempts, delivered_at, dead_lettered_at, last_error)"
            " VALUES (%s, 'webhook', %s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )


def _dead_letters(
    conn: Connection, config: SimConfig, end: datetime, g: np.random.Generator
) -> None:
    reasons = [Reason.SCHEMA, Reason.UNKNOWN_DEVICE, Reason.MALFORMED, Reason.TIMESTAMP_PAST]
    count = max(8, config.days * 6)
    span_s = (end - config.start_at).total_seconds()
    rows = [
        (
            config.start_at + timedelta(seconds=float(g.uniform(0, span_s))),
            f"fleetcare/v1/dev-{i}/telemetry",
            b"{}",
            str(reasons[int(g.integers(len(reasons)))]),
        )
        for i in range(count)
    ]
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO dead_letters (received_at, topic, payload, reason)"
            " VALUES (%s, %s, %s, %s)",
            rows,
        )


def load_sample_fleet(
    conn: Connection,
    dialect: Dialect,
    config: SimConfig,
    *,
    method: WriteMethod = "insert",
    block_writer: BlockWriter | None = None,
    prediction_every_h: int = 4,
    refresh_rollups: bool = True,
) -> SampleFleet:
    """Simulate ``config`` and write the fleet, its history and the derived business rows.

    ``conn`` must be in autocommit mode (each part runs in its own transaction; the
    TimescaleDB rollup refresh refuses to run inside one). A ``block_writer`` replaces the
    built-in telemetry writer (``method``), e.g. to load a large fleet another way.
    """
    g = np.random.default_rng(config.seed)
    fleet = build_fleet(config)
    device_ids, account_ids = _register(conn, fleet)
    engagement = simulate_engagement(config.seed, config.n_accounts, config.days)
    sim = Simulation(config, fleet, engagement)
    readings = 0
    for blocks in sim.days():
        for block in blocks:
            if block_writer is not None:
                readings += block_writer(block, device_ids)
            else:
                readings += _write_block(conn, dialect, block, config, device_ids, method)
    end = config.end_at
    _events(conn, dialect, config, sim.log, device_ids)
    _liveness(conn, end, device_ids, g)
    _predictions(conn, config, sim.log, device_ids, prediction_every_h, g)
    latest = _health(conn, config, account_ids, g)
    tickets = _tickets(conn, config, sim.log, device_ids, end, g)
    alerts = _alerts(conn, latest, end, g)
    announced = [("ticket.created", i, at) for i, at in tickets]
    announced += [("alert.raised", i, at) for i, at in alerts]
    _outbox(conn, announced, end, g)
    _dead_letters(conn, config, end, g)
    if refresh_rollups:
        dialect.refresh_rollups(conn, config.start_at, end)
    return SampleFleet(
        config.start_at, end, device_ids, account_ids, readings, len(sim.log.failures)
    )
