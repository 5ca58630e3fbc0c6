"""The soak run: start everything, hold a steady load with faults, drain, check, report."""

from __future__ import annotations

import json
import logging
import math
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from backend.api.auth import create_api_key, create_user
from backend.care.webhooks import WebhookCreate, create_webhook
from backend.ingest.demo_fleet import SimFleetPlan, register_sim_fleet
from backend.storage.migrator import apply_migrations
from benchmarks.soak.checks import (
    CheckResult,
    Flatness,
    StoredCounts,
    WebhookLedger,
    downlink_check,
    judge_flatness,
    memory_check,
    reconcile_readings,
    ticket_check,
    webhook_check,
)
from benchmarks.soak.feeder import PredictionFeeder
from benchmarks.soak.operator import DownlinkOperator, outstanding, read_ledger, read_times
from benchmarks.soak.receiver import WebhookReceiver
from benchmarks.soak.sampler import Sample, Sampler
from benchmarks.soak.schedule import PlannedFault, fault_schedule
from benchmarks.soak.stack import (
    FleetPlan,
    SimulatedFleet,
    UpProcess,
    postmaster_pid,
    score_service_available,
)
from fleetcare.embedded.mosquitto import MosquittoBroker, MosquittoConfig
from fleetcare.embedded.postgres import EmbeddedPostgres

log = logging.getLogger("benchmarks.soak")

#: Processes judged for flat memory (the simulated fleet is plotted, not judged: the
#: simulator keeps its ground truth in memory by design).
JUDGED_ROLES = (
    "up", "ingest", "score", "care", "health", "api", "maintain", "downlink", "mosquitto",
    "postgres",
)  # fmt: skip


@dataclass(frozen=True)
class SoakOptions:
    minutes: float
    out: Path
    devices: int = 240
    accounts: int = 30
    speed: float = 60.0
    interval_s: int = 60
    seed: int = 42
    wear_acceleration: float = 20.0
    database_outage_s: float = 30.0
    drain_s: float = 240.0

    @property
    def run_s(self) -> float:
        return self.minutes * 60.0

    @property
    def sample_s(self) -> float:
        return min(5.0, max(2.0, self.run_s / 60.0))

    @property
    def warmup_s(self) -> float:
        return min(120.0, max(15.0, 0.1 * self.run_s))

    @property
    def operator_every_s(self) -> float:
        """Between two requests of the downlink operator (about 270 in a run)."""
        return min(5.0, max(0.5, self.run_s / 360.0))

    @property
    def shards(self) -> int:
        return max(1, math.ceil(self.devices / 150))


@dataclass
class FaultEvent:
    at_s: float
    kind: str
    detail: str
    until_s: float | None = None


@dataclass
class SoakResult:
    options: SoakOptions
    services: list[str]
    samples: list[Sample]
    faults: list[FaultEvent]
    sim_faults: dict[str, int]
    checks: list[CheckResult]
    flatness: list[Flatness]
    figures: dict[str, float] = field(default_factory=dict)
    webhook_events: dict[str, int] = field(default_factory=dict)
    slowest: dict[str, str] = field(default_factory=dict)
    """The device of the slowest downlink answer, by kind (``config``, ``command``)."""

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)


class _FaultRunner:
    """Executes the schedule from the main loop without blocking it for an outage."""

    def __init__(
        self,
        schedule: list[PlannedFault],
        broker: MosquittoBroker,
        postgres: EmbeddedPostgres,
        up: UpProcess,
    ) -> None:
        self.pending = list(schedule)
        self.broker = broker
        self.postgres = postgres
        self.up = up
        self.events: list[FaultEvent] = []
        self._database_back_at: float | None = None
        self._outage_event: FaultEvent | None = None

    def step(self, t: float) -> None:
        if self._database_back_at is not None and t >= self._database_back_at:
            self.postgres.start()
            assert self._outage_event is not None
            self._outage_event.until_s = t
            self._database_back_at = None
        while self.pending and self.pending[0].at_s <= t:
            fault = self.pending.pop(0)
            if fault.kind == "broker_restart":
                self.broker.restart()
                self.events.append(FaultEvent(t, fault.kind, "mosquitto stopped and started"))
            elif fault.kind == "ingest_kill":
                pid = self.up.kill_ingest()
                self.events.append(FaultEvent(t, fault.kind, f"SIGKILL to ingest pid {pid}"))
            elif fault.kind == "database_outage":
                self.postgres.stop()
                self._outage_event = FaultEvent(
                    t, fault.kind, f"PostgreSQL stopped for {fault.duration_s:.0f} s"
                )
                self.events.append(self._outage_event)
                self._database_back_at = t + fault.duration_s

    def finish(self, t: float) -> None:
        if self._database_back_at is not None:
            self._database_back_at = t
            self.step(t)


