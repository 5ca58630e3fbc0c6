"""The telemetry table layouts under test: DDL, binary COPY writer, and queries.

Every layout carries the indexes it needs in production: the dedup unique key
(device, seq, time, plus metric for narrow) and an index that serves one
device's time window. Column order inside a unique index does not change what
it enforces, so a layout may order the key to double as the read index.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from psycopg import Copy

from .workload import Model, Workload

Reading = tuple[datetime, int, int, Model, list[float]]
Query = tuple[str, dict[str, Any]]

#: Positions a catalogue-aligned array must cover in production (6-12 metrics a model).
MAX_POSITIONS = 12


def iter_readings(wl: Workload, lo: int, hi: int) -> Iterator[Reading]:
    """Readings ``lo``..``hi`` in arrival order (time step major, device minor)."""
    n_dev = wl.devices
    for i in range(lo, hi):
        t, d = divmod(i, n_dev)
        dev = d + 1
        yield wl.times[t], dev, t + 1, wl.model_of(dev), wl.values[t][d]


def _rollup_wrapper(inner: str, aggregates: Iterable[str]) -> str:
    """Reduce a rollup to one row so the client transfer is not timed.

    Every aggregate of the inner query is consumed, otherwise the planner drops
    unused ones from the subquery and the rollup is not really computed.
    """
    outer = ", ".join(f"sum({a})" for a in aggregates)
    return f"SELECT count(*), {outer} FROM ({inner}) AS q"


class Layout(Protocol):
    name: str
    title: str
    table: str
    columns: str
    types: list[str]
    supports_positional_rollup: bool

    def ddl(self) -> list[str]: ...
    def write(self, copy: Copy, readings: Iterable[Reading]) -> None: ...
    def window_one(
        self, wl: Workload, device: int, metric_pos: int, lo: datetime, hi: datetime
    ) -> Query: ...
    def window_all(self, device: int, lo: datetime, hi: datetime) -> Query: ...
    def rollup(self, lo: datetime, hi: datetime) -> Query: ...
    def rollup_positional(self, lo: datetime, hi: datetime) -> Query: ...


_WINDOW = "device_id = %(d)s AND time BETWEEN %(lo)s AND %(hi)s"
_HOUR = "date_bin('1 hour', time, %(lo)s)"
_RANGE = "time >= %(lo)s AND time < %(hi)s"


@dataclass
class Narrow:
    """One row per metric value."""

    name: str = "narrow"
    title: str = "narrow (unique + (device, metric, time))"
    two_indexes: bool = True
    supports_positional_rollup: bool = False
    columns: str = "time, device_id, seq, metric_id, value"

    def __post_init__(self) -> None:
        self.table = self.name
        self.types = ["timestamptz", "int8", "int8", "int4", "float8"]

    def ddl(self) -> list[str]:
        t = self.table
        stmts = [
            f"CREATE TABLE {t} (time timestamptz NOT NULL, device_id bigint NOT NULL,"
            f" seq bigint NOT NULL, metric_id int NOT NULL, value float8 NOT NULL)"
        ]
        if self.two_indexes:
            stmts.append(f"CREATE UNIQUE INDEX {t}_dedup ON {t} (device_id, seq, metric_id, time)")
            stmts.append(f"CREATE INDEX {t}_window ON {t} (device_id, metric_id, time)")
        else:
            # Same uniqueness as (device_id, seq, metric_id, time), ordered to serve reads.
            stmts.append(f"CREATE UNIQUE INDEX {t}_dedup ON {t} (device_id, metric_id, time, seq)")
        return stmts

    def write(self, copy: Copy, readings: Iterable[Reading]) -> None:
        write_row = copy.write_row
        for ts, dev, seq, model, vals in readings:
            for mid, v in zip(model.metric_ids, vals, strict=True):
                write_row((ts, dev, seq, mid, v))

    def window_one(
        self, wl: Workload, device: int, metric_pos: int, lo: datetime, hi: datetime
    ) -> Query:
        mid = wl.model_of(device).metric_ids[metric_pos]
        sql = (
            f"SELECT time, value FROM {self.table}"
            f" WHERE {_WINDOW} AND metric_id = %(m)s ORDER BY time"
        )
        return sql, {"d": device, "m": mid, "lo": lo, "hi": hi}

    def window_all(self, device: int, lo: datetime, hi: datetime) -> Query:
        sql = (
            f"SELECT time, metric_id, value FROM {self.table}"
            f" WHERE {_WINDOW} ORDER BY metric_id, time"
        )
        return sql, {"d": device, "lo": lo, "hi": hi}

    def rollup(self, lo: datetime, hi: datetime) -> Query:
        inner = (
            f"SELECT device_id, metric_id, {_HOUR} AS bucket, avg(value) AS a, min(value) AS mn,"
            f" max(value) AS mx, count(*) AS n FROM {self.table} WHERE {_RANGE} GROUP BY 1, 2, 3"
        )
        return _rollup_wrapper(inner, ["a", "mn", "mx", "n"]), {"lo": lo, "hi": hi}

    def rollup_positional(self, lo: datetime, hi: datetime) -> Query:
        raise NotImplementedError


class _Wide:
    """Shared parts of the one-row-per-reading layouts."""

    table: str

    def _ddl(self, value_cols: str) -> list[str]:
        t = self.table
        return [
            f"CREATE TABLE {t} (time timestamptz NOT NULL, device_id bigint NOT NULL,"
            f" seq bigint NOT NULL, {value_cols})",
            # Same uniqueness as (device_id, seq, time); ordered so it also serves the window read.
            f"CREATE UNIQUE INDEX {t}_dedup ON {t} (device_id, time, seq)",
        ]

    def _long_rollup(self, lateral: str, metric: str, lo: datetime, hi: datetime) -> Query:
        inner = (
            f"SELECT w.device_id, {metric} AS metric, date_bin('1 hour', w.time, %(lo)s) AS bucket,"
            f" avg(u.v) AS a, min(u.v) AS mn, max(u.v) AS mx, count(*) AS n"
            f" FROM {self.table} AS w CROSS JOIN LATERAL {lateral}"
            f" WHERE w.time >= %(lo)s AND w.time < %(hi)s GROUP BY 1, 2, 3"
        )
        return _rollup_wrapper(inner, ["a", "mn", "mx", "n"]), {"lo": lo, "hi": hi}

    def window_all(self, device: int, lo: datetime, hi: datetime) -> Query:
        sql = f"SELECT time, {self.value_columns} FROM {self.table} WHERE {_WINDOW} ORDER BY time"
        return sql, {"d": device, "lo": lo, "hi": hi}

    @property
    def value_columns(self) -> str:
        return self.columns.removeprefix("time, device_id, seq, ")

    columns: str


@dataclass
class WideArray(_Wide):
    """One row per reading: parallel arrays of metric ids and values (self-describing)."""

    name: str = "wide_array"
    title: str = "wide-array (int2[] ids + float8[] values)"
    supports_positional_rollup: bool = False
    columns: str = "time, device_id, seq, metric_ids, vals"

    def __post_init__(self) -> None:
        self.table = self.name
        self.types = ["timestamptz", "int8", "int8", "int2[]", "float8[]"]

    def ddl(self) -> list[str]:
        return self._ddl("metric_ids int2[] NOT NULL, vals float8[] NOT NULL")

    def write(self, copy: Copy, readings: Iterable[Reading]) -> None:
        write_row = copy.write_row
        ids: dict[int, list[int]] = {}
        for ts, dev, seq, model, vals in readings:
            mids = ids.get(model.model_id)
            if mids is None:
                mids = ids[model.model_id] = list(model.metric_ids)
            write_row((ts, dev, seq, mids, vals))

    def window_one(
        self, wl: Workload, device: int, metric_pos: int, lo: datetime, hi: datetime
    ) -> Query:
        mid = wl.model_of(device).metric_ids[metric_pos]
        sql = (
            f"SELECT time, vals[array_position(metric_ids, %(m)s::int2)] FROM {self.table}"
            f" WHERE {_WINDOW} ORDER BY time"
        )
        return sql, {"d": device, "m": mid, "lo": lo, "hi": hi}

    def rollup(self, lo: datetime, hi: datetime) -> Query:
        return self._long_rollup(
            "unnest(w.metric_ids, w.vals) AS u(metric_id, v)", "u.metric_id", lo, hi
        )

    def rollup_positional(self, lo: datetime, hi: datetime) -> Query:
        raise NotImplementedError


@dataclass
class WideArrayCatalogue(_Wide):
    """One row per reading: float8[] aligned to the model's metric catalogue (NULL = missing)."""

    name: str = "wide_array_cat"
    title: str = "wide-array, catalogue-aligned float8[]"
    supports_positional_rollup: bool = True
    columns: str = "time, device_id, seq, vals"

    def __post_init__(self) -> None:
        self.table = self.name
        self.types = ["timestamptz", "int8", "int8", "float8[]"]

    def ddl(self) -> list[str]:
        return self._ddl("vals float8[] NOT NULL")

    def write(self, copy: Copy, readings: Iterable[Reading]) -> None:
        # Values already come in the model's catalogue order; a gateway maps name -> position.
        write_row = copy.write_row
        for ts, dev, seq, _model, vals in readings:
            write_row((ts, dev, seq, vals))

    def window_one(
        self, wl: Workload, device: int, metric_pos: int, lo: datetime, hi: datetime
    ) -> Query:
        # The application resolves (model, metric) -> position from the cached catalogue.
        sql = f"SELECT time, vals[%(p)s] FROM {self.table} WHERE {_WINDOW} ORDER BY time"
        return sql, {"d": device, "p": metric_pos + 1, "lo": lo, "hi": hi}

    def rollup(self, lo: datetime, hi: datetime) -> Query:
        return self._long_rollup("unnest(w.vals) WITH ORDINALITY AS u(v, pos)", "u.pos", lo, hi)

    def rollup_positional(self, lo: datetime, hi: datetime) -> Query:
        """No set-returning function: one row per device-hour, avg/min/max per position."""
        aggs, names = [], []
        for p in range(1, MAX_POSITIONS + 1):
            aggs.append(f"avg(vals[{p}]) AS a{p}, min(vals[{p}]) AS mn{p}, max(vals[{p}]) AS mx{p}")
            names += [f"a{p}", f"mn{p}", f"mx{p}"]
        inner = (
            f"SELECT device_id, {_HOUR} AS bucket, count(*) AS n, {', '.join(aggs)}"
            f" FROM {self.table} WHERE {_RANGE} GROUP BY 1, 2"
        )
        return _rollup_wrapper(inner, ["n", *names]), {"lo": lo, "hi": hi}


