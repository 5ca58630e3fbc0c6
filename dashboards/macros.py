"""Grafana's expansion of a PostgreSQL panel query, reproduced to run panels outside Grafana.

Two stages, as in Grafana 11:

1. The front end interpolates template variables (``$var``, ``${var}``, ``${var:format}``,
   ``[[var]]``) with the SQL data source's rules: a multi-value or include-all variable
   becomes a list of quoted literals (``'a','b'``), a single value is inserted as is with its
   quotes doubled. Built-in ``$__interval``, ``$__interval_ms``, ``$__range*``, ``$__from``
   and ``$__to`` are scoped variables of the query.
2. The back end (``pkg/tsdb/grafana-postgresql-datasource/macros.go``) replaces the macros:
   ``$__time``, ``$__timeEpoch``, ``$__timeFilter``, ``$__timeFrom``, ``$__timeTo``,
   ``$__timeGroup`` (``floor(extract(epoch from col)/N)*N``, or ``time_bucket('Ns',col)``
   when the data source has the TimescaleDB option; a ``$__timeGroup(…)`` directly followed
   by a comma gets ``AS "time"`` as in Grafana since 5.3), ``$__timeGroupAlias``,
   ``$__unixEpochFilter``, ``$__unixEpochNanoFilter``, ``$__unixEpochFrom``/``To``,
   ``$__unixEpochNanoFrom``/``To``, ``$__unixEpochGroup`` and ``$__unixEpochGroupAlias``.
   Times are written in RFC 3339 (UTC, trailing zeros of the fraction dropped) and numbers
   of seconds with Go's ``%v`` (``86400``, ``2.592e+06``).

``$__interval`` is computed like Grafana's ``rangeutil.calculateInterval``: the range over
the panel's maximum data points, rounded by ``roundInterval``, raised to the panel's
minimum interval.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

__all__ = [
    "MacroError",
    "QueryContext",
    "TemplateValue",
    "calculate_interval",
    "expand",
    "format_seconds",
    "interpolate_variables",
    "parse_interval",
    "replace_macros",
    "rfc3339",
    "round_interval_ms",
    "seconds_to_hms",
    "strip_comments",
]


class MacroError(ValueError):
    """A macro or variable that Grafana would refuse (the panel shows this error)."""


@dataclass(frozen=True)
class TemplateValue:
    """The current value of a template variable as the dashboard holds it."""

    values: tuple[str, ...]
    multi: bool = False
    include_all: bool = False

    @classmethod
    def single(cls, value: str) -> TemplateValue:
        return cls((value,))

    @classmethod
    def many(cls, values: Sequence[str], *, include_all: bool = False) -> TemplateValue:
        return cls(tuple(values), multi=True, include_all=include_all)


@dataclass(frozen=True)
class QueryContext:
    """What Grafana knows when it runs a panel: time range, width, variables, data source."""

    start: datetime
    end: datetime
    variables: Mapping[str, TemplateValue] = field(default_factory=dict)
    max_data_points: int = 1000
    min_interval: str = ""
    timescaledb: bool = False

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise MacroError("the time range must be timezone-aware")
        if self.end < self.start:
            raise MacroError("the time range ends before it starts")


# -- intervals -------------------------------------------------------------------------

_ROUND_STEPS_MS = (
    (15, 10),
    (35, 20),
    (75, 50),
    (150, 100),
    (350, 200),
    (750, 500),
    (1_500, 1_000),
    (3_500, 2_000),
    (7_500, 5_000),
    (12_500, 10_000),
    (17_500, 15_000),
    (25_000, 20_000),
    (45_000, 30_000),
    (90_000, 60_000),
    (210_000, 120_000),
    (450_000, 300_000),
    (750_000, 600_000),
    (1_050_000, 900_000),
    (1_500_000, 1_200_000),
    (2_700_000, 1_800_000),
    (5_400_000, 3_600_000),
    (9_000_000, 7_200_000),
    (16_200_000, 10_800_000),
    (32_400_000, 21_600_000),
    (86_400_000, 43_200_000),
    (604_800_000, 86_400_000),
    (1_814_400_000, 604_800_000),
    (3_628_800_000, 2_592_000_000),
)
_YEAR_MS = 31_536_000_000


def round_interval_ms(interval_ms: float) -> int:
    """Grafana's ``roundInterval``: a raw interval snapped to a readable one."""
    for upper, rounded in _ROUND_STEPS_MS:
        if interval_ms < upper:
            return rounded
    return _YEAR_MS


