"""Validation of what the host program records, and its encoding as queue entries.

An entry is stored as the JSON object of the wire entry *without* ``seq`` (the queue index
becomes the ``seq`` when a batch is built, see ``wire.codec.encode_batch``). Everything is
checked here, at the call site, so a bad value raises in the caller's code and nothing that
reaches the queue can be refused later.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from numbers import Real
from typing import NamedTuple

import orjson

from device_sdk._clock import datetime_to_ms, now_ms, uptime_ms
from device_sdk._errors import InvalidInputError, UnknownMetricError
from device_sdk.wire.codec import valid_name
from device_sdk.wire.payloads import MAX_ATTRS, MAX_TEXT, MAX_TIME_MS, Severity

MAX_ENTRY_BYTES = 32 * 1024
"""Largest encoded entry; keeps every entry well inside one batch."""

_SEVERITIES = frozenset(s.value for s in Severity)
_KNOWN_NAMES_LIMIT = 4096

AttrValue = str | int | float | bool


class Reading(NamedTuple):
    """One reading for :meth:`DeviceClient.record_many`: a time and one or many metrics."""

    at: datetime | None
    metrics: Mapping[str, float | None]


def _number(value: object, field: str) -> float:
    """``value`` as a finite float, or raise. ``bool`` is refused (it is not a measurement)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InvalidInputError(field, f"must be a number, got {type(value).__name__}")
    try:
        number = float(value)  # int, float, numpy scalars, Decimal, Fraction, ...
    except OverflowError:
        raise InvalidInputError(field, "too large for a double") from None
    if number - number != 0.0:  # NaN or +-inf
        raise InvalidInputError(field, f"must be finite, got {number}")
    return number


def _text(value: object, field: str, low: int, high: int) -> str:
    if not isinstance(value, str) or not low <= len(value) <= high:
        raise InvalidInputError(field, f"must be a string of {low} to {high} characters")
    return value


def _name(value: object, field: str) -> str:
    if not isinstance(value, str) or not valid_name(value):
        raise InvalidInputError(
            field, f"{value!r:.70} is not a valid name ([A-Za-z_][A-Za-z0-9_.:-]{{0,63}})"
        )
    return value


def _attrs(attrs: Mapping[str, AttrValue] | None, field: str) -> dict[str, AttrValue] | None:
    if attrs is None:
        return None
    if not isinstance(attrs, Mapping):
        raise InvalidInputError(field, "must be a mapping of names to str/int/float/bool")
    if len(attrs) > MAX_ATTRS:
        raise InvalidInputError(field, f"has more than {MAX_ATTRS} keys")
    clean: dict[str, AttrValue] = {}
    for key, value in attrs.items():
        _name(key, f"{field} key")
        where = f"{field}[{key!r}]"
        if isinstance(value, bool):
            clean[key] = value
        elif isinstance(value, str):
            clean[key] = _text(value, where, 0, 256)
        elif isinstance(value, int):
            if not -(2**63) <= value < 2**63:
                raise InvalidInputError(where, "integer out of the 64-bit range")
            clean[key] = value
        else:
            clean[key] = _number(value, where)
    return clean


