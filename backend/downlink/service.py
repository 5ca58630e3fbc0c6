"""The ``downlink`` service: rounds of store answers, expire, publish desired configs and
commands, woken by the API's notifications, an answer arriving, or the poll interval.

Order of guarantees: a desired version or a command is marked sent only after the broker
acknowledged it (a crash in between sends it again: the device applies a desired version
once and recognises a repeated command id); an answer is acknowledged to the broker only
after it was committed. While the database is away nothing is published and answers stay
with the broker; the service retries every few seconds.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import Connection

from backend.downlink.answers import DecodedAnswer, RefusedAnswer, decode_answer
from backend.downlink.commands import NOTIFY_CHANNEL
from backend.downlink.link import Answer, DownlinkLink, Outgoing, PublishOutcome
from backend.downlink.settings import DownlinkSettings
from backend.downlink.store import (
    device_ids_of,
    due_commands,
    expire_commands,
    mark_command_sent,
    mark_desired_sent,
    postpone_command,
    record_reply,
    record_report,
    unsent_desired,
)
from backend.storage.connect import connect
from device_sdk.wire import (
    SCHEMA_VERSION,
    Channel,
    CommandReply,
    CommandRequest,
    DesiredConfig,
    build_topic,
    encode_model,
)
from fleetcare.errors import ServiceUnavailableError

log = logging.getLogger("fleetcare.downlink")

#: Seconds between attempts while the database is unreachable.
DATABASE_RETRY_S = 2.0


@dataclass
class DownlinkCounts:
    """What the service did since it started."""

    desired_sent: int = 0
    commands_sent: int = 0
    commands_postponed: int = 0
    commands_expired: int = 0
    reports_stored: int = 0
    replies_stored: int = 0
    answers_refused: int = 0
    rounds: int = 0
    by_refusal: dict[str, int] = field(default_factory=dict)


class DownlinkService:
    """Runs rounds on one database connection (reopened after a failure)."""

    def __init__(
        self,
        database_url: str,
        link: DownlinkLink,
        settings: DownlinkSettings,
        *,
        root: str,
        wake: threading.Event,
    ) -> None:
        self.database_url = database_url
        self.link = link
        self.settings = settings
        self.root = root
        self.wake = wake
        self.counts = DownlinkCounts()
        self._conn: Connection[Any] | None = None
        self._unstored: list[Answer] = []

    # ------------------------------------------------------------------ the loop

    def run(self, stop: threading.Event) -> None:
        """Rounds until ``stop`` is set."""
        listener = NotifyListener(self.database_url, self.wake, stop)
        listener.start()
        try:
            while not stop.is_set():
                self.wake.wait(self.settings.poll_interval_s)
                self.wake.clear()
                if stop.is_set():
                    break
                try:
                    self.one_round()
                except (psycopg.OperationalError, ServiceUnavailableError) as exc:
                    log.warning(
                        "database unavailable (%s); retrying in %.0f s",
                        str(exc).strip().splitlines()[0],
                        DATABASE_RETRY_S,
                    )
                    self._close()
                    stop.wait(DATABASE_RETRY_S)
                    self.wake.set()
        finally:
            self._close()
            listener.join(timeout=5)

    def one_round(self) -> None:
        """Store the answers received, expire overdue commands, publish what is due."""
        conn = self._connection()
        self._store_answers(conn)
        with conn.transaction():
            expired = expire_commands(conn)
        self.counts.commands_expired += expired
        if self.link.connected:
            self._publish_desired(conn)
            self._publish_commands(conn)
        self.counts.rounds += 1

    # ------------------------------------------------------------------ answers

    def _store_answers(self, conn: Connection[Any]) -> None:
        batch = self._unstored
        while True:
            try:
                batch.append(self.link.answers.get_nowait())
            except queue.Empty:
                break
        if not batch:
            return
        self._unstored = batch  # kept until committed: a failure below retries them
        decoded = [decode_answer(a.topic, a.payload, self.root) for a in batch]
        refs = {d.device_ref for d in decoded if isinstance(d, DecodedAnswer)}
        outcomes: list[str] = []
        with conn.transaction():
            device_ids = device_ids_of(conn, refs)  # one lookup for the whole batch
            for answer, one in zip(batch, decoded, strict=True):
                outcomes.append(self._store_guarded(conn, answer, one, device_ids))
        self._unstored = []
        for answer in batch:
            self.link.ack(answer)
        for outcome in outcomes:
            if outcome == "report":
                self.counts.reports_stored += 1
            elif outcome == "reply":
                self.counts.replies_stored += 1
            elif outcome != "ignored":
                self.counts.answers_refused += 1
                self.counts.by_refusal[outcome] = self.counts.by_refusal.get(outcome, 0) + 1

    def _store_guarded(
        self,
        conn: Connection[Any],
        answer: Answer,
        decoded: DecodedAnswer | RefusedAnswer,
        device_ids: dict[str, int],
    ) -> str:
        """One answer in a savepoint: one the database refuses (a NUL character in a JSON
        string, say) becomes a dead letter instead of failing the whole batch forever."""
        try:
            with conn.transaction():
                return self._store_one(conn, answer, decoded, device_ids)
        except psycopg.OperationalError:
            raise
        except psycopg.DatabaseError as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return self._dead_letter(conn, answer, "unstorable", detail, None)

    def _store_one(
        self,
        conn: Connection[Any],
        answer: Answer,
        decoded: DecodedAnswer | RefusedAnswer,
        device_ids: dict[str, int],
    ) -> str:
        if not isinstance(decoded, DecodedAnswer):
            if decoded.reason == "empty":
                return "ignored"
            return self._dead_letter(
                conn, answer, decoded.reason, decoded.detail, decoded.device_ref
            )
        device_id = device_ids.get(decoded.device_ref)
        if device_id is None:
            return self._dead_letter(
                conn, answer, "unknown_device", "no such device is registered", decoded.device_ref
            )
        message = decoded.message
        if isinstance(message, CommandReply):
            busy_retry = timedelta(seconds=self.settings.retry_interval_s)
            stored = record_reply(conn, device_id, message, busy_retry=busy_retry)
            if stored == "unknown_command":
                return self._dead_letter(
                    conn,
                    answer,
                    "unknown_command",
                    f"no command {message.id!r} for this device",
                    decoded.device_ref,
                )
            return "reply"
        record_report(conn, device_id, message)
        return "report"

    def _dead_letter(
        self,
        conn: Connection[Any],
        answer: Answer,
        reason: str,
        detail: str,
        device_ref: str | None,
    ) -> str:
        log.warning("refused %s: %s: %s", answer.topic[:200], reason, detail)
        conn.execute(
            "INSERT INTO dead_letters (topic, payload, reason, detail, device_ref)"
            " VALUES (%s, %s, %s, %s, %s)",
            (answer.topic[:1024], answer.payload, reason, detail[:1024], device_ref),
        )
        return reason

    # ------------------------------------------------------------------ publishing

    def _publish_desired(self, conn: Connection[Any]) -> None:
        while True:
            with conn.transaction():
                due = unsent_desired(conn, self.settings.batch_size)
            if not due:
                return
            sent_ms = int(time.time() * 1000)
            messages = [
                Outgoing(
                    build_topic(d.device_ref, Channel.CONFIG_DESIRED, self.root),
                    encode_model(
                        DesiredConfig(
                            v=SCHEMA_VERSION, version=d.version, config=d.config, sent=sent_ms
                        )
                    ),
                    retain=True,
                )
                for d in due
            ]
            outcomes = self.link.publish_all(messages, timeout_s=self.settings.publish_timeout_s)
            with conn.transaction():
                for desired, outcome in zip(due, outcomes, strict=True):
                    if outcome != PublishOutcome.FAILED:  # retained: kept with or without a device
                        mark_desired_sent(conn, desired.device_id, desired.version)
                        self.counts.desired_sent += 1
            if PublishOutcome.FAILED in outcomes or len(due) < self.settings.batch_size:
                return

    def _publish_commands(self, conn: Connection[Any]) -> None:
        retry = timedelta(seconds=self.settings.retry_interval_s)
        while True:
            with conn.transaction():
                due = due_commands(conn, self.settings.batch_size)
                if not due:
                    return
                now = datetime.now(UTC)
                sent_ms = int(time.time() * 1000)
                messages = [
                    Outgoing(
                        build_topic(c.device_ref, Channel.COMMANDS, self.root),
                        encode_model(
                            CommandRequest(
                                v=SCHEMA_VERSION,
                                id=c.command_id,
                                name=c.name,
                                args=c.args,
                                sent=sent_ms,
                            )
                        ),
                        retain=False,
                        expiry_s=c.remaining_s(now),
                    )
                    for c in due
                ]
                outcomes = self.link.publish_all(
                    messages, timeout_s=self.settings.publish_timeout_s
                )
                for command, outcome in zip(due, outcomes, strict=True):
                    if outcome == PublishOutcome.DELIVERED:
                        mark_command_sent(conn, command.row_id)
                        self.counts.commands_sent += 1
                    elif outcome == PublishOutcome.NO_SUBSCRIBERS:
                        postpone_command(
                            conn, command.row_id, retry, "the device has no session on the broker"
                        )
                        self.counts.commands_postponed += 1
            if PublishOutcome.FAILED in outcomes or len(due) < self.settings.batch_size:
                return

    # ------------------------------------------------------------------ connection

    def _connection(self) -> Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.database_url, autocommit=True)
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


class NotifyListener(threading.Thread):
    """Sets ``wake`` on every ``NOTIFY fleetcare_downlink`` (and after each reconnect, for
    what was notified while it was away); the poll interval covers the rest."""

    def __init__(self, database_url: str, wake: threading.Event, stop: threading.Event) -> None:
        super().__init__(name="downlink-listen", daemon=True)
        self.database_url = database_url
        self.wake = wake
        self.stop = stop

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with psycopg.connect(self.database_url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self.wake.set()
                    while not self.stop.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self.wake.set()
            except psycopg.Error as exc:
                log.debug("notification listener: %s", str(exc).strip())
                self.stop.wait(DATABASE_RETRY_S)
