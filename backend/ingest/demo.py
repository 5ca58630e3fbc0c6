"""A ``fleetcare demo`` step: a simulated fleet through the broker into the database, live.

:class:`SimulatedFleetStep` follows the demo's step protocol (``title`` and ``run(demo)``, see
``fleetcare.cli.demo``): it registers a small fleet, starts one ingest worker in-process and
a publisher thread, and prints the counts every few seconds while the demo runs. Everything
stops when the demo's resources close; the final counts go into the summary.
"""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack
from typing import Protocol

from rich.console import Console

from backend.ingest.loadgen import FleetPublisher, FleetSpec, register_fleet
from backend.ingest.service import IngestWorker, WorkerTarget
from backend.ingest.settings import IngestSettings
from fleetcare.cli.state import say
from fleetcare.config import load_settings


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

    def services(self) -> _Services: ...

    def note(self, what: str, value: str) -> None: ...


class SimulatedFleetStep:
    """Publish a simulated fleet's telemetry and ingest it, printing live counts.

    Args:
        devices: simulated devices.
        readings_per_message: readings per batch a device sends.
        messages_per_s: batches per second for the whole fleet.
        every_s: seconds between two lines of counts.
    """

    title = "ingest a simulated fleet"

    def __init__(
        self,
        devices: int = 25,
        readings_per_message: int = 20,
        messages_per_s: float = 50.0,
        every_s: float = 2.0,
    ) -> None:
        self.spec = FleetSpec(
            prefix="demo", devices=devices, readings_per_message=readings_per_message
        )
        self.messages_per_s = messages_per_s
        self.every_s = every_s

    def run(self, demo: DemoRunLike) -> None:
        services = demo.services()
        root = demo.settings.topic_root
        register_fleet(services.database_url, self.spec)
        worker = IngestWorker(
            WorkerTarget(services.database_url, services.broker_url, root),
            load_settings(IngestSettings),
            shared=False,
        )
        worker.start()
        demo.resources.callback(self._summary, demo, worker)
        demo.resources.callback(worker.stop)
        assert worker.receiver is not None
        publisher = FleetPublisher(
            services.broker_url,
            root,
            self.spec,
            first_seq=time.time_ns() // 1_000_000,
            protocol=worker.receiver.protocol,
        )
        publisher.start()
        demo.resources.callback(publisher.stop)
        stop = threading.Event()
        threads = [
            threading.Thread(target=self._publish, args=(publisher, stop), daemon=True),
            threading.Thread(target=self._report, args=(demo.console, worker, stop), daemon=True),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            demo.resources.callback(thread.join, 5)
        demo.resources.callback(stop.set)
        rate = self.messages_per_s * self.spec.readings_per_message
        demo.note(
            "simulated fleet",
            f"{self.spec.devices} devices, {len(self.spec.metrics)} metrics, "
            f"{rate:,.0f} readings/s over MQTT {worker.receiver.protocol}",
        )

    def _publish(self, publisher: FleetPublisher, stop: threading.Event) -> None:
        while not stop.is_set():
            publisher.publish(int(self.messages_per_s), rate=self.messages_per_s, stop=stop)

    def _report(self, console: Console, worker: IngestWorker, stop: threading.Event) -> None:
        while not stop.wait(self.every_s):
            m = worker.metrics
            p99 = m.lag_seconds.quantile(0.99)
            say(
                console,
                f"  ingest: {m.readings_written.total():,.0f} readings stored, "
                f"{m.messages_rejected.total():,.0f} dead-lettered, {m.batches.total():,.0f} "
                f"batches, lag p99 <= {p99 * 1000:,.0f} ms, pending {worker.window.held}",
            )

    @staticmethod
    def _summary(demo: DemoRunLike, worker: IngestWorker) -> None:
        m = worker.metrics
        demo.note("readings stored", f"{m.readings_written.total():,.0f}")
        demo.note("dead letters", f"{m.messages_rejected.total():,.0f}")
        demo.note("end-to-end lag p99", f"<= {m.lag_seconds.quantile(0.99) * 1000:,.0f} ms")
