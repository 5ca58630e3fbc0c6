"""Partitions ahead of writes: the ingest asks the dialect only when a batch leaves known ground.

On plain PostgreSQL a row needs a partition for its time; the migration and the maintenance
pass prepare them around now, and :meth:`PartitionGuard.ensure` creates any others a batch
needs (readings from a device back from weeks offline) before the batch's transaction, in a
short transaction of its own. On TimescaleDB the dialect's ``ensure_partitions`` is a no-op.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from backend.storage.dialect import Connection, Dialect

_AHEAD = timedelta(days=7)
_BEHIND = timedelta(days=1)


class PartitionGuard:
    """Remembers which time range of each table is known to have partitions."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._covered: dict[str, tuple[datetime, datetime]] = {}
        self.calls = 0

    def ensure(self, conn: Connection, table: str, start: datetime, end: datetime) -> None:
        """Make sure rows of ``table`` in ``[start, end]`` can be written."""
        known = self._covered.get(table)
        if known is not None and known[0] <= start and end <= known[1]:
            return
        now = datetime.now(UTC)
        lo = min(start, now - _BEHIND)
        hi = max(end, now + _AHEAD)
        if known is not None and known[0] <= hi and lo <= known[1]:
            lo, hi = min(lo, known[0]), max(hi, known[1])
        with conn.transaction():
            self.dialect.ensure_partitions(conn, table, lo, hi)
        self.calls += 1
        self._covered[table] = (lo, hi)

    def forget(self) -> None:
        """Forget everything (after a "no partition" error: retention may have dropped one)."""
        self._covered.clear()
