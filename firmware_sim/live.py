"""Live mode: drive simulated devices through :mod:`device_sdk`, in real or accelerated time.

Every device is a real SDK user: one :class:`device_sdk.DeviceClient` per device, with its
own durable queue, publishing readings (``record`` / ``record_many``), daily usage
(``usage``) and trips, restarts and maintenance (``event``). The physics is the same
engine as ``sim generate``: the same seed gives the same readings.

Time: step ``k`` of the simulation is stamped ``start + k × interval``. By default a run
at ``speed`` ≤ 1 starts *now*; an accelerated run replays the ``duration`` before now, so
its timestamps never lie in the future. ``speed`` = 0 runs as fast as the SDK accepts.

Faults (:mod:`firmware_sim.faults`) are injected as planned and logged to
``faults.jsonl``; duplicates and malformed payloads are published by a separate raw
MQTT client with :mod:`device_sdk.wire` encoding (they are deliberate misbehaviour the
SDK never produces).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from firmware_sim.config import SimConfig
from firmware_sim.engagement import simulate_engagement
from firmware_sim.engine import DayBlock, Simulation
from firmware_sim.errors import SimConfigError, SimError
from firmware_sim.faults import FaultLog, FaultRecord, FaultSpec, PlannedFault, plan_faults
from firmware_sim.firmware import SimulatedFirmware
from firmware_sim.fleet import build_fleet
from firmware_sim.groundtruth import DeviceEvent
from firmware_sim.machines import MACHINE_TYPES, machine_spec
from firmware_sim.netproxy import FaultProxy
from firmware_sim.outcomes import renewal_outcomes
from firmware_sim.sdk_fleet import RawPublisher, SdkFleet, boot_id, sdk_module
from firmware_sim.seeds import Stream, rng
from firmware_sim.tickets import all_tickets
from firmware_sim.truth_files import write_ground_truth
from firmware_sim.usage import FEATURES, UsageMeter, usage_rng

ProgressFn = Callable[[int, int], None]
_EVENT_SEVERITY = {
    "trip": "error",
    "restart": "info",
    "maintenance_start": "info",
    "maintenance_end": "info",
    "reboot": "warning",
}


@dataclass(frozen=True)
class LiveOptions:
    broker_urls: tuple[str, ...]
    queue_dir: Path
    truth_dir: Path
    topic_root: str = "fleetcare"
    speed: float = 1.0
    duration_s: float = 600.0
    faults: FaultSpec = field(default_factory=FaultSpec)
    real_start: bool = True
    chunk_steps: int = 60
    flush_timeout_s: float = 60.0
    """How long the end of the span waits for the broker to take what the devices hold."""
    interrupted_flush_s: float = 2.0
    """The same wait when the run is interrupted (Ctrl-C, SIGTERM): the rest stays queued."""
    reconnect_max_s: float = 2.0
    usage: bool = True
    shard: tuple[int, int] = (0, 1)
    """``(index, count)``: publish only devices whose fleet index % count == index."""
    connect_timeout_s: float = 30.0
    max_clients: int = 180
    """One ``DeviceClient`` per device holds 5 file descriptors and paho's ``select()``
    loop cannot use descriptors past 1024: above this, use ``shard`` and several processes."""
    origin: datetime | None = None
    """The span's first instant (UTC). ``None``: now at ``speed`` <= 1, else ``duration``
    before now. Several processes sharing a fleet pass the same origin."""
    history_days: int = 0
    """Days simulated before the span and not published: the devices' physics starts that
    much earlier and the span continues it, so that another path can load those days as
    the devices' history (:mod:`firmware_sim.history`)."""