def _stored(database_url: str) -> StoredCounts:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT (device_id, seq)) FROM telemetry"
        ).fetchone()
    assert row is not None
    return StoredCounts(int(row[0]), int(row[1]))


def _outbox(database_url: str) -> dict[str, bool]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT idempotency_key, delivered_at IS NOT NULL FROM notification_outbox"
            " WHERE channel = 'webhook'"
        ).fetchall()
    return {str(key): bool(done) for key, done in rows}


def _ticket_numbers(database_url: str) -> tuple[int, int]:
    with psycopg.connect(database_url) as conn:
        tickets = conn.execute("SELECT count(*) FROM tickets").fetchone()
        duplicates = conn.execute(
            "SELECT count(*) FROM (SELECT device_id, failure_mode FROM tickets"
            " WHERE status IN ('open', 'assigned', 'in_progress')"
            " GROUP BY device_id, failure_mode HAVING count(*) > 1) d"
        ).fetchone()
    assert tickets is not None
    assert duplicates is not None
    return int(tickets[0]), int(duplicates[0])


def _wait(
    condition: Callable[[], bool], timeout_s: float, every_s: float, tick: Callable[[], None]
) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        tick()
        time.sleep(every_s)
    return condition()


def _spread(name: str, values: list[float]) -> dict[str, float]:
    """``{name}_median_s``, ``_p95_s`` and ``_max_s`` (NaN when nothing was timed)."""
    ordered = sorted(values)
    if not ordered:
        return {f"{name}_{k}_s": math.nan for k in ("median", "p95", "max")}
    return {
        f"{name}_median_s": ordered[len(ordered) // 2],
        f"{name}_p95_s": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
        f"{name}_max_s": ordered[-1],
    }


def _median(values: list[float | None]) -> float:
    present = sorted(v for v in values if v is not None)
    return present[len(present) // 2] if present else math.nan


def _sim_outages(
    records: list[dict[str, object]], fleet_started_at: datetime, options: SoakOptions
) -> list[FaultEvent]:
    """The simulator's link outages on the soak's wall clock (its accelerated run replays the
    span that ends when it starts, so simulated time maps back to wall time)."""
    span_s = options.run_s * options.speed
    events = []
    for record in records:
        kind = str(record.get("kind", ""))
        if not kind.endswith("_outage"):
            continue
        sim_at = datetime.fromisoformat(str(record["sim_time"]))
        at_s = ((sim_at - fleet_started_at).total_seconds() + span_s) / options.speed
        steps = int(str(record.get("steps") or 0))
        devices = record.get("device_ids") or []
        assert isinstance(devices, list)
        events.append(
            FaultEvent(
                at_s,
                f"sim_{kind}",
                f"{len(devices)} device link(s) cut ({', '.join(map(str, devices[:3]))}"
                + (", ..." if len(devices) > 3 else "")
                + ")",
                at_s + steps * options.interval_s / options.speed,
            )
        )
    return sorted(events, key=lambda e: e.at_s)


def judge_memory(samples: list[Sample], options: SoakOptions) -> list[Flatness]:
    """Per process (a role's pid: a restarted service is a new process): its RSS samples of
    the run phase from the later of half-time and its start + warm-up. A role none of whose
    processes lived long enough in that window is listed as not judged."""
    run = [s for s in samples if s.phase == "run"]
    roles = sorted({role for s in run for role in s.rss if role in JUDGED_ROLES})
    results: list[Flatness] = []
    for role in roles:
        segments: dict[int, list[tuple[float, float]]] = {}
        for s in run:
            if role in s.rss:
                pid, mib = s.rss[role]
                segments.setdefault(pid, []).append((s.t, mib))
        judged: list[Flatness] = []
        for pid, points in segments.items():
            window_start = max(0.5 * options.run_s, points[0][0] + options.warmup_s)
            label = role if len(segments) == 1 else f"{role} (pid {pid})"
            result = judge_flatness(
                label, [t for t, _ in points], [m for _, m in points], window_start
            )
            if result.judged:
                judged.append(result)
        if judged:
            results.extend(judged)
        else:
            results.append(judge_flatness(role, [], [], 0.0))
    return results


def run_soak(options: SoakOptions) -> SoakResult:
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    logs = out / "logs"
    logs.mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="fcsoak-"))  # short: the socket lives there
    skip = [] if score_service_available() else ["score"]
    postgres = EmbeddedPostgres(workdir / "pg")
    broker = MosquittoBroker(workdir / "mqtt", MosquittoConfig(persistence=True))
    secret = secrets.token_urlsafe(32)
    up: UpProcess | None = None
    fleet: SimulatedFleet | None = None
    feeder: PredictionFeeder | None = None
    operator: DownlinkOperator | None = None
    try:
        postgres.start()
        database_url = postgres.fleetcare_url
        apply_migrations(database_url)
        broker.start()
        register_sim_fleet(
            database_url,
            SimFleetPlan(
                devices=options.devices,
                accounts=options.accounts,
                seed=options.seed,
                speed=options.speed,
                interval_s=options.interval_s,
            ),
        )
        with WebhookReceiver(secret) as receiver:
            with psycopg.connect(database_url) as conn:
                create_webhook(conn, WebhookCreate(url=receiver.url, secret=secret), actor="soak")
                api_key = create_api_key(conn, create_user(conn, "Soak operator", "admin"), "soak")
            up = UpProcess(database_url, broker.url, workdir / "data", logs / "up.log", skip)
            up.start()
            if not up.wait_ingest_ready():
                raise RuntimeError(f"fleetcare up did not come up; see {logs / 'up.log'}")
            fleet = SimulatedFleet(
                FleetPlan(
                    options.devices,
                    options.accounts,
                    options.seed,
                    options.speed,
                    options.interval_s,
                    options.wear_acceleration,
                    options.shards,
                ),
                broker.url,
                options.run_s,
                workdir,
                logs,
            )
            started = time.monotonic()
            fleet_started_at = datetime.now(UTC)
            fleet.start()
            feeder = PredictionFeeder(
                database_url, every_s=min(10.0, max(1.5, options.run_s / 120))
            )
            feeder.start()
            operator = DownlinkOperator(
                f"http://127.0.0.1:{up.ports.api}",
                api_key,
                database_url,
                every_s=options.operator_every_s,
                stop_after_s=0.75 * options.run_s,
                command_ttl_s=int(options.run_s + options.drain_s + 600),
            )
            operator.start()
            current_fleet = fleet

            def roots() -> dict[str, int | None]:
                return {
                    "mosquitto": broker.pid,
                    "postgres": postmaster_pid(postgres.data_dir),
                    **current_fleet.pids,
                }

            sampler = Sampler(database_url, up.ports.metrics_url, roots, up.pid, started)
            faults = _FaultRunner(
                fault_schedule(options.run_s, options.database_outage_s), broker, postgres, up
            )
            next_sample = started
            hard_stop = started + options.run_s + 600
            while fleet.running and time.monotonic() < hard_stop:
                t = time.monotonic() - started
                faults.step(t)
                if time.monotonic() >= next_sample:
                    phase = "run" if t <= options.run_s else "flush"
                    s = sampler.sample(phase)
                    log.info(
                        "t=%5.0f s stored=%s rate=%s lag=%s",
                        s.t,
                        s.stored,
                        None if s.rate is None else round(s.rate),
                        None if s.lag_mean_s is None else round(s.lag_mean_s, 2),
                    )
                    next_sample += options.sample_s
                time.sleep(0.2)
            faults.finish(time.monotonic() - started)
            feeder.stop()
            operator.stop()
            fleet.stop()
            summaries = fleet.summaries()
            sent = sum(int(str(s.get("readings", 0))) for s in summaries)
            if len(summaries) != options.shards:
                log.error("only %d of %d fleet shards reported", len(summaries), options.shards)
                sent = 0

            def tick() -> None:
                sampler.sample("drain")

            _wait(
                lambda: _stored(database_url).distinct_readings >= sent,
                options.drain_s,
                options.sample_s,
                tick,
            )
            time.sleep(2 * options.sample_s)  # late duplicates would land now
            _wait(
                lambda: all(_outbox(database_url).values()),
                options.drain_s,
                options.sample_s,
                tick,
            )
            # Answers the broker took before the fleet stopped are stored by now or soon.
            _wait(lambda: outstanding(database_url) == 0, 60.0, options.sample_s, tick)
            ledger = read_ledger(database_url, operator.counts)
            times = read_times(database_url)
            # Deliveries acknowledged by the receiver are marked delivered just after.
            outbox = _outbox(database_url)
            received, bad = receiver.snapshot()
            webhook_events = dict(receiver.events)
            stored = _stored(database_url)
            tickets, duplicate_groups = _ticket_numbers(database_url)
        flatness = judge_memory(sampler.samples, options)
        checks = [
            reconcile_readings(sent, stored),
            memory_check(flatness),
            ticket_check(duplicate_groups, tickets, feeder.counts.at_risk),
            webhook_check(WebhookLedger(outbox, received, bad)),
            downlink_check(ledger),
        ]
        sim_faults: dict[str, int] = {}
        for summary in summaries:
            for kind, n in dict(summary.get("faults", {})).items():  # type: ignore[call-overload]
                sim_faults[kind] = sim_faults.get(kind, 0) + int(n)
        events = faults.events + _sim_outages(fleet.fault_log(), fleet_started_at, options)
        run_samples = [s for s in sampler.samples if s.phase == "run" and s.rate is not None]
        figures = {
            "sent": float(sent),
            "stored_rows": float(stored.rows),
            "mean_rate": (sum(s.rate or 0 for s in run_samples) / len(run_samples))
            if run_samples
            else 0.0,
            "predictions_at_risk": float(feeder.counts.at_risk),
            "predictions_low_risk": float(feeder.counts.low_risk),
            "predictions_failed": float(feeder.counts.failed),
            "tickets": float(tickets),
            "notifications": float(len(outbox)),
            "lag_mean_median_s": _median([s.lag_mean_s for s in run_samples]),
            "lag_mean_max_s": max((s.lag_mean_s or 0.0 for s in run_samples), default=0.0),
            "undelivered_sdk": float(sum(int(str(s.get("undelivered", 0))) for s in summaries)),
            "dropped_sdk": float(sum(int(str(s.get("dropped", 0))) for s in summaries)),
            "downlink_configs": float(len(operator.counts.configs)),
            "downlink_commands": float(len(operator.counts.commands)),
            "downlink_refused": float(operator.counts.refused),
            "downlink_replayed": float(operator.counts.replayed),
            **_spread("downlink_config", times.config),
            **_spread("downlink_command", times.command),
        }
        return SoakResult(
            options,
            ["ingest", "care", "health", "api", "maintain", "downlink"]
            + ([] if skip else ["score"]),
            sampler.samples,
            events,
            sim_faults,
            checks,
            flatness,
            figures,
            webhook_events,
            {"config": times.slowest_config, "command": times.slowest_command},
        )
    finally:
        if operator is not None:
            operator.stop()
        if feeder is not None:
            feeder.stop()
        if fleet is not None:
            fleet.stop(10)
        if up is not None:
            code = up.stop()
            log.info("fleetcare up exited with %s", code)
        broker.stop()
        postgres.stop()
        for name in ("mosquitto.log",):
            if (workdir / "mqtt" / name).exists():
                shutil.copy(workdir / "mqtt" / name, logs / name)
        (logs / "postgres.log").write_text(postgres.log_tail(20_000))
        shutil.rmtree(workdir, ignore_errors=True)


def result_json(result: SoakResult) -> str:
    return json.dumps(
        {
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "options": {**asdict(result.options), "out": str(result.options.out)},
            "services": result.services,
            "passed": result.passed,
            "checks": [asdict(c) for c in result.checks],
            "figures": result.figures,
            "faults": [asdict(f) for f in result.faults],
            "sim_faults": result.sim_faults,
            "webhook_events": result.webhook_events,
            "downlink_slowest": result.slowest,
        },
        indent=2,
        default=str,
    )