@dataclass
class WideJsonb(_Wide):
    """One row per reading: {"metric_name": value, ...} as jsonb."""

    name: str = "wide_jsonb"
    title: str = "wide-jsonb"
    supports_positional_rollup: bool = False
    columns: str = "time, device_id, seq, vals"

    def __post_init__(self) -> None:
        self.table = self.name
        self.types = ["timestamptz", "int8", "int8", "jsonb"]

    def ddl(self) -> list[str]:
        return self._ddl("vals jsonb NOT NULL")

    def write(self, copy: Copy, readings: Iterable[Reading]) -> None:
        write_row = copy.write_row
        for ts, dev, seq, model, vals in readings:
            write_row((ts, dev, seq, dict(zip(model.names, vals, strict=True))))

    def window_one(
        self, wl: Workload, device: int, metric_pos: int, lo: datetime, hi: datetime
    ) -> Query:
        key = wl.model_of(device).names[metric_pos]
        sql = (
            f"SELECT time, (vals -> %(k)s)::float8 FROM {self.table} WHERE {_WINDOW} ORDER BY time"
        )
        return sql, {"d": device, "k": key, "lo": lo, "hi": hi}

    def rollup(self, lo: datetime, hi: datetime) -> Query:
        # Cast each value once (jsonb numeric -> float8 goes through text).
        lateral = "(SELECT e.key AS metric, e.value::float8 AS v FROM jsonb_each(w.vals) AS e) AS u"
        return self._long_rollup(lateral, "u.metric", lo, hi)

    def rollup_positional(self, lo: datetime, hi: datetime) -> Query:
        raise NotImplementedError


def all_layouts() -> dict[str, Layout]:
    layouts: list[Layout] = [
        Narrow(),
        Narrow(
            name="narrow_1idx",
            title="narrow, one unique index (device, metric, time, seq)",
            two_indexes=False,
        ),
        WideArray(),
        WideArrayCatalogue(),
        WideJsonb(),
    ]
    return {lay.name: lay for lay in layouts}
