"""The ingest's metrics, in the Prometheus text exposition format, served on ``/metrics``.

A deliberately tiny implementation (counters and histograms with labels, gauges read at
scrape time) so that the service needs no extra dependency. All names start with
``fleetcare_ingest_``; ``docs/ingest.md`` lists them.
"""

from __future__ import annotations

import bisect
import logging
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger("fleetcare.ingest")

LabelValues = tuple[str, ...]
PREFIX = "fleetcare_ingest_"
LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.75, 0.9, 1.0,
    1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0,
)  # fmt: skip
SIZE_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 20_000, 50_000, 100_000)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: LabelValues, extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


class Counter:
    """A monotonically increasing count, per label values."""

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self.name = PREFIX + name
        self.help = help_text
        self.label_names = tuple(labels)
        self._values: dict[LabelValues, float] = {}
        self._lock = threading.Lock()
        if not self.label_names:
            self._values[()] = 0.0

    def inc(self, amount: float = 1.0, *labels: str) -> None:
        with self._lock:
            self._values[labels] = self._values.get(labels, 0.0) + amount

    def value(self, *labels: str) -> float:
        return self._values.get(labels, 0.0)

    def total(self) -> float:
        return sum(self._values.values())

    def by_label(self) -> dict[str, float]:
        """Non-zero values of a one-label counter, by label value."""
        with self._lock:
            return {labels[0]: v for labels, v in self._values.items() if labels and v}

    def render(self) -> Iterator[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} counter"
        with self._lock:
            items = sorted(self._values.items())
        for labels, value in items:
            yield f"{self.name}{_labels(self.label_names, labels)} {_number(value)}"


class Gauge:
    """A value read when scraped."""

    def __init__(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        self.name = PREFIX + name
        self.help = help_text
        self.read = read

    def render(self) -> Iterator[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} gauge"
        yield f"{self.name} {_number(float(self.read()))}"


class Histogram:
    """Observations in cumulative buckets (no labels)."""

    def __init__(self, name: str, help_text: str, buckets: Sequence[float]) -> None:
        self.name = PREFIX + name
        self.help = help_text
        self.bounds = tuple(float(b) for b in buckets)
        self._counts = [0] * (len(self.bounds) + 1)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float, count: int = 1) -> None:
        index = bisect.bisect_left(self.bounds, value)
        with self._lock:
            self._counts[index] += count
            self._sum += value * count

    @property
    def count(self) -> int:
        return sum(self._counts)

    def quantile(self, q: float) -> float:
        """Upper bound of the bucket holding quantile ``q`` (``inf`` past the last bucket)."""
        with self._lock:
            counts = list(self._counts)
        total = sum(counts)
        if total == 0:
            return math.nan
        rank = q * total
        running = 0
        for bound, count in zip((*self.bounds, math.inf), counts, strict=True):
            running += count
            if running >= rank:
                return bound
        return math.inf

    def render(self) -> Iterator[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} histogram"
        with self._lock:
            counts = list(self._counts)
            total_sum = self._sum
        running = 0
        for bound, count in zip((*self.bounds, math.inf), counts, strict=True):
            running += count
            yield f'{self.name}_bucket{{le="{_number(bound)}"}} {running}'
        yield f"{self.name}_sum {_number(total_sum)}"
        yield f"{self.name}_count {running}"