class EntryEncoder:
    """Validates input and encodes entry bodies; one per client (it caches valid names)."""

    def __init__(self, *, catalogue: frozenset[str] | None, max_metrics: int) -> None:
        self._catalogue = catalogue
        self._max_metrics = max_metrics
        self._known: set[str] = set(catalogue) if catalogue is not None else set()

    def _times(self, at: datetime | None, field: str) -> tuple[int, int | None]:
        """Device time ``t`` as given (or now), and the matching uptime ``u``."""
        up = uptime_ms()
        if at is None:
            return now_ms(), up
        if not isinstance(at, datetime):
            raise InvalidInputError(field, f"must be a datetime, got {type(at).__name__}")
        try:
            t = datetime_to_ms(at)
        except ValueError as exc:
            raise InvalidInputError(field, str(exc)) from None
        if not 0 <= t <= MAX_TIME_MS:
            raise InvalidInputError(field, "must be after 1970-01-01T00:00:00Z")
        u = up - (now_ms() - t)
        return t, (u if u >= 0 else None)

    def _metric_name(self, name: object, field: str) -> None:
        if self._catalogue is not None:
            raise UnknownMetricError(field, f"metric {name!r:.70} is not in the catalogue")
        _name(name, field)
        if len(self._known) < _KNOWN_NAMES_LIMIT:
            self._known.add(name)  # type: ignore[arg-type]

    def reading(
        self,
        metrics: Mapping[str, float | None],
        at: datetime | None,
        field: str = "metrics",
        at_field: str = "at",
    ) -> bytes:
        if not isinstance(metrics, Mapping):
            raise InvalidInputError(field, "must be a mapping of metric names to numbers")
        count = len(metrics)
        if count == 0:
            raise InvalidInputError(field, "a reading needs at least one metric")
        if count > self._max_metrics:
            raise InvalidInputError(
                field, f"{count} metrics exceed the limit of {self._max_metrics}"
            )
        known = self._known
        clean: dict[str, float | None] = {}
        for name, value in metrics.items():
            if name not in known:
                self._metric_name(name, f"{field} key")
            if type(value) is float and value - value == 0.0:
                clean[name] = value
            elif value is None:
                clean[name] = None
            else:
                clean[name] = _number(value, f"{field}[{name!r}]")
        t, u = self._times(at, at_field)
        body = orjson.dumps({"t": t, "u": u, "m": clean} if u is not None else {"t": t, "m": clean})
        if len(body) > MAX_ENTRY_BYTES:
            raise InvalidInputError(field, f"encoded reading exceeds {MAX_ENTRY_BYTES} bytes")
        return body

    def readings(
        self,
        readings: Iterable[Reading | tuple[datetime | None, Mapping[str, float | None]]],
        limit: int,
    ) -> list[bytes]:
        bodies: list[bytes] = []
        for position, item in enumerate(readings):
            if position >= limit:
                raise InvalidInputError("readings", f"more than {limit} readings in one call")
            try:
                at, metrics = item
            except (TypeError, ValueError):
                raise InvalidInputError(
                    f"readings[{position}]", "must be a (datetime | None, metrics) pair"
                ) from None
            where = f"readings[{position}]"
            bodies.append(self.reading(metrics, at, f"{where}.metrics", f"{where}.at"))
        if not bodies:
            raise InvalidInputError("readings", "no readings given")
        return bodies

    def usage(
        self,
        name: str,
        value: float | None,
        *,
        unit: str | None,
        duration_s: float | None,
        attrs: Mapping[str, AttrValue] | None,
        at: datetime | None,
    ) -> bytes:
        doc: dict[str, object] = {}
        t, u = self._times(at, "at")
        doc["t"] = t
        if u is not None:
            doc["u"] = u
        doc["name"] = _name(name, "name")
        if value is not None:
            doc["value"] = _number(value, "value")
        if unit is not None:
            doc["unit"] = _text(unit, "unit", 1, 32)
        if duration_s is not None:
            duration = _number(duration_s, "duration_s")
            if duration < 0:
                raise InvalidInputError("duration_s", "must not be negative")
            doc["dur"] = duration
        clean_attrs = _attrs(attrs, "attrs")
        if clean_attrs:
            doc["attrs"] = clean_attrs
        return orjson.dumps(doc)

    def event(
        self,
        event_type: str,
        *,
        severity: Severity | str,
        code: str | None,
        message: str | None,
        attrs: Mapping[str, AttrValue] | None,
        at: datetime | None,
    ) -> bytes:
        doc: dict[str, object] = {}
        t, u = self._times(at, "at")
        doc["t"] = t
        if u is not None:
            doc["u"] = u
        doc["type"] = _name(event_type, "event_type")
        severity_value = severity.value if isinstance(severity, Severity) else severity
        if severity_value not in _SEVERITIES:
            raise InvalidInputError("severity", f"must be one of {sorted(_SEVERITIES)}")
        doc["severity"] = severity_value
        if code is not None:
            doc["code"] = _text(code, "code", 1, 64)
        if message is not None:
            doc["msg"] = _text(message, "message", 0, MAX_TEXT)
        clean_attrs = _attrs(attrs, "attrs")
        if clean_attrs:
            doc["attrs"] = clean_attrs
        return orjson.dumps(doc)
