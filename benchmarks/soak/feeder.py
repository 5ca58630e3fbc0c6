"""Predictions written at a steady pace, standing in for the scoring worker.

Tickets need predictions, and predictions need a champion fleet model in the registry; the
soak does not train one. The feeder writes what a scoring worker would: for a fixed set of
target devices (one per account, so storm control does not merge them into incidents) an
at-risk prediction again and again, so each target gets a ticket and the repeats test that
none is duplicated; between them low-risk predictions for other devices (no ticket). While
the database is down the feeder counts its failed attempts and carries on.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

log = logging.getLogger("benchmarks.soak.feeder")

#: A failure mode per machine type, named in the default care rules' catalogue.
MODES = {"cp": "bearing_wear", "ac": "valve_leak"}


@dataclass
class FeederCounts:
    at_risk: int = 0
    low_risk: int = 0
    failed: int = 0


class PredictionFeeder:
    def __init__(self, database_url: str, every_s: float, targets: int = 24, seed: int = 7) -> None:
        self.database_url = database_url
        self.every_s = every_s
        self.targets_wanted = targets
        self.counts = FeederCounts()
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prediction-feeder", daemon=True)
        self._targets: list[tuple[int, str]] = []
        self._others: list[tuple[int, str]] = []

    def _choose(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        rows = conn.execute(
            "SELECT DISTINCT ON (account_id) id, external_id FROM devices"
            " WHERE account_id IS NOT NULL ORDER BY account_id, id"
        ).fetchall()
        picked = {int(str(r[0])) for r in rows[: self.targets_wanted]}
        self._targets = [(int(str(r[0])), str(r[1])) for r in rows[: self.targets_wanted]]
        everyone = conn.execute("SELECT id, external_id FROM devices ORDER BY id").fetchall()
        self._others = [(int(str(r[0])), str(r[1])) for r in everyone if r[0] not in picked]

    def _write(self, conn: psycopg.Connection[tuple[object, ...]], step: int) -> None:
        at_risk = step % 2 == 0 or not self._others
        pool = self._targets if at_risk else self._others
        device_id, external = pool[(step // 2) % len(pool)] if at_risk else self._rng.choice(pool)
        now = datetime.now(UTC)
        risk = self._rng.uniform(0.85, 0.97) if at_risk else self._rng.uniform(0.01, 0.1)
        conn.execute(
            "INSERT INTO predictions (predicted_at, device_id, window_start, window_end,"
            " horizon_hours, failure_risk, rul_hours, failure_mode)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                now,
                device_id,
                now - timedelta(hours=24),
                now,
                168,
                risk,
                None,
                MODES.get(external.split("-", 1)[0], "bearing_wear"),
            ),
        )
        conn.commit()
        if at_risk:
            self.counts.at_risk += 1
        else:
            self.counts.low_risk += 1

    def _run(self) -> None:
        conn: psycopg.Connection[tuple[object, ...]] | None = None
        step = 0
        while not self._stop.wait(self.every_s):
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.database_url, connect_timeout=3)
                    if not self._targets:
                        self._choose(conn)
                self._write(conn, step)
                step += 1
            except psycopg.Error as exc:
                self.counts.failed += 1
                log.info("prediction not written (%s); retrying", type(exc).__name__)
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
