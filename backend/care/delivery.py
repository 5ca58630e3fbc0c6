"""The delivery worker: sends due outbox rows, retries with backoff and jitter, dead-letters.

Rows are claimed with ``FOR UPDATE SKIP LOCKED``, so several workers share the outbox and
never send the same row at the same time. A failed attempt schedules the next one after
``base * 2**(attempts-1)`` seconds (capped), times a random factor in [0.5, 1.5) so that
receivers coming back are not hit by every sender at once; after ``delivery_max_attempts``
the row is dead-lettered (``dead_lettered_at``, ``last_error``). A receiver drops duplicates
by the ``Idempotency-Key`` header (a row whose response was lost is sent again).
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row

from backend.care.clock import Clock, system_clock
from backend.care.senders import (
    DeliveryError,
    EmailSender,
    Notification,
    Sender,
    SmtpTarget,
    WebhookSender,
)
from backend.care.settings import CareSettings

log = logging.getLogger("fleetcare.care.delivery")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base_s: float
    max_s: float

    def delay_s(self, attempts: int, rng: random.Random) -> float:
        """Seconds before attempt ``attempts + 1``, jittered."""
        raw = min(self.max_s, self.base_s * 2 ** max(0, attempts - 1))
        return float(min(self.max_s, raw * (0.5 + rng.random())))


@dataclass
class DeliveryReport:
    delivered: int = 0
    retried: int = 0
    dead_lettered: int = 0


def smtp_target(settings: CareSettings) -> SmtpTarget | None:
    if settings.smtp_host is None:
        return None
    return SmtpTarget(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.smtp_sender,
        starttls=settings.smtp_starttls,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        timeout_s=settings.webhook_timeout_s,
    )


class DeliveryWorker:
    """Delivers due notifications; the clock and the random source are injectable."""

    def __init__(
        self,
        settings: CareSettings,
        *,
        clock: Clock = system_clock,
        rng: random.Random | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.policy = RetryPolicy(
            settings.delivery_max_attempts,
            settings.delivery_backoff_base_s,
            settings.delivery_backoff_max_s,
        )
        self.batch = settings.delivery_batch
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
        self._own_client = http_client is None
        self.http = http_client or httpx.Client(
            timeout=settings.webhook_timeout_s, follow_redirects=False
        )
        senders: dict[str, Sender] = {"webhook": WebhookSender(self.http)}
        target = smtp_target(settings)
        if target is not None:
            senders["email"] = EmailSender(target)
        self.senders = senders

    def close(self) -> None:
        if self._own_client:
            self.http.close()

    def __enter__(self) -> DeliveryWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _claim(self, conn: psycopg.Connection[Any], now: datetime) -> list[Notification]:
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                "SELECT o.id, o.channel, o.event, o.idempotency_key, o.payload, o.attempts,"
                " w.url, w.secret FROM notification_outbox o"
                " LEFT JOIN webhooks w ON w.id = o.webhook_id"
                " WHERE o.delivered_at IS NULL AND o.dead_lettered_at IS NULL"
                " AND o.next_attempt_at <= %s AND o.channel = ANY(%s)"
                " AND (o.channel <> 'webhook' OR w.enabled)"
                " ORDER BY o.next_attempt_at, o.id LIMIT %s FOR UPDATE OF o SKIP LOCKED",
                (now, list(self.senders), self.batch),
            )
            return [Notification(**row) for row in cur.fetchall()]

    def deliver_due(self, conn: psycopg.Connection[Any]) -> DeliveryReport:
        """One pass: send every due row (up to the batch size), record each result."""
        report = DeliveryReport()
        now = self.clock()
        with conn.transaction():
            for notification in self._claim(conn, now):
                try:
                    self.senders[notification.channel].send(notification, int(now.timestamp()))
                except DeliveryError as exc:
                    self._failed(conn, notification, exc.error, now, report)
                    continue
                conn.execute(
                    "UPDATE notification_outbox SET delivered_at = %s, attempts = attempts + 1,"
                    " last_error = NULL WHERE id = %s",
                    (now, notification.id),
                )
                report.delivered += 1
        conn.commit()
        return report

    def _failed(
        self,
        conn: psycopg.Connection[Any],
        notification: Notification,
        error: str,
        now: datetime,
        report: DeliveryReport,
    ) -> None:
        attempts = notification.attempts + 1
        if attempts >= self.policy.max_attempts:
            conn.execute(
                "UPDATE notification_outbox SET attempts = %s, dead_lettered_at = %s,"
                " last_error = %s WHERE id = %s",
                (attempts, now, error, notification.id),
            )
            report.dead_lettered += 1
            log.warning(
                "notification %s dead-lettered after %d attempts: %s",
                notification.idempotency_key,
                attempts,
                error,
            )
            return
        delay = self.policy.delay_s(attempts, self.rng)
        conn.execute(
            "UPDATE notification_outbox SET attempts = %s, next_attempt_at = %s, last_error = %s"
            " WHERE id = %s",
            (attempts, now + timedelta(seconds=delay), error, notification.id),
        )
        report.retried += 1

    def run_forever(
        self, conn: psycopg.Connection[Any], *, interval_s: float, duration_s: float | None = None
    ) -> DeliveryReport:
        total = DeliveryReport()
        deadline = None if duration_s is None else time.monotonic() + duration_s
        while True:
            report = self.deliver_due(conn)
            total.delivered += report.delivered
            total.retried += report.retried
            total.dead_lettered += report.dead_lettered
            if deadline is not None and time.monotonic() >= deadline:
                return total
            if report.delivered + report.retried + report.dead_lettered < self.batch:
                time.sleep(interval_s)


def requeue_dead_letters(conn: psycopg.Connection[Any], now: datetime) -> int:
    """Give every dead-lettered notification a fresh set of attempts; returns how many."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "UPDATE notification_outbox SET dead_lettered_at = NULL, attempts = 0,"
            " next_attempt_at = %s WHERE dead_lettered_at IS NOT NULL AND delivered_at IS NULL",
            (now,),
        )
        return cur.rowcount
