"""Per-metric deadband and downsampling, with a stated error bound.

For each (device, metric) with a :class:`~gateway.config.BandwidthRule`, a value is sent
when it is the first, when the value changes between a number and ``null``, or when

* ``deadband`` is set and ``|x - last_sent| > deadband``, or
* ``interval_s`` is set and at least ``interval_s`` passed since the last value sent.

Reconstruction: hold the last value sent until the next one (sample and hold).

Error bound, for every original sample ``x_i`` and its reconstruction ``x̂_i``:

* with ``deadband`` (with or without ``interval_s``): ``|x_i − x̂_i| ≤ deadband``, always;
  ``interval_s`` then acts as a heartbeat, so a still metric is still seen;
* with ``interval_s`` alone (plain downsampling): ``|x_i − x̂_i| ≤ L · interval_s`` for a
  signal that changes by at most ``L`` per second; nothing bounds it for arbitrary jumps.

Metrics without a rule pass unchanged. A reading whose metrics are all suppressed is not
queued at all (its device's sequence then has a gap, which the protocol allows).
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.config import BandwidthRule

__all__ = ["BandwidthFilter"]


class BandwidthFilter:
    def __init__(self, rules: Mapping[str, BandwidthRule], max_series: int = 1_000_000) -> None:
        self.rules = dict(rules)
        self.max_series = max_series
        self._last: dict[tuple[str, str], tuple[float | None, int]] = {}
        self.suppressed = 0

    @property
    def active(self) -> bool:
        return bool(self.rules)

    def apply(
        self, device: str, t_ms: int, metrics: Mapping[str, float | None]
    ) -> dict[str, float | None]:
        """The metrics of one reading that are to be sent (possibly none)."""
        kept: dict[str, float | None] = {}
        for name, value in metrics.items():
            rule = self.rules.get(name)
            if rule is None or self._send(rule, (device, name), t_ms, value):
                kept[name] = value
            else:
                self.suppressed += 1
        return kept

    def _send(
        self, rule: BandwidthRule, key: tuple[str, str], t_ms: int, value: float | None
    ) -> bool:
        last = self._last.get(key)
        send = last is None
        if last is not None:
            last_value, last_t = last
            if (value is None) != (last_value is None) or (
                rule.interval_s is not None and t_ms - last_t >= rule.interval_s * 1000
            ):
                send = True
            elif value is not None and last_value is not None and rule.deadband is not None:
                send = abs(value - last_value) > rule.deadband
            elif value is None:
                send = False
        if send:
            if last is None and len(self._last) >= self.max_series:
                self._last.clear()  # bounded: forgetting only makes the next value go out
            self._last[key] = (value, t_ms)
        return send
