"""The demo's fleet: the simulator's devices registered in the database, and its live run.

:func:`register_sim_fleet` registers what ``firmware_sim`` builds for a seed (accounts,
device models with their metric catalogues, devices) so that ingest accepts the devices'
data. :class:`LiveSimulation` runs ``python -m firmware_sim run`` (every device a real
``device_sdk`` client) in one process per shard of at most :data:`DEVICES_PER_SHARD` devices,
in accelerated time, and reads back what each shard's devices handed over.

A device model is registered under its machine type's name (``centrifugal_pump``,
``air_compressor``): a fleet model scores the devices of the device model named after its
machine type. Registering forgets what an earlier demo stored for the same devices (the
simulator replays the same readings, which would otherwise be absorbed as duplicates).
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from psycopg import Connection

from backend.storage.catalogue import MetricSpec, ensure_device, ensure_device_model
from backend.storage.connect import connect
from firmware_sim.config import SimConfig
from firmware_sim.faults import FaultSpec
from firmware_sim.fleet import build_fleet
from firmware_sim.history import DeviceDay, history_readings
from firmware_sim.live import LiveOptions, live_window, span_origin
from firmware_sim.machines import machine_spec

#: Devices per simulator process (one SDK client per device; paho's select() loop limits
#: a process to about 180).
DEVICES_PER_SHARD = 150
_REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class SimFleetPlan:
    """Which fleet to simulate and how fast.

    Attributes:
        devices / accounts / seed: the simulator's fleet (the same seed, the same fleet).
        speed: simulated seconds per wall second (the default: a simulated day every 5 s).
        interval_s: simulated seconds between two readings of a device.
        faults: deliberate misbehaviour (duplicates and malformed payloads: dead letters).
    """

    devices: int = 240
    accounts: int = 30
    seed: int = 42
    speed: float = 17_280.0
    interval_s: int = 1800
    faults: FaultSpec = field(default_factory=lambda: FaultSpec(duplicate=3, malformed=3))
    gateway_every: int = 0
    """One simulator shard in this many is a site whose devices publish to a local broker
    and reach the central one through a gateway (0: none; see :attr:`site_shard`)."""
    history_days: int = 0
    """Days of the devices' history before the live span, loaded into the database instead
    of published (:mod:`backend.ingest.history_load`); the span continues their physics."""

    def config(self, span_s: float = 86_400) -> SimConfig:
        days = max(1, math.ceil(span_s / 86_400) + 1)
        return SimConfig(
            seed=self.seed,
            devices=self.devices,
            accounts=self.accounts,
            interval_s=self.interval_s,
            days=days,
        )

    @property
    def shards(self) -> int:
        central = max(1, math.ceil(self.devices / DEVICES_PER_SHARD))
        if self.gateway_every <= 0:
            return central
        return max(central, min(self.devices, self.gateway_every))

    @property
    def site_shard(self) -> int | None:
        """The shard whose devices go through the gateway: the last one, when there is a
        site and at least one other shard for the central broker."""
        if self.gateway_every <= 0 or self.shards < 2:
            return None
        return self.shards - 1

    def site_devices(self) -> list[str]:
        """The devices of :attr:`site_shard` (fleet index modulo :attr:`shards`)."""
        shard = self.site_shard
        if shard is None:
            return []
        fleet = build_fleet(self.config())
        return [d.device_id for d in fleet.devices if d.index % self.shards == shard]


@dataclass(frozen=True)
class RegisteredFleet:
    """What :func:`register_sim_fleet` stored."""

    devices: list[str]
    accounts: int
    models: int


#: Per-device rows of the time-series tables, deleted before a device's data is replayed.
_TIME_SERIES = ("telemetry", "usage_records", "device_events", "device_state_reports")
_ROLLUP_TABLES = ("telemetry_hourly", "telemetry_daily")


def known_devices(conn: Connection[Any], devices: list[str]) -> list[int]:
    """The database ids of those of ``devices`` (external ids) already registered."""
    rows = conn.execute("SELECT id FROM devices WHERE external_id = ANY(%s)", (devices,)).fetchall()
    return [int(str(r[0])) for r in rows]


def forget_previous_runs(conn: Connection[Any], ids: list[int]) -> int:
    """Delete what earlier runs stored for the devices of database ids ``ids`` (their rows,
    predictions, tickets; see :func:`known_devices`); returns how many. The caller commits.

    A table that holds rows of these devices only (the usual case: the demo's database has
    its own fleet and nothing else) is truncated instead: deleting the 2.2 million hourly
    rollup rows of a run with history took 11 s, the check and ``TRUNCATE`` 1.2 s.
    Other devices' rows are never touched.
    """
    from backend.storage.migrator import dialect_of

    if not ids:
        return 0
    tables = list(_TIME_SERIES)
    if dialect_of(conn).name == "postgres":  # TimescaleDB's rollups are views over telemetry
        tables += _ROLLUP_TABLES
    for table in tables:
        others = conn.execute(
            f"SELECT EXISTS (SELECT 1 FROM {table} WHERE device_id <> ALL(%s))", (ids,)
        ).fetchone()
        if others is not None and not others[0]:
            conn.execute(f"TRUNCATE {table}")
        else:
            conn.execute(f"DELETE FROM {table} WHERE device_id = ANY(%s)", (ids,))
    conn.execute("DELETE FROM devices WHERE id = ANY(%s)", (ids,))  # predictions, tickets…
    return len(ids)


def register_sim_fleet(
    database_url: str, plan: SimFleetPlan, progress: Callable[[str], None] | None = None
) -> RegisteredFleet:
    """Register the simulator's accounts, models (with catalogues) and devices, forgetting
    what earlier runs stored for these devices.

    Args:
        progress: told before the forgetting starts (a long step after a run with history)
            and how long it took.
    """
    fleet = build_fleet(plan.config())
    device_ids = [d.device_id for d in fleet.devices]
    with connect(database_url) as conn:
        known = known_devices(conn, device_ids)
        if known and progress is not None:
            progress(f"forgetting what earlier runs stored for {len(known):,} of these devices")
        started = time.monotonic()
        forget_previous_runs(conn, known)
        if known and progress is not None:
            progress(f"forgotten in {time.monotonic() - started:.1f} s")
        account_ids: dict[str, int] = {}
        for account in fleet.accounts:
            conn.execute(
                "INSERT INTO accounts (customer_key, name, industry, region, country) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (customer_key) DO NOTHING",
                (account.account_id, account.name, account.industry, account.region,
                 account.country),
            )  # fmt: skip
            row = conn.execute(
                "SELECT id FROM accounts WHERE customer_key = %s", (account.account_id,)
            ).fetchone()
            assert row is not None
            account_ids[account.account_id] = int(str(row[0]))
        model_ids: dict[str, int] = {}
        for device in fleet.devices:
            if device.machine_type not in model_ids:
                spec = machine_spec(device.machine_type)
                metrics = [MetricSpec(m.name, m.unit) for m in spec.metrics]
                model_ids[device.machine_type] = ensure_device_model(
                    conn, device.machine_type, device.machine_type, metrics
                )
            ensure_device(
                conn,
                device.device_id,
                model_ids[device.machine_type],
                account_id=account_ids[device.account_id],
            )
        conn.commit()
    return RegisteredFleet(
        [d.device_id for d in fleet.devices], len(fleet.accounts), len(model_ids)
    )


class LiveSimulation:
    """The simulator's live mode in ``plan.shards`` processes, publishing to a broker.

    Args:
        plan: the fleet and its speed.
        broker_url: where the devices publish.
        topic_root: the fleet's topic root.
        span_s: simulated seconds to run (the wall time is ``span_s / plan.speed``).
        site: ``(broker_url, topic_root)`` where the devices of ``plan.site_shard`` publish
            instead (a site's local broker, served by a gateway); ``None``: every shard
            publishes to ``broker_url``.
    """

    def __init__(
        self,
        plan: SimFleetPlan,
        broker_url: str,
        topic_root: str,
        span_s: float,
        site: tuple[str, str] | None = None,
    ):
        self.plan = plan
        self.broker_url = broker_url
        self.topic_root = topic_root
        self.site = site
        self.span_s = max(float(plan.interval_s), span_s)
        self.origin = span_origin(plan.speed, self.span_s, datetime.now(UTC))
        """The span's first instant, shared by every shard (and the history before it)."""
        self._workdir = Path(tempfile.mkdtemp(prefix="fleetcare-demo-sim-"))
        self._processes: list[subprocess.Popen[bytes]] = []

    @cached_property
    def _window(self) -> tuple[SimConfig, int]:
        """The shards' simulation config and the span's first step (as each shard computes)."""
        options = LiveOptions(
            broker_urls=(self.broker_url,),
            queue_dir=self._workdir / "queues",
            truth_dir=self._workdir / "truth",
            speed=self.plan.speed,
            duration_s=self.span_s,
            origin=self.origin,
            history_days=self.plan.history_days,
        )
        config, first, _ = live_window(self.plan.config(self.span_s), options)
        return config, first

    @property
    def span_start(self) -> datetime:
        """The time stamp of the span's first reading (the history ends before it)."""
        config, first = self._window
        return config.step_time(first)

    @property
    def history_start(self) -> datetime:
        """The time stamp of the history's first reading (where the physics starts)."""
        return self._window[0].start_at

    @property
    def history_steps(self) -> int:
        """Steps of every device's history: those before the span."""
        return self._window[1]

    def history(self) -> Iterator[DeviceDay]:
        """The readings of the ``plan.history_days`` before the span (every device), which
        the shards simulate without publishing them."""
        config, first = self._window
        return history_readings(config, first)

    def destination(self, shard: int) -> tuple[str, str]:
        """``(broker_url, topic_root)`` where ``shard`` publishes."""
        if self.site is not None and shard == self.plan.site_shard:
            return self.site
        return self.broker_url, self.topic_root

    def _command(self, shard: int) -> list[str]:
        plan = self.plan
        broker_url, topic_root = self.destination(shard)
        job = {
            "plan": {
                "devices": plan.devices,
                "accounts": plan.accounts,
                "seed": plan.seed,
                "speed": plan.speed,
                "interval_s": plan.interval_s,
                "faults": plan.faults.model_dump(),
                "gateway_every": plan.gateway_every,
                "history_days": plan.history_days,
            },
            "origin": self.origin.isoformat(),
            "broker_url": broker_url,
            "topic_root": topic_root,
            "span_s": self.span_s,
            "workdir": str(self._workdir),
            "shard": shard,
        }
        return [sys.executable, "-m", "backend.ingest.demo_fleet", json.dumps(job)]

    def start(self) -> None:
        for shard in range(self.plan.shards):
            out = (self._workdir / f"shard-{shard}.out").open("wb")
            with out:
                self._processes.append(
                    subprocess.Popen(
                        self._command(shard),
                        cwd=_REPO_ROOT,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                    )
                )

    @property
    def running(self) -> bool:
        return any(p.poll() is None for p in self._processes)

    def wait(self, timeout_s: float) -> bool:
        """Wait for every shard to finish its span; ``True`` if they all did."""
        for process in self._processes:
            try:
                process.wait(max(0.01, timeout_s))
            except subprocess.TimeoutExpired:
                return False
        return True

    def stop(self, timeout_s: float = 15.0) -> None:
        """Interrupt shards still running (the SDK clients flush what they queued); kill
        those still running ``timeout_s`` after."""
        for process in self._processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for process in self._processes:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def reports(self) -> list[dict[str, object]]:
        """The summary each finished shard printed (readings, usage records, events, faults)."""
        found = (self.report_of(shard) for shard in range(len(self._processes)))
        return [doc for doc in found if doc is not None]

    def report_of(self, shard: int) -> dict[str, object] | None:
        """The summary shard ``shard`` printed, or ``None`` if it did not finish its span."""
        path = self._workdir / f"shard-{shard}.out"
        if not path.is_file():
            return None
        for line in reversed(path.read_text(errors="replace").splitlines()):
            with contextlib.suppress(ValueError):
                doc = json.loads(line)
                if isinstance(doc, dict) and "readings" in doc:
                    return doc
        return None

    def why_no_report(self, shard: int) -> str:
        """Why a shard printed no report: stopped before the end of its span, or how it
        failed (its exit status and last line of output)."""
        code = self._processes[shard].poll()
        if code is None:
            return "still running"
        if code in (130, -signal.SIGINT, -signal.SIGTERM):
            return "stopped before the end of its span"
        path = self._workdir / f"shard-{shard}.out"
        lines = path.read_text(errors="replace").splitlines() if path.is_file() else []
        return f"exited with {code}" + (f": {lines[-1].strip()}" if lines else "")

    def cleanup(self) -> None:
        shutil.rmtree(self._workdir, ignore_errors=True)


def _run_shard(job: dict[str, Any]) -> int:
    """One shard of the live fleet (``python -m backend.ingest.demo_fleet JOB``); prints its
    report as one JSON line when its span is done."""
    from firmware_sim.live import run_live
    from fleetcare.cli.waiting import stop_signals_interrupt

    raw = job["plan"]
    plan = SimFleetPlan(**{**raw, "faults": FaultSpec(**raw["faults"])})
    workdir = Path(job["workdir"])
    shard = int(job["shard"])
    options = LiveOptions(
        broker_urls=(str(job["broker_url"]),),
        queue_dir=workdir / "queues",
        truth_dir=workdir / f"truth-{shard}",
        topic_root=str(job["topic_root"]),
        speed=plan.speed,
        duration_s=float(job["span_s"]),
        faults=plan.faults,
        shard=(shard, plan.shards),
        origin=datetime.fromisoformat(str(job["origin"])),
        history_days=plan.history_days,
    )
    try:
        with stop_signals_interrupt():  # the demo stops its shards with SIGTERM
            report = run_live(plan.config(options.duration_s), options)
    except KeyboardInterrupt:
        return 130
    print(json.dumps(report.summary()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_run_shard(json.loads(sys.argv[1])))
