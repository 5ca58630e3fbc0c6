"""Health scores kept current: the ``health`` service of ``fleetcare up``.

Every pass scores the accounts whose inputs changed since the previous pass (new tickets,
predictions, usage, contracts, surveys, account edits; ``health_job.changed_accounts``) and
every account whose newest score is older than ``rescore_after``: a health score is a view
of an account *as of a moment* (a renewal draws nearer, usage ages), so it goes stale even
when nothing new arrives. The care engine reads the new scores and raises the CSM alerts
(``health_drop``, ``health_band``, ``renewal_risk``).

Inputs carry the time they were made, not the time they were committed: a scoring pass
stamps its predictions with its start and commits them at its end. So each pass looks for
changes from :data:`CHANGE_OVERLAP` before the previous pass's start; an account changed in
that overlap may be scored twice, never missed. (Inputs stamped further back, such as a CRM
import of tickets opened days ago, reach the score at the daily rescoring.) Nothing else is
kept between passes; after a restart the newest stored score's time takes the previous
start's place.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import Connection

from backend.customers.churn_model import LinearChurnModel
from backend.customers.errors import CustomersError
from backend.customers.health_job import changed_accounts, recompute
from backend.customers.health_weights import HealthWeights, load_weights
from backend.customers.settings import CustomersSettings
from backend.storage.connect import connect
from fleetcare.errors import ServiceUnavailableError
from fleetcare.periodic import every_interval

log = logging.getLogger("fleetcare.health")

#: How far before the previous pass's start a pass looks for changed inputs.
CHANGE_OVERLAP = timedelta(minutes=5)

_STALE = """
SELECT a.id FROM accounts a WHERE a.status NOT IN ('erased', 'prospect')
AND NOT EXISTS (SELECT 1 FROM health_scores h WHERE h.account_id = a.id AND h.computed_at >= %s)
ORDER BY a.id
"""


def stale_accounts(conn: Connection[Any], scored_since: datetime) -> list[int]:
    """Live accounts without a score computed at or after ``scored_since``."""
    return [int(row[0]) for row in conn.execute(_STALE, (scored_since,)).fetchall()]


def newest_score_time(conn: Connection[Any]) -> datetime | None:
    row = conn.execute("SELECT max(computed_at) FROM health_scores").fetchone()
    value = row[0] if row else None
    return value if isinstance(value, datetime) else None


@dataclass(frozen=True)
class HealthPass:
    """What one pass did: accounts scored (changed, stale), by band, and how long it took."""

    at: datetime
    changed: int
    stale: int
    bands: dict[str, int]
    seconds: float

    @property
    def scored(self) -> int:
        return sum(self.bands.values())


class HealthRefresher:
    """Health passes on one database, every interval, each in one transaction."""

    def __init__(
        self,
        database_url: str,
        weights: HealthWeights,
        *,
        rescore_after: timedelta,
        churn_model: LinearChurnModel | None = None,
        connect_timeout_s: float = 5.0,
    ) -> None:
        self.database_url = database_url
        self.weights = weights
        self.rescore_after = rescore_after
        self.churn_model = churn_model
        self.connect_timeout_s = connect_timeout_s
        self.since: datetime | None = None
        self.passes = 0
        self.failures = 0

    @classmethod
    def from_settings(
        cls, database_url: str, settings: CustomersSettings, connect_timeout_s: float = 5.0
    ) -> HealthRefresher:
        """The refresher the settings describe: their weights, churn model and rescoring age."""
        model = LinearChurnModel.load(settings.churn_model) if settings.churn_model else None
        return cls(
            database_url,
            load_weights(settings.health_weights),
            rescore_after=timedelta(hours=settings.health_rescore_after_hours),
            churn_model=model,
            connect_timeout_s=connect_timeout_s,
        )

    def run_once(self, now: datetime | None = None) -> HealthPass:
        begun = time.perf_counter()
        at = now or datetime.now(UTC)
        with connect(self.database_url, self.connect_timeout_s) as conn, conn.transaction():
            since = self.since or newest_score_time(conn)
            changed = (
                set(changed_accounts(conn, since - CHANGE_OVERLAP)) if since is not None else set()
            )
            stale = set(stale_accounts(conn, at - self.rescore_after)) - changed
            scores = recompute(
                conn,
                self.weights,
                at=at,
                account_ids=sorted(changed | stale),
                churn_model=self.churn_model,
            )
        self.since = at
        self.passes += 1
        bands: dict[str, int] = {}
        for score in scores:
            bands[score.band] = bands.get(score.band, 0) + 1
        return HealthPass(at, len(changed), len(stale), bands, time.perf_counter() - begun)

    def run(
        self,
        interval_s: float,
        stop: threading.Event,
        on_pass: Callable[[HealthPass], None] | None = None,
    ) -> None:
        """Pass after pass, every ``interval_s`` seconds, until ``stop`` is set.

        A failed pass is logged and counted and its transaction rolled back; the next one
        starts from the same moment, so the accounts it missed are scored then.
        """
        every_interval(
            interval_s,
            stop,
            self.run_once,
            on_pass=on_pass,
            expected=(psycopg.Error, OSError, ServiceUnavailableError, CustomersError),
            on_failure=self._failed,
        )

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        log.error("health pass failed (%s): %s", type(exc).__name__, exc)