def seconds_to_hms(seconds: float) -> str:
    """Grafana's ``secondsToHms``: the largest whole unit (``1y``, ``7d``, ``2h``, ``30s``)."""
    years = int(seconds // 31_536_000)
    if years:
        return f"{years}y"
    rest = seconds % 31_536_000
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        whole = int(rest // size)
        if whole:
            return f"{whole}{unit}"
        rest %= size
    milliseconds = int(seconds * 1000)
    return f"{milliseconds}ms" if milliseconds else "less than a millisecond"


_INTERVAL = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)$")
_UNIT_SECONDS = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3_600,
    "d": 86_400,
    "w": 604_800,
    "y": 31_536_000,
}


def parse_interval(text: str) -> timedelta:
    """``gtime.ParseInterval`` for the units dashboards use (``500ms``, ``1m``, ``7d``, ``1w``)."""
    match = _INTERVAL.match(text.strip().strip("'\""))
    if not match:
        raise MacroError(f"error parsing interval {text}")
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def calculate_interval(context: QueryContext) -> tuple[str, int]:
    """``$__interval`` and ``$__interval_ms`` for a query."""
    range_ms = (context.end - context.start).total_seconds() * 1000
    interval_ms = round_interval_ms(range_ms / max(context.max_data_points, 1))
    if context.min_interval:
        low = round(parse_interval(context.min_interval).total_seconds() * 1000)
        interval_ms = max(interval_ms, low)
    return seconds_to_hms(interval_ms / 1000), interval_ms


# -- Go formatting -----------------------------------------------------------------------


def format_seconds(value: float) -> str:
    """A float64 as Go's ``%v`` writes it (shortest digits; exponent from 1e+06 up)."""
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    digits_tuple = Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(str(d) for d in digits_tuple.digits)
    exponent = int(digits_tuple.exponent)
    point = len(digits) + exponent  # position of the decimal point
    exp = point - 1
    if exp < -4 or exp >= 6:  # Go: shortest precision decides with precision 6
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'+' if exp >= 0 else '-'}{abs(exp):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"


def rfc3339(moment: datetime) -> str:
    """Go's ``time.RFC3339Nano`` of ``moment`` in UTC."""
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += ("." + f"{utc.microsecond:06d}").rstrip("0")
    return text + "Z"


# -- stage 1: template variables ------------------------------------------------------------

_VARIABLE = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}"
)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _format(value: TemplateValue, fmt: str | None, name: str) -> str:
    values = value.values
    if fmt is None:
        if value.multi or value.include_all or len(values) != 1:
            return ",".join(_quote(v) for v in values)
        return values[0].replace("'", "''")
    if fmt in {"csv", "raw"}:
        return ",".join(values)
    if fmt == "sqlstring":
        return ",".join(_quote(v) for v in values)
    if fmt == "singlequote":
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)
    if fmt == "doublequote":
        return ",".join('"' + v.replace('"', '\\"') + '"' for v in values)
    if fmt == "pipe":
        return "|".join(values)
    raise MacroError(f"variable {name}: format {fmt!r} is not supported here")


def interpolate_variables(sql: str, context: QueryContext) -> str:
    """Stage 1: dashboard and built-in variables (unknown names are left, like Grafana)."""
    interval, interval_ms = calculate_interval(context)
    range_s = (context.end - context.start).total_seconds()
    builtins = {
        "__interval": interval,
        "__interval_ms": str(interval_ms),
        "__range": seconds_to_hms(range_s),
        "__range_s": str(round(range_s)),
        "__range_ms": str(round(range_s * 1000)),
        "__from": str(round(context.start.timestamp() * 1000)),
        "__to": str(round(context.end.timestamp() * 1000)),
    }

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        fmt = match.group(3) or match.group(6)
        if name in builtins and fmt is None:
            return builtins[name]
        if name in context.variables:
            return _format(context.variables[name], fmt, name)
        return match.group(0)

    return _VARIABLE.sub(replace, sql)


# -- stage 2: back-end macros --------------------------------------------------------------

_MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)")
_COMMENT_OR_QUOTED = re.compile(
    r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?(?:\*/|$)", re.DOTALL
)


