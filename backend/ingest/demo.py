"""A ``fleetcare demo`` step: the simulator's fleet, through the device SDK and the broker,
into the database, with live counts.

:class:`SimulatedFleetStep` follows the demo's step protocol (``title`` and ``run(demo)``, see
``fleetcare.cli.demo``): it registers the simulator's fleet (a few hundred devices over a few
dozen accounts, :mod:`backend.ingest.demo_fleet`), starts one ingest worker in-process and
the simulator's live mode (every device a ``device_sdk`` client, accelerated time, a few
duplicates and malformed payloads on purpose), and prints the counts every few seconds
(or leaves them to a live view). With a gateway site (``plan.gateway_every`` and a ``site``),
the devices of one simulator shard publish to the site's local broker and reach ingest
through a gateway process (:mod:`fleetcare.demo.gateway_site`). With a demo duration the
simulated span is sized to end before it, so the summary compares what the devices handed
over with what is stored. With ``plan.history_days``, the days before the span are first
written through ingest's writer (:mod:`backend.ingest.history_load`): the devices then have
the history a fleet in the field has, and the span continues it. ``finish`` stops the
fleet and adds the ingest figures (of the span) to the summary; it also runs, once, when
the demo's resources close.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import psycopg
from rich.console import Console

from backend.ingest.demo_fleet import LiveSimulation, SimFleetPlan, register_sim_fleet
from backend.ingest.history_load import load_history
from backend.ingest.metrics import IngestMetrics
from backend.ingest.service import IngestWorker, WorkerTarget
from backend.ingest.settings import IngestSettings
from device_sdk.wire import Channel
from fleetcare.cli.state import say
from fleetcare.config import load_settings

if TYPE_CHECKING:
    from fleetcare.demo.gateway_site import GatewaySite

#: Wall seconds the simulator needs to start its clients and flush them at the end.
_SIM_OVERHEAD_S = 8.0
_DATA_CHANNELS = (Channel.TELEMETRY, Channel.USAGE, Channel.EVENTS)
"""The channels whose messages ingest writes as rows (what the finish waits for)."""
#: Simulated span when the demo runs until Ctrl-C (it stops the simulator then).
_OPEN_ENDED_SPAN_S = 20 * 86_400.0
#: How much older than the span's start a reading may be and still be ingested live.
_PAST_MARGIN_S = 86_400.0


class _Services(Protocol):
    @property
    def database_url(self) -> str: ...

    @property
    def broker_url(self) -> str: ...


class _Settings(Protocol):
    @property
    def topic_root(self) -> str: ...


class DemoRunLike(Protocol):
    """What the step needs from ``fleetcare.cli.demo.DemoRun``."""

    @property
    def settings(self) -> _Settings: ...

    @property
    def console(self) -> Console: ...

    @property
    def resources(self) -> ExitStack: ...

    @property
    def duration_s(self) -> float | None: ...

    @property
    def interrupted(self) -> bool: ...

    def services(self) -> _Services: ...

    def note(self, what: str, value: str) -> None: ...


def rejections(metrics: IngestMetrics) -> str:
    """Dead letters in total and by reason."""
    by_reason = metrics.messages_rejected.by_label()
    if not by_reason:
        return "0"
    parts = ", ".join(f"{reason} {count:,.0f}" for reason, count in sorted(by_reason.items()))
    return f"{sum(by_reason.values()):,.0f} ({parts})"


def _p99(metrics: IngestMetrics) -> str:
    p99 = metrics.lag_seconds.quantile(0.99)
    return "-" if math.isnan(p99) else f"<= {p99 * 1000:,.0f} ms"


def _unfinished_text(unfinished: dict[int, str]) -> str:
    """``shard(s) 0, 2: stopped before the end of its span; shard(s) 4: exited with 1: …``."""
    by_why: dict[str, list[int]] = {}
    for shard, why in sorted(unfinished.items()):
        by_why.setdefault(why, []).append(shard)
    return "; ".join(
        f"shard(s) {', '.join(map(str, shards))}: {why}" for why, shards in by_why.items()
    )


class SimulatedFleetStep:
    """Run the simulator's fleet live through the SDK into ingest, printing live counts.

    Args:
        plan: the fleet, its speed and its deliberate faults.
        every_s: seconds between two lines of counts; ``None`` prints none (a live view
            reads :attr:`worker` instead).
        site: the gateway site the devices of ``plan.site_shard`` publish through; without
            it (or without a site shard) every device publishes to the central broker.
    """

    title = "ingest the simulated fleet"

    def __init__(
        self,
        plan: SimFleetPlan | None = None,
        every_s: float | None = 2.0,
        site: GatewaySite | None = None,
    ) -> None:
        self.plan = plan or SimFleetPlan()
        self.every_s = every_s
        self.site = site if self.plan.site_shard is not None else None
        """The gateway site in use (``None``: every device publishes to the central broker)."""
        self._site_shard_report: dict[str, object] | None = None
        self.unfinished: dict[int, str] = {}
        """Simulator shards without a report, and why."""
        self.devices: list[str] = []
        self.reports: list[dict[str, object]] = []
        """What each simulator process reported when it finished its span."""
        self.worker: IngestWorker | None = None
        self.span_s = 0.0
        self.span_start: datetime | None = None
        """The time stamp of the span's first reading; history lies before it."""
        self.simulation: LiveSimulation | None = None
        self.history_readings = 0
        self._history_said = 0
        self.wall_s: float | None = None
        self._finish: list[Callable[[], None]] = []

    def run(self, demo: DemoRunLike) -> None:
        services = demo.services()
        root = demo.settings.topic_root
        fleet = register_sim_fleet(
            services.database_url, self.plan, progress=lambda text: say(demo.console, f"  {text}")
        )
        self.devices = fleet.devices
        settings = load_settings(IngestSettings)
        wall_s = self.wall_s = demo.duration_s
        if wall_s is None:
            span_s = _OPEN_ENDED_SPAN_S
        else:
            span_s = max(1.0, wall_s - _SIM_OVERHEAD_S) * self.plan.speed
        worker = IngestWorker(
            WorkerTarget(services.database_url, services.broker_url, root),
            demo_ingest_settings(settings, span_s),
            subscription="plain",
            end_session=True,
        )
        worker.start()
        self.worker = worker
        resources = demo.resources
        resources.callback(worker.stop)
        assert worker.receiver is not None
        local = self._start_site(demo, services.broker_url, root)
        simulation = LiveSimulation(self.plan, services.broker_url, root, span_s, site=local)
        self.simulation = simulation
        self.span_s = simulation.span_s
        self.span_start = simulation.span_start
        if self.plan.history_days > 0:
            self._load_history(demo, simulation, services.database_url, root, settings)
        resources.callback(simulation.cleanup)
        resources.callback(self.finish, demo)
        # A short demo (shorter than the simulator's start-up) stops it at once.
        let_finish = wall_s is not None and wall_s >= _SIM_OVERHEAD_S + 2
        stop = threading.Event()
        reporter = threading.Thread(
            target=self._report, args=(demo.console, worker, stop), daemon=True
        )
        self._finish = [
            stop.set,
            lambda: reporter.join(5) if reporter.is_alive() else None,
            # stopped by the user: the fleet stops now, it does not end its span first
            lambda: self._stop_simulation(simulation, let_finish and not demo.interrupted),
            self._drain_site,
            lambda: self._settle(worker),
            lambda: self._summary(demo, worker, services.database_url),
        ]
        simulation.start()
        if self.every_s is not None:
            reporter.start()
        plan = self.plan
        per_s = plan.devices * plan.speed / plan.interval_s
        demo.note(
            "simulated fleet",
            f"{plan.devices} devices of {fleet.accounts} accounts ({fleet.models} models) "
            f"through the device SDK, {plan.shards} process(es), time x{plan.speed:g} "
            f"(about {per_s:,.0f} readings/s), over MQTT {worker.receiver.protocol}",
        )
        if self.site is not None and local is not None:
            demo.note(
                "gateway site",
                f"{len(self.site.devices)} devices (shard {self.plan.site_shard}) publish to "
                f"{local[0]} (topic root {local[1]!r}); gateway {self.site.gateway_id} "
                "forwards them upstream",
            )

    def _load_history(
        self,
        demo: DemoRunLike,
        simulation: LiveSimulation,
        database_url: str,
        root: str,
        settings: IngestSettings,
    ) -> None:
        """Give the fleet the days before the span, written through ingest's writer."""
        days = self.plan.history_days
        expected = len(self.devices) * simulation.history_steps
        say(demo.console, f"  loading {days} days of the fleet's history before the span")
        load = load_history(
            database_url,
            root,
            simulation.history(),
            oldest=simulation.history_start,
            settings=settings,
            progress=lambda n: self._history_progress(demo.console, n, expected),
        )
        self.history_readings = load.readings
        span = "" if load.first is None else f" from {load.first:%Y-%m-%d}"
        demo.note(
            "fleet history",
            f"{load.readings:,} readings of {load.devices} devices over the "
            f"{days} day{'s' if days != 1 else ''} before the span{span}, written through "
            f"ingest's writer in {load.wall_s:.0f} s",
        )

    def _history_progress(self, console: Console, written: int, expected: int) -> None:
        step = max(1, expected // 4)
        if written // step > self._history_said:
            self._history_said = written // step
            done = "; refreshing the hourly and daily rollups" if written >= expected else ""
            say(console, f"    {written:,} of {expected:,} readings written{done}")

    def _start_site(self, demo: DemoRunLike, broker_url: str, root: str) -> tuple[str, str] | None:
        """Start the gateway site; ``(local broker URL, topic root)``, or ``None`` without one."""
        site = self.site
        if site is None:
            return None
        services = demo.services()
        local_url = site.start(
            demo.resources,
            database_url=services.database_url,
            central_url=broker_url,
            central_root=root,
            devices=self.plan.site_devices(),
        )
        if not site.wait_ready():
            raise RuntimeError(
                site.failure() or "the gateway did not connect to the central broker in 30 s"
            )
        return local_url, site.local_root

    def _drain_site(self) -> None:
        """Wait until the gateway has forwarded what the site's devices handed over."""
        if self.site is not None:
            self.site.drain()

    def finish(self, demo: DemoRunLike) -> None:
        """Stop the simulator (or let it end its span), wait until ingest has written what
        it delivered, and add the ingest figures to the summary. Runs once."""
        steps, self._finish = self._finish, []
        for step in steps:
            step()

    def fleet_state(self) -> str:
        """What the simulated fleet is doing, for the live view."""
        simulation = self.simulation
        if simulation is None:
            return "not started"
        days = self.span_s / 86_400
        if simulation.running:
            return f"publishing a span of {days:,.1f} simulated days"
        return f"done: its {days:,.1f} simulated days published"

    def _stop_simulation(self, simulation: LiveSimulation, let_finish: bool) -> None:
        if let_finish:  # its span was sized to end with the demo; a slow machine lags
            simulation.wait(_SIM_OVERHEAD_S + 30 + (self.wall_s or 0.0))
        simulation.stop()
        self.reports = simulation.reports()
        self.unfinished = {
            shard: simulation.why_no_report(shard)
            for shard in range(self.plan.shards)
            if simulation.report_of(shard) is None
        }
        shard = self.plan.site_shard
        if self.site is not None and shard is not None:
            self._site_shard_report = simulation.report_of(shard)

    @staticmethod
    def _settle(worker: IngestWorker, quiet_s: float = 1.5, limit_s: float = 20.0) -> None:
        """Wait until the worker has written every reading, usage record and event the
        broker delivers: none arrived for ``quiet_s`` and its window is empty. State
        reports are not watched: a gateway keeps sending its own (every second in the
        demo) after the devices have stopped, and one of them in the window only delays
        the return until it is written."""
        deadline = time.monotonic() + limit_s
        last, quiet_since = -1.0, time.monotonic()
        received = worker.metrics.messages_received
        while time.monotonic() < deadline:
            seen = sum(received.value(channel) for channel in _DATA_CHANNELS)
            if seen != last:
                last, quiet_since = seen, time.monotonic()
            elif time.monotonic() - quiet_since >= quiet_s and not worker.window.held:
                return
            time.sleep(0.05)

    def _report(self, console: Console, worker: IngestWorker, stop: threading.Event) -> None:
        assert self.every_s is not None
        while not stop.wait(self.every_s):
            m = worker.metrics
            say(
                console,
                f"  ingest: {m.readings_written.value('telemetry'):,.0f} readings, "
                f"{m.readings_written.value('usage'):,.0f} usage records, "
                f"{m.readings_written.value('events'):,.0f} events stored; "
                f"{m.rows_duplicate.total():,.0f} duplicates absorbed; dead letters "
                f"{rejections(m)}; lag p99 {_p99(m)}",
            )

    def handed_over(self) -> int | None:
        """Readings the devices handed over, once every shard reported; else ``None``."""
        if not self.reports or len(self.reports) != self.plan.shards:
            return None
        return sum(int(str(r["readings"])) for r in self.reports)

    def _summary(self, demo: DemoRunLike, worker: IngestWorker, database_url: str) -> None:
        m = worker.metrics
        rows, distinct = self._stored(database_url, self.devices, self.span_start)
        sent = self.handed_over()
        stored = f"{rows:,}" if sent is None else f"{rows:,} of {sent:,} the devices handed over"
        if self.unfinished:
            stored += f" (no report from simulator {_unfinished_text(self.unfinished)})"
        demo.note("readings stored", stored)
        demo.note("duplicate rows", f"{rows - distinct:,}")
        demo.note("duplicates absorbed", f"{m.rows_duplicate.total():,.0f}")
        demo.note("usage records / events", f"{m.readings_written.value('usage'):,.0f} / "
                  f"{m.readings_written.value('events'):,.0f}")  # fmt: skip
        demo.note("dead letters", rejections(m))
        demo.note("end-to-end lag p99", _p99(m))
        if self.site is not None:
            self._site_summary(demo, database_url)

    def _site_summary(self, demo: DemoRunLike, database_url: str) -> None:
        assert self.site is not None
        rows, _ = self._stored(database_url, self.site.devices, self.span_start)
        report = self._site_shard_report
        text = f"{rows:,}"
        if report is not None:
            text += f" of {int(str(report['readings'])):,} the site's devices handed over"
        health = self.site.health()
        gateway = "no state received" if health is None else health.text()
        demo.note("readings via the gateway", f"{text} ({gateway})")

    @staticmethod
    def _stored(database_url: str, devices: list[str], since: datetime | None) -> tuple[int, int]:
        """Telemetry rows of ``devices`` from ``since`` on (the span, not the history), and
        distinct (device, time, seq) among them."""
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                "SELECT count(*), count(DISTINCT (t.device_id, t.time, t.seq)) FROM telemetry t "
                "JOIN devices d ON d.id = t.device_id WHERE d.external_id = ANY(%s) "
                "AND t.time >= coalesce(%s::timestamptz, '-infinity')",
                (devices, since),
            ).fetchone()
        assert row is not None
        return int(str(row[0])), int(str(row[1]))


