"""One ingest worker: receiver → bounded window → prepare → commit → acknowledgements.

:class:`IngestWorker` wires the parts together and runs two stages in threads, so that the
checks and packing of one batch (Python) overlap the COPY of the previous one (database):

1. *prepare*: take a batch from the window, check it (:meth:`BatchWriter.prepare`), hand it
   over (a hand-off of one batch: the stage waits while the commit stage is busy);
2. *commit*: commit it (:meth:`BatchWriter.commit`), acknowledge its messages in the order
   they arrived; between batches, run the offline detector.

While the database is away both stages retry; nothing is acknowledged meanwhile, the window
fills, the receive loop waits and the broker holds the rest.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import psycopg

from backend.ingest.decode import Decoder
from backend.ingest.device_partition import DevicePartition
from backend.ingest.errors import NotMigratedError
from backend.ingest.liveness import mark_silent_offline
from backend.ingest.metrics import IngestMetrics, MetricsEndpoint
from backend.ingest.partitions import PartitionGuard
from backend.ingest.pending import Inbound, PendingWindow
from backend.ingest.prepare import Prepared, Preparer
from backend.ingest.receiver import Protocol, Receiver, SubscriptionMode, choose_protocol
from backend.ingest.resolver import Resolver
from backend.ingest.server_traits import ServerTraits, probe_server
from backend.ingest.settings import IngestSettings
from backend.ingest.writer import TRANSIENT_ERRORS, BatchWriter
from backend.storage.connect import connect
from backend.storage.dialect import Connection, Dialect
from backend.storage.errors import MigrationError
from backend.storage.migrator import dialect_of
from fleetcare.errors import ServiceUnavailableError
from fleetcare.redact import redact_url

log = logging.getLogger("fleetcare.ingest")
T = TypeVar("T")
A = TypeVar("A")

_DRAIN_S = 15.0
_DB_CONNECT_TIMEOUT_S = 5
_ONE_CONNECTION_ATTEMPTS = 30


@dataclass(frozen=True)
class WorkerTarget:
    """Where one worker connects."""

    database_url: str
    broker_url: str
    topic_root: str
    index: int = 0
    workers: int = 1
    """How many workers share the load (the partition count of ``partitioned``)."""


def tune_gc_for_throughput() -> None:
    """Move start-up objects out of the collector's way and collect young objects less often.

    For a worker process (call it from its entry point, not from library code): decoding
    allocates many short-lived containers, almost all freed by reference counting, and the
    default thresholds made the cyclic collector cost about a fifth of the decode time.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def database_dialect(database_url: str, timeout_s: float = 5.0) -> Dialect:
    """The dialect the database was migrated with.

    Raises:
        ServiceUnavailableError: the database cannot be reached.
        NotMigratedError: the schema is not there yet.
    """
    with connect(database_url, timeout_s, autocommit=True) as conn:
        try:
            return dialect_of(conn)
        except MigrationError as exc:
            raise NotMigratedError(str(exc)) from None


def build_writer(
    database_url: str,
    topic_root: str,
    settings: IngestSettings,
    dialect: Dialect,
    metrics: IngestMetrics,
    *,
    record_dead_letters: bool = True,
    server: ServerTraits | None = None,
) -> BatchWriter:
    """A :class:`BatchWriter` for ``database_url`` with the checks ``settings`` ask for.

    ``server``: what the server can do (:func:`probe_server`); ``None``: a PostgreSQL server
    with COPY, unless ``settings.telemetry_write`` says ``insert``.
    """
    if server is None:
        server = ServerTraits("insert" if settings.telemetry_write == "insert" else "copy")
    traits = server

    def open_connection() -> Connection:
        attempts = _ONE_CONNECTION_ATTEMPTS if traits.one_connection else 1
        for attempt in range(attempts):
            try:
                conn = psycopg.connect(
                    database_url, autocommit=True, connect_timeout=_DB_CONNECT_TIMEOUT_S
                )
                return traits.configure(conn)
            except psycopg.OperationalError:
                # A server of one connection at a time refuses one opened right after another
                # closed: retry briefly before reporting it.
                if attempt + 1 == attempts:
                    raise
                time.sleep(0.1)
        raise AssertionError("unreachable")

    decoder = Decoder(
        topic_root, settings.max_payload_bytes, settings.max_future_s, settings.max_past_s
    )
    resolver = Resolver(
        device_ttl_s=settings.device_cache_ttl_s,
        max_devices=settings.device_cache_size,
        unknown_retry_s=settings.unknown_retry_s,
    )
    return BatchWriter(
        open_connection,
        Preparer(decoder, resolver),
        PartitionGuard(dialect),
        metrics,
        liveness_interval_s=settings.liveness_interval_s,
        dead_letter_payload_bytes=settings.dead_letter_payload_bytes,
        record_dead_letters=record_dead_letters,
        telemetry_write=server.telemetry_write,
        one_connection=server.one_connection,
    )