class IngestMetrics:
    """Every metric of one ingest worker."""

    def __init__(self) -> None:
        self.messages_received = Counter(
            "messages_received_total", "MQTT messages received, by channel.", ["channel"]
        )
        self.messages_written = Counter(
            "messages_written_total",
            "Messages whose rows are committed, by channel.",
            ["channel"],
        )
        self.messages_rejected = Counter(
            "messages_rejected_total", "Messages dead-lettered, by reason.", ["reason"]
        )
        self.readings_received = Counter(
            "readings_received_total",
            "Entries (readings, usage records, events, state reports) in valid messages, by "
            "channel.",
            ["channel"],
        )
        self.readings_written = Counter(
            "readings_written_total", "Entries committed, by channel.", ["channel"]
        )
        self.readings_rejected = Counter(
            "readings_rejected_total",
            "Entries in dead-lettered messages (0 when the payload did not decode), by reason.",
            ["reason"],
        )
        self.rows_written = Counter(
            "telemetry_rows_inserted_total",
            "Telemetry rows (one per reading) inserted by COPY.",
        )
        self.rows_duplicate = Counter(
            "telemetry_rows_duplicate_total",
            "Telemetry rows skipped because they were stored already (redeliveries).",
        )
        self.dedup_batches = Counter(
            "dedup_batches_total",
            "Batches written through the deduplicating staging table.",
        )
        self.batches = Counter("batches_total", "Database transactions committed.")
        self.db_errors = Counter(
            "db_errors_total", "Database errors, by kind (retried or split).", ["kind"]
        )
        self.messages_foreign = Counter(
            "messages_other_partition_total",
            "Messages of devices another worker writes (subscription = partitioned), "
            "acknowledged unwritten.",
        )
        self.acks = Counter("acks_total", "Messages acknowledged to the broker.")
        self.acks_skipped = Counter(
            "acks_skipped_total",
            "Messages not acknowledged because their connection is gone (the broker "
            "redelivers them; deduplication absorbs the copy).",
        )
        self.mqtt_connects = Counter(
            "mqtt_connects_total", "Successful MQTT connections, by protocol.", ["protocol"]
        )
        self.liveness = Counter(
            "device_transitions_total", "Device online/offline transitions recorded.", ["to"]
        )
        self.batch_messages = Histogram("batch_messages", "Messages per batch.", SIZE_BUCKETS)
        self.batch_rows = Histogram("batch_rows", "Telemetry rows per batch.", (0, *SIZE_BUCKETS))
        self.commit_seconds = Histogram(
            "commit_seconds", "Latency of the COMMIT of a batch.", LATENCY_BUCKETS
        )
        self.write_seconds = Histogram(
            "batch_write_seconds",
            "Time from the first statement of a batch to its commit.",
            LATENCY_BUCKETS,
        )
        self.lag_seconds = Histogram(
            "end_to_end_lag_seconds",
            "Device time to commit: commit time minus the device's send time (envelope "
            "'sent'), per message.",
            LATENCY_BUCKETS,
        )
        self.reading_age_seconds = Histogram(
            "reading_age_seconds",
            "Commit time minus the time of the oldest entry, per message.",
            LATENCY_BUCKETS,
        )
        self._gauges: list[Gauge] = []

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        self._gauges.append(Gauge(name, help_text, read))

    def _all(self) -> list[Counter | Gauge | Histogram]:
        return [v for v in vars(self).values() if isinstance(v, (Counter, Histogram))] + list(
            self._gauges
        )

    def render(self) -> str:
        """The exposition text (format 0.0.4)."""
        lines: list[str] = []
        for metric in self._all():
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"


class _Handler(BaseHTTPRequestHandler):
    server: _MetricsServer

    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/metrics":
            self.send_error(404, "only /metrics here")
            return
        body = self.server.metrics.render().encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("metrics: " + format, *args)


class _MetricsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], metrics: IngestMetrics) -> None:
        self.metrics = metrics
        super().__init__(address, _Handler)


class MetricsEndpoint:
    """``/metrics`` over HTTP in a daemon thread."""

    def __init__(self, metrics: IngestMetrics, host: str, port: int) -> None:
        self._server = _MetricsServer((host, port), metrics)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="ingest-metrics", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@contextmanager
def serving(metrics: IngestMetrics, host: str, port: int | None) -> Iterator[int | None]:
    """Serve ``metrics`` on ``host:port`` for the duration of the block (``None``: don't)."""
    if port is None:
        yield None
        return
    endpoint = MetricsEndpoint(metrics, host, port)
    endpoint.start()
    try:
        yield endpoint.port
    finally:
        endpoint.stop()