@dataclass
class LiveReport:
    readings: int = 0
    usage_records: int = 0
    events: int = 0
    first_step: int = 0
    steps: int = 0
    wall_s: float = 0.0
    faults: dict[str, int] = field(default_factory=dict)
    undelivered: int = 0
    dropped: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "readings": self.readings,
            "usage_records": self.usage_records,
            "events": self.events,
            "steps": self.steps,
            "wall_s": round(self.wall_s, 3),
            "readings_per_s": round(self.readings / self.wall_s, 1) if self.wall_s else 0.0,
            "faults": self.faults,
            "undelivered": self.undelivered,
            "dropped": self.dropped,
        }


def live_window(
    config: SimConfig, options: LiveOptions, now: datetime | None = None
) -> tuple[SimConfig, int, int]:
    """The config (start day, days) and the first step / step count of a live run.

    With ``options.history_days`` the config starts that many days before the span's day
    and ``first`` skips them.
    """
    total = max(1, int(options.duration_s // config.interval_s))
    history = options.history_days * config.steps_per_day
    if not options.real_start:
        days = -(-(history + total) // config.steps_per_day)
        return config.model_copy(update={"days": days}), history, total
    origin = options.origin or span_origin(
        options.speed, options.duration_s, now or datetime.now(UTC)
    )
    origin = origin.astimezone(UTC)
    start = origin.date()
    start_at = datetime(start.year, start.month, start.day, tzinfo=UTC)
    first = history + int((origin - start_at).total_seconds() // config.interval_s)
    days = -(-(first + total) // config.steps_per_day)
    start -= timedelta(days=options.history_days)
    return config.model_copy(update={"start": start, "days": days}), first, total


def span_origin(speed: float, duration_s: float, now: datetime) -> datetime:
    """Where a span started ``now`` begins: now in real time (``speed`` <= 1), else
    ``duration_s`` earlier, so that an accelerated run never stamps a reading in the future."""
    if 0 < speed <= 1:
        return now
    return now - timedelta(seconds=duration_s)


def _my_faults(plan: list[PlannedFault], mine: set[str]) -> list[PlannedFault]:
    """The faults of this shard's devices (a site outage keeps this shard's devices)."""
    out = []
    for fault in plan:
        ids = tuple(d for d in fault.device_ids if d in mine)
        if ids:
            out.append(dataclasses.replace(fault, device_ids=ids))
    return out


def run_live(
    config: SimConfig, options: LiveOptions, progress: ProgressFn | None = None
) -> LiveReport:
    """Run the fleet live through the SDK; returns what was handed over and delivered."""
    sdk_module()
    from device_sdk import wire

    config, first, total = live_window(config, options)
    fleet = build_fleet(config)
    engagement = simulate_engagement(config.seed, config.n_accounts, config.days)
    sim = Simulation(config, fleet, engagement)
    index, count = options.shard
    mine = {d.device_id for d in fleet.devices if d.index % count == index}
    if len(mine) > options.max_clients:
        raise SimConfigError(
            f"{len(mine)} devices in one process: above {options.max_clients} the SDK's paho "
            "select() loop runs out of file descriptors (5 per client); split the fleet with "
            "--shard INDEX/COUNT over several processes"
        )
    plan = _my_faults(plan_faults(config.seed, options.faults, fleet, total), mine)
    log = FaultLog(options.truth_dir / "faults.jsonl")
    outage_devices = sorted({d for f in plan if f.kind.endswith("_outage") for d in f.device_ids})
    proxy: FaultProxy | None = None
    urls: dict[str, str] = {}
    if outage_devices:
        parts = urlsplit(options.broker_urls[0])
        proxy = FaultProxy(parts.hostname or "127.0.0.1", parts.port or 1883)
        for device_id in outage_devices:
            proxy.add_path(device_id)
        proxy.start()
        urls = {d: proxy.url(d) for d in outage_devices}
    raw = None
    if any(f.kind in ("duplicate", "malformed") for f in plan):
        raw = RawPublisher(options.broker_urls[0], f"sim-faults-{config.seed}-{index}of{count}")
    catalogue = {
        d.device_id: frozenset(machine_spec(d.machine_type).metric_names) for d in fleet.devices
    }
    try:
        devices = SdkFleet(
            options, [d.device_id for d in fleet.devices if d.device_id in mine], catalogue, urls
        )
        devices.wait_connected(options.connect_timeout_s)
    except BaseException:
        if proxy is not None:
            proxy.stop()
        if raw is not None:
            raw.close()
        raise
    report = LiveReport(first_step=first, steps=total)
    runner = _Runner(
        config, options, sim, devices, plan, log, proxy, raw, wire, report, first, total, progress
    )
    started = time.monotonic()
    flush_s = options.flush_timeout_s
    try:
        runner.run()
    except KeyboardInterrupt:  # the user stops: what is not sent stays in the durable queues
        flush_s = min(flush_s, options.interrupted_flush_s)
        raise
    finally:
        report.wall_s = time.monotonic() - started
        report.undelivered, report.dropped = devices.stop(flush_s)
        if proxy is not None:
            proxy.stop()
        if raw is not None:
            raw.close()
    report.faults = log.counts()
    tickets = all_tickets(config, fleet, engagement, sim.log)
    outcomes = renewal_outcomes(config, fleet, engagement, sim.log, tickets)
    write_ground_truth(options.truth_dir, config, fleet, engagement, sim, tickets, outcomes)
    return report


class _Runner:
    def __init__(
        self,
        config: SimConfig,
        options: LiveOptions,
        sim: Simulation,
        devices: SdkFleet,
        plan: list[PlannedFault],
        log: FaultLog,
        proxy: FaultProxy | None,
        raw: RawPublisher | None,
        wire: Any,
        report: LiveReport,
        first: int,
        total: int,
        progress: ProgressFn | None,
    ) -> None:
        self.config = config
        self.options = options
        self.sim = sim
        self.devices = devices
        self.plan = plan
        self.next_fault = 0
        self.log = log
        self.proxy = proxy
        self.raw = raw
        self.wire = wire
        self.report = report
        self.first = first
        self.total = total
        self.progress = progress
        self.skew: dict[str, float] = {}
        self.held: dict[tuple[str, int], int] = {}
        self.release: list[tuple[int, str, datetime, dict[str, float | None]]] = []
        self.restore: list[tuple[int, tuple[str, ...]]] = []
        self.events: list[DeviceEvent] = []
        self.seen_events = 0
        self.boot = boot_id()
        self.meters: dict[str, UsageMeter] = {}
        for t in sim.types:
            self.meters[t.spec.name] = UsageMeter.plan(
                rng(config.seed, Stream.USAGE, t.type_index),
                t.schedule.account.copy(),
                t.engagement.on(-1),
            )
        self._pending: list[PlannedFault] = []

    def _chunk(self) -> int:
        if self.options.speed <= 0:
            return self.options.chunk_steps
        per_s = self.options.speed / self.config.interval_s
        return int(min(self.options.chunk_steps, max(1, per_s * 0.1)))

    def run(self) -> None:
        spd = self.config.steps_per_day
        end = self.first + self.total
        chunk = self._chunk()
        wall0 = time.monotonic()
        for day, blocks in enumerate(self.sim.days()):
            self._collect_events()
            lo, hi = max(self.first, day * spd), min(end, (day + 1) * spd)
            for s in range(lo, hi, chunk):
                e = min(hi, s + chunk)
                if self.options.speed > 0:
                    due = wall0 + (s - self.first) * self.config.interval_s / self.options.speed
                    delay = due - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                self._faults_before(s, e)
                for block in blocks:
                    self._record(block, s, e)
                self._events(e)
                self._faults_after()
                if self.progress is not None:
                    self.progress(e - self.first, self.report.readings)
            if hi == (day + 1) * spd and lo < hi and self.options.usage:
                for block in blocks:
                    self._usage(block)
            if hi >= end:
                break
        for _, device_id, at, metrics in sorted(self.release, key=lambda r: r[0]):
            self.devices.clients[device_id].record(metrics, at)
            self.report.readings += 1
        self.release.clear()
        for _, ids in self.restore:
            self._restore(ids)

    # -- readings ---------------------------------------------------------------------

    def _record(self, block: DayBlock, s: int, e: int) -> None:
        times = [self.config.step_time(k) for k in range(s, e)]
        clients = self.devices.clients
        for i, device_id in enumerate(block.device_ids):
            if device_id not in clients:
                continue
            skew = self.skew.get(device_id)
            readings: list[tuple[datetime, dict[str, float | None]]] = []
            for j, metrics in enumerate(block.device_readings(i, s, e)):
                at = times[j] if skew is None else times[j] + timedelta(seconds=skew)
                delay = self.held.pop((device_id, s + j), None)
                if delay is not None:
                    self.release.append((s + j + delay, device_id, at, metrics))
                    continue
                readings.append((at, metrics))
            client = self.devices.clients[device_id]
            if len(readings) == 1:
                seq = client.record(readings[0][1], readings[0][0])
                seqs = [seq]
            elif readings:
                seqs = list(client.record_many(readings))
            else:
                continue
            at_last, m_last = readings[-1]
            self.devices.last[device_id] = (seqs[-1], int(at_last.timestamp() * 1000), m_last)
            self.report.readings += len(readings)
            firmware = self.devices.firmware.get(device_id)
            if firmware is not None and firmware.limits:
                self._alarms(client, firmware, readings)
        due = [r for r in self.release if r[0] < e]
        if due:
            self.release = [r for r in self.release if r[0] >= e]
            for _, device_id, at, metrics in sorted(due, key=lambda r: r[0]):
                self.devices.clients[device_id].record(metrics, at)
                self.report.readings += 1

    def _alarms(
        self,
        client: Any,
        firmware: SimulatedFirmware,
        readings: list[tuple[datetime, dict[str, float | None]]],
    ) -> None:
        """The device's own alarms: a ``limit_exceeded`` event per limit crossed."""
        for at, metrics in readings:
            for crossing in firmware.crossings(metrics):
                client.event(
                    "limit_exceeded",
                    severity="warning",
                    code=f"{crossing.metric}.{crossing.side}",
                    message=crossing.message,
                    attrs={"metric": crossing.metric, "value": crossing.value},
                    at=at,
                )
                self.report.events += 1

    def _usage(self, block: DayBlock) -> None:
        g = usage_rng(self.config.seed, MACHINE_TYPES.index(block.machine_type), block.day)
        row = self.meters[block.machine_type].day(
            block.running,
            block.load,
            block.values["power_kw"],
            self.config.step_h,
            self.sim.types[0].engagement.on(block.day),
            g,
        )
        at = self.config.start_at + timedelta(days=block.day + 1) - timedelta(seconds=1)
        units = {
            "operating_hours": "h",
            "energy_kwh": "kWh",
            "duty_cycle": "1",
            "starts": "1",
            "sessions": "1",
        }
        for i, device_id in enumerate(block.device_ids):
            client = self.devices.clients.get(device_id)
            if client is None:
                continue
            for name, unit in units.items():
                client.usage(name, float(row[name][i]), unit=unit, at=at)
                self.report.usage_records += 1
            for feature in FEATURES:
                count = int(row[f"feature_{feature}"][i])
                if count:
                    client.usage("feature_use", float(count), attrs={"feature": feature}, at=at)
                    self.report.usage_records += 1

    def _collect_events(self) -> None:
        new = self.sim.log.device_events[self.seen_events :]
        self.seen_events = len(self.sim.log.device_events)
        self.events.extend(new)
        self.events.sort(key=lambda ev: (ev.step, ev.device_id, ev.kind))

    def _events(self, e: int) -> None:
        while self.events and self.events[0].step < e:
            ev = self.events.pop(0)
            if ev.step < self.first or ev.device_id not in self.devices.clients:
                continue
            self.devices.clients[ev.device_id].event(
                ev.kind,
                severity=_EVENT_SEVERITY.get(ev.kind, "info"),
                code=ev.code,
                at=self.config.step_time(ev.step),
            )
            self.report.events += 1

    # -- faults -----------------------------------------------------------------------

    def _due(self, e: int) -> list[PlannedFault]:
        out = []
        while self.next_fault < len(self.plan) and self.plan[self.next_fault].step + self.first < e:
            out.append(self.plan[self.next_fault])
            self.next_fault += 1
        return out

    def _faults_before(self, s: int, e: int) -> None:
        for _, ids in [r for r in self.restore if r[0] < e]:
            self._restore(ids)
        self.restore = [r for r in self.restore if r[0] >= e]
        self._pending = self._due(e)
        for fault in self._pending:
            step = fault.step + self.first
            if fault.kind in ("device_outage", "site_outage") and self.proxy is not None:
                for device_id in fault.device_ids:
                    self.proxy.cut(device_id)
                self.restore.append((step + fault.steps, fault.device_ids))
                self._log(fault, f"network cut for {fault.steps} steps")
            elif fault.kind == "clock_skew":
                self.skew[fault.device_ids[0]] = fault.skew_s
                self._log(fault, f"clock off by {fault.skew_s} s from here on")
            elif fault.kind == "out_of_order":
                self.held[(fault.device_ids[0], step)] = fault.steps
                self._log(fault, f"reading held back {fault.steps} steps")
            elif fault.kind == "reboot":
                self.devices.reboot(fault.device_ids[0])
                self.devices.clients[fault.device_ids[0]].event(
                    "reboot",
                    severity="warning",
                    code="SIM_REBOOT",
                    at=self.config.step_time(step),
                )
                self.report.events += 1
                self._log(fault, "client stopped and started again")

    def _faults_after(self) -> None:
        wire = self.wire
        for fault in self._pending:
            device_id = fault.device_ids[0]
            topic = wire.build_topic(device_id, wire.Channel.TELEMETRY, self.options.topic_root)
            if fault.kind == "duplicate" and self.raw is not None:
                last = self.devices.last.get(device_id)
                if last is None:
                    raise SimError(f"no reading of {device_id} to duplicate")
                seq, t_ms, metrics = last
                body = orjson.dumps({"t": t_ms, "m": metrics})
                payload = wire.encode_batch(
                    device=device_id,
                    kind=wire.BatchKind.TELEMETRY,
                    boot=self.boot,
                    sent=int(time.time() * 1000),
                    up=None,
                    dropped=0,
                    entries=[(seq, body)],
                )
                self.raw.publish(topic, payload)
                self._log(fault, f"seq {seq} sent again")
            elif fault.kind == "malformed" and self.raw is not None:
                variants = (
                    b'{"v":1,"device":"' + device_id.encode() + b'","kind":"telemetry","entr',
                    b'{"v":99,"device":"' + device_id.encode() + b'","kind":"telemetry"}',
                    b"\xff\xfe not json at all",
                )
                payload = variants[len(self.log.records) % len(variants)]
                self.raw.publish(topic, payload)
                self._log(fault, f"{len(payload)} undecodable bytes")
        self._pending = []

    def _restore(self, ids: tuple[str, ...]) -> None:
        if self.proxy is not None:
            for device_id in ids:
                self.proxy.restore(device_id)

    def _log(self, fault: PlannedFault, detail: str) -> None:
        step = fault.step + self.first
        self.log.add(
            FaultRecord(
                fault.kind,
                step,
                self.config.step_time(step).isoformat(),
                fault.device_ids,
                fault.site_id,
                fault.steps,
                fault.skew_s,
                detail,
            )
        )