class IngestWorker:
    """One worker: an MQTT client, a window, two stage threads and (optionally) ``/metrics``.

    Use :meth:`start` and :meth:`stop`, or as a context manager.
    """

    def __init__(
        self,
        target: WorkerTarget,
        settings: IngestSettings,
        *,
        protocol: Protocol | None = None,
        metrics: IngestMetrics | None = None,
        subscription: SubscriptionMode | None = None,
        retire: bool = False,
        end_session: bool = False,
    ) -> None:
        """``subscription``: ``None`` means as ``settings.subscription`` says for
        ``target.workers`` workers. ``retire``: write what this worker's session holds,
        subscribe nothing, end the session on :meth:`stop` (see :func:`retire_sessions`).
        ``end_session``: end the session on :meth:`stop` (a worker nobody takes over)."""
        self.retire = retire
        self.end_session = end_session
        self.target = target
        self.subscription: SubscriptionMode = subscription or settings.subscription_for(
            target.workers
        )
        self.settings = settings
        self.metrics = metrics or IngestMetrics()
        self.window = PendingWindow(settings.max_pending_messages, settings.max_pending_bytes)
        self._protocol = protocol
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._handoff: queue.Queue[tuple[int, list[Inbound], Prepared]] = queue.Queue(
            maxsize=settings.commit_concurrency
        )
        self._prepared_all = threading.Event()
        self._writer: BatchWriter | None = None
        self._committers: list[BatchWriter] = []
        self._ack_turn = threading.Condition()
        self._db_turn: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
        self._next_ack = 0
        self.receiver: Receiver | None = None
        self.metrics_endpoint: MetricsEndpoint | None = None
        self.last_error: str | None = None
        self._register_gauges()

    def _register_gauges(self) -> None:
        window, m = self.window, self.metrics
        m.gauge("pending_messages", "Messages received, not yet acknowledged.", lambda: window.held)
        m.gauge(
            "pending_bytes",
            "Payload bytes received, not yet acknowledged.",
            lambda: window.held_bytes,
        )
        m.gauge(
            "pending_limit_messages", "The bound on pending messages.", lambda: window.max_messages
        )
        m.gauge(
            "pending_peak_messages", "Most pending messages seen at once.", lambda: window.peak_held
        )
        m.gauge(
            "receive_blocked_seconds",
            "Seconds the receive loop waited for room (backpressure).",
            lambda: window.blocked_seconds,
        )
        m.gauge(
            "mqtt_connected",
            "1 while connected to the broker.",
            lambda: float(bool(self.receiver and self.receiver.connected)),
        )

    @property
    def client_id(self) -> str:
        return f"{self.settings.client_id_prefix}-{self.target.index}"

    def start(self) -> None:
        """Check the database, start ``/metrics``, the stage threads and the MQTT client.

        Raises:
            ServiceUnavailableError: the database or the broker cannot be reached.
            NotMigratedError: the database has no fleetcare schema.
        """
        settings = self.settings
        server = probe_server(self.target.database_url, settings.telemetry_write)
        dialect = database_dialect(self.target.database_url)
        protocol = self._protocol or choose_protocol(self.target.broker_url)
        if server.one_connection:
            # One connection at a time: one committer, and the stages take turns on it.
            log.info("database takes one connection at a time: prepare and commit take turns")
            self._db_turn = threading.Lock()
        self._committers = [
            build_writer(
                self.target.database_url,
                self.target.topic_root,
                settings,
                dialect,
                self.metrics,
                server=server,
            )
            for _ in range(1 if server.one_connection else settings.commit_concurrency)
        ]
        log.info("telemetry written by %s", server.telemetry_write.upper())
        self._writer = self._committers[0]
        if settings.metrics_port is not None:
            port = settings.metrics_port + self.target.index if settings.metrics_port else 0
            self.metrics_endpoint = MetricsEndpoint(self.metrics, settings.metrics_host, port)
            self.metrics_endpoint.start()
            log.info(
                "metrics on http://%s:%s/metrics", settings.metrics_host, self.metrics_endpoint.port
            )
        self.receiver = Receiver(
            self.target.broker_url,
            self.target.topic_root,
            self.client_id,
            self.window,
            self.metrics,
            protocol=protocol,
            subscription=self.subscription,
            retire=self.retire,
            end_session=self.end_session,
            partition=(
                DevicePartition(self.target.index, self.target.workers)
                if self.subscription == "partitioned"
                else None
            ),
            share_group=settings.share_group,
            session_expiry_s=settings.session_expiry_s,
            keepalive_s=settings.keepalive_s,
        )
        self._threads = [
            threading.Thread(target=self._prepare_loop, name="ingest-prepare", daemon=True),
            *(
                threading.Thread(
                    target=self._commit_loop,
                    args=(writer, i == 0),
                    name=f"ingest-commit-{i}",
                    daemon=True,
                )
                for i, writer in enumerate(self._committers)
            ),
        ]
        for thread in self._threads:
            thread.start()
        self.receiver.start()

    def stop(self, drain_s: float = _DRAIN_S) -> None:
        """Stop taking messages, commit and acknowledge what is queued, disconnect."""
        self.window.close()
        deadline = time.monotonic() + drain_s
        while self._threads_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        left = self.window.drop_queued()
        if left or not self._handoff.empty():
            log.warning("messages left unacknowledged at stop: the broker will redeliver them")
        if self.receiver is not None:
            self.receiver.stop()
        for writer in self._committers:
            writer.close()
        if self.metrics_endpoint is not None:
            self.metrics_endpoint.stop()

    def _threads_alive(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def __enter__(self) -> IngestWorker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the stages ------------------------------------------------------------------------

    def _take_batch(self) -> list[Inbound]:
        s = self.settings
        batch = self.window.take(s.batch_max_messages, 0.25, s.batch_max_bytes)
        if not batch:
            return batch
        deadline = time.monotonic() + s.batch_max_wait_ms / 1000
        payload_bytes = sum(len(m.payload) for m in batch)
        while len(batch) < s.batch_max_messages and payload_bytes < s.batch_max_bytes:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._stop.is_set():
                break
            more = self.window.take(
                s.batch_max_messages - len(batch), remaining, s.batch_max_bytes - payload_bytes
            )
            batch.extend(more)
            payload_bytes += sum(len(m.payload) for m in more)
        return batch

    def _prepare_loop(self) -> None:
        """Stage 1: take a batch, check it (device and catalogue lookups), hand it over."""
        writer = self._writer
        assert writer is not None
        number = 0
        while not self._stop.is_set():
            batch = self._take_batch()
            if not batch:
                if self.window.closed and not self.window.queued:
                    break
                continue
            own = [m for m in batch if not m.foreign]
            if own:
                prepared = self._retry(
                    partial(self._in_turn, writer.prepare, own), writer.reset_lookup
                )
                if prepared is None:
                    return
            else:  # only other partitions' messages: nothing to write, only to acknowledge
                prepared = Prepared()
            while not self._stop.is_set():
                try:
                    self._handoff.put((number, batch, prepared), timeout=0.25)
                    number += 1
                    break
                except queue.Full:
                    continue
        self._prepared_all.set()

    def _commit_loop(self, writer: BatchWriter, checks_offline: bool) -> None:
        """Stage 2 (``commit_concurrency`` threads, one connection each): commit prepared
        batches, then acknowledge their messages in the order the batches were taken."""
        receiver = self.receiver
        assert receiver is not None
        interval = self.settings.offline_check_interval_s
        next_offline_check = time.monotonic() + interval
        while not self._stop.is_set():
            try:
                number, batch, prepared = self._handoff.get(timeout=0.25)
            except queue.Empty:
                if self._prepared_all.is_set():
                    break
            else:
                has_work = prepared.accepted or prepared.dead
                step = partial(self._in_turn, writer.commit, prepared)
                if has_work and self._retry(step, writer.reset) is None:
                    return
                if not self._wait_turn(number):
                    return
                receiver.ack(batch)
                with self._ack_turn:
                    self._next_ack = number + 1
                    self._ack_turn.notify_all()
            if checks_offline and time.monotonic() >= next_offline_check:
                next_offline_check = time.monotonic() + interval
                self._offline_check()

    def _in_turn(self, step: Callable[[A], T], argument: A) -> T:
        """``step(argument)``, alone on the database when it takes one connection at a time."""
        with self._db_turn:
            return step(argument)

    def _wait_turn(self, number: int) -> bool:
        """Wait until every earlier batch is acknowledged (MQTT wants PUBACKs in order)."""
        with self._ack_turn:
            while self._next_ack != number:
                if self._stop.is_set():
                    return False
                self._ack_turn.wait(0.25)
        return True

    def _retry(self, step: Callable[[], T], reset: Callable[[], None]) -> T | None:
        """Run ``step`` until it succeeds; ``None`` when stopped first."""
        delay = 0.2
        while True:
            try:
                result = step()
                self.last_error = None
                return result
            except TRANSIENT_ERRORS as exc:
                kind = "connection" if isinstance(exc, psycopg.OperationalError) else "transient"
                self._note_error(kind, exc)
            except psycopg.Error as exc:  # schema or server problem: keep the data, retry
                self._note_error("server", exc)
            reset()
            if self._stop.wait(delay):
                return None
            delay = min(self.settings.db_retry_max_s, delay * 2)

    def _note_error(self, kind: str, exc: Exception) -> None:
        self.metrics.db_errors.inc(1, kind)
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if text != self.last_error:
            log.warning("database error (%s: %s); retrying, nothing acknowledged", kind, text)
        self.last_error = text

    def _offline_check(self) -> None:
        assert self._writer is not None
        try:
            with self._db_turn:
                ids = mark_silent_offline(self._writer.connection(), self.settings.offline_after_s)
        except psycopg.Error as exc:
            self._writer.reset()
            log.debug("offline check skipped: %s", exc)
            return
        if ids:
            self.metrics.liveness.inc(len(ids), "offline")
            log.info(
                "%d device(s) marked offline after %g s of silence",
                len(ids),
                self.settings.offline_after_s,
            )


def retire_sessions(
    target: WorkerTarget, settings: IngestSettings, first_index: int, idle_s: float = 2.0
) -> list[str]:
    """Empty and end the sessions of workers ``first_index``, ``first_index + 1``, … that a
    smaller layout no longer runs; stops at the first index without a session.

    Call it after the new layout's sessions are subscribed (so nothing published meanwhile
    is missed). Each old session is taken over, unsubscribed, its queued messages are all
    written (whatever their partition: the unique index absorbs the copies) and it is
    ended. Returns the client ids retired.
    """
    retired: list[str] = []
    quiet = settings.model_copy(update={"metrics_port": None})
    index = first_index
    while True:
        one = WorkerTarget(target.database_url, target.broker_url, target.topic_root, index)
        worker = IngestWorker(one, quiet, subscription="plain", retire=True)
        worker.start()
        try:
            receiver = worker.receiver
            assert receiver is not None
            if not receiver.wait_connected(30) or receiver.session_present is None:
                raise ServiceUnavailableError(
                    "mqtt broker", redact_url(one.broker_url), [f"connect as {worker.client_id}"]
                )
            if not receiver.session_present:
                return retired
            seen, quiet_since = -1.0, time.monotonic()
            while time.monotonic() - quiet_since < idle_s:
                now_seen = worker.metrics.messages_received.total()
                if now_seen != seen or worker.window.held:
                    seen, quiet_since = now_seen, time.monotonic()
                time.sleep(0.1)
            log.info("retired the session of %s (%d messages written)", worker.client_id, seen)
            retired.append(worker.client_id)
        finally:
            worker.stop()
        index += 1