def strip_comments(sql: str) -> str:
    """Drop ``--`` and ``/* */`` comments outside quoted text (macros in comments stay out)."""
    return _COMMENT_OR_QUOTED.sub(
        lambda m: "" if m.group(0).startswith(("--", "/*")) else m.group(0), sql
    )


def _args(raw: str) -> list[str]:
    params = raw.strip().replace("\n", "")
    if not params:
        return [""]
    return [arg.strip() for arg in next(csv.reader([params], skipinitialspace=True))]


def _macro(name: str, args: list[str], context: QueryContext) -> str:
    start, end = context.start.astimezone(UTC), context.end.astimezone(UTC)

    def need(count: int) -> None:
        if len(args) < count:
            raise MacroError(f"missing time column argument for macro {name}")

    if name == "__time":
        need(1)
        return f'{args[0]} AS "time"'
    if name == "__timeEpoch":
        need(1)
        return f'extract(epoch from {args[0]}) as "time"'
    if name == "__timeFilter":
        need(1)
        return f"{args[0]} BETWEEN '{rfc3339(start)}' AND '{rfc3339(end)}'"
    if name == "__timeFrom":
        return f"'{rfc3339(start)}'"
    if name == "__timeTo":
        return f"'{rfc3339(end)}'"
    if name in {"__timeGroup", "__timeGroupAlias"}:
        if len(args) < 2:
            raise MacroError(f"macro {name} needs time column and interval and optional fill value")
        interval = parse_interval(args[1].strip("'"))
        if interval.total_seconds() <= 0:
            raise MacroError(f"interval must be positive, got {args[1]}")
        if context.timescaledb:
            group = f"time_bucket('{interval.total_seconds():.3f}s',{args[0]})"
        else:
            seconds = format_seconds(interval.total_seconds())
            group = f"floor(extract(epoch from {args[0]})/{seconds})*{seconds}"
        return group + (' AS "time"' if name == "__timeGroupAlias" else "")
    if name == "__unixEpochFilter":
        need(1)
        lo, hi = int(start.timestamp()), int(end.timestamp())
        return f"{args[0]} >= {lo} AND {args[0]} <= {hi}"
    if name == "__unixEpochNanoFilter":
        need(1)
        lo, hi = int(start.timestamp() * 1e9), int(end.timestamp() * 1e9)
        return f"{args[0]} >= {lo} AND {args[0]} <= {hi}"
    if name == "__unixEpochNanoFrom":
        return str(int(start.timestamp() * 1e9))
    if name == "__unixEpochNanoTo":
        return str(int(end.timestamp() * 1e9))
    if name in {"__unixEpochGroup", "__unixEpochGroupAlias"}:
        if len(args) < 2:
            raise MacroError(f"macro {name} needs time column and interval and optional fill")
        interval = parse_interval(args[1].strip("'"))
        if interval.total_seconds() <= 0:
            raise MacroError(f"interval must be positive, got {args[1]}")
        seconds = format_seconds(interval.total_seconds())
        group = f"floor(({args[0]})/{seconds})*{seconds}"
        return group + (' AS "time"' if name == "__unixEpochGroupAlias" else "")
    raise MacroError(f'unknown macro "{name}"')


def replace_macros(sql: str, context: QueryContext) -> str:
    """Stage 2: ``$__interval*`` and ``$__unixEpochFrom/To()`` text, then the macros."""
    interval, interval_ms = calculate_interval(context)
    sql = sql.replace("$__interval_ms", str(interval_ms)).replace("$__interval", interval)
    sql = sql.replace("$__unixEpochFrom()", str(int(context.start.timestamp())))
    sql = sql.replace("$__unixEpochTo()", str(int(context.end.timestamp())))
    sql = strip_comments(sql)

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "__timeGroup" and sql[match.end() : match.end() + 1] == ",":
            name = "__timeGroupAlias"  # pre-5.3 dashboards: Grafana adds the alias
        return _macro(name, _args(match.group(2)), context)

    return _MACRO.sub(replace, sql)


def expand(sql: str, context: QueryContext) -> str:
    """The SQL Grafana sends to PostgreSQL for a panel query (both stages)."""
    expanded = replace_macros(interpolate_variables(sql, context), context)
    leftover = re.search(r"\$\{?\w+", expanded)
    if leftover:
        raise MacroError(f"unresolved variable or macro {leftover.group(0)!r}")
    return expanded