DEMO_SESSION_EXPIRY_S = 300
"""How long the broker keeps the demo's ingest session once the run has ended."""


def demo_ingest_settings(settings: IngestSettings, span_s: float) -> IngestSettings:
    """The ingest settings of one demo run.

    * A session of its own: the fleet is replayed from scratch, so messages an earlier run
      left queued in a persistent broker must not be delivered to this one.
    * That session ends with the run (the worker ends it when it stops; should the run be
      killed, the broker drops it :data:`DEMO_SESSION_EXPIRY_S` later). With the service's
      default of 7 days, every earlier run's session stayed subscribed to the fleet, so
      the broker queued each later run's readings for workers that never came back: after
      a few runs its store held 825 MB, saving it every second stalled the broker, and
      ingest fell 5 minutes behind (262,581 of 327,120 readings stored by the summary).
    * Readings as old as the span are accepted (it starts ``span_s`` before now).
    """
    run_id = f"{settings.client_id_prefix[:30]}-demo-{os.getpid()}-{int(time.time()) % 10**6}"
    return settings.model_copy(
        update={
            "client_id_prefix": run_id,
            "session_expiry_s": DEMO_SESSION_EXPIRY_S,
            "metrics_port": _demo_metrics_port(settings),
            "max_past_s": max(settings.max_past_s, span_s + _PAST_MARGIN_S),
        }
    )


def _demo_metrics_port(settings: IngestSettings) -> int | None:
    """The configured metrics port, else a free one: the demo must not collide with a
    service (or another demo) already listening on the default port."""
    return settings.metrics_port if "metrics_port" in settings.model_fields_set else 0
