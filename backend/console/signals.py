"""How the console names a sensor signal, and says what it did to a prediction.

Metric names carry their unit (``vibration_rms_mm_s`` in mm/s, ``flow_m3h`` in m³/h); a
reader gets ``vibration rms (mm/s)``. A prediction's contributions are stored as
:class:`models.explain.Contribution` (``signal``, ``effect`` on the failure risk, 0-1);
older or foreign scorers may store other keys, which are shown as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_NAME_KEYS = ("signal", "metric", "feature", "name")
_FIGURE_KEYS = ("contribution", "weight", "importance", "shap", "value")
_TEXT_KEYS = ("direction", "detail", "description")


def signal_of(item: Any) -> str | None:
    """The signal (metric) a contribution is about: the part of its name before ``__``."""
    name = (
        item
        if not isinstance(item, dict)
        else next((item[key] for key in _NAME_KEYS if item.get(key)), None)
    )
    return name.split("__", 1)[0] if isinstance(name, str) and name else None


def signal_name(metric: str, unit: str = "") -> str:
    """``vibration_rms_mm_s`` (unit ``mm/s``) as ``vibration rms``: words, unit suffix off."""
    base = metric.split("__", 1)[0]
    for suffix in _unit_suffixes(unit):
        if base.lower().endswith(f"_{suffix}") and len(base) > len(suffix) + 1:
            base = base[: -len(suffix) - 1]
            break
    return base.replace("_", " ")


def signal_label(metric: str, unit: str = "") -> str:
    """``vibration rms (mm/s)``; the bare words when the unit is unknown."""
    name = signal_name(metric, unit)
    return f"{name} ({unit})" if unit else name


def describe_contribution(item: Any, units: Mapping[str, str]) -> str:
    """One line of a prediction's reasons, e.g. ``inlet filter dp (mbar): raises the
    failure risk by 31 percentage points``; ``units`` maps metric names to units."""
    if not isinstance(item, dict):
        return str(item)
    signal = signal_of(item)
    label = "?" if signal is None else signal_label(signal, units.get(signal, ""))
    effect = item.get("effect")
    if isinstance(effect, int | float) and not isinstance(effect, bool):
        points = abs(effect) * 100
        if points < 0.5:
            return f"{label}: barely moves the failure risk"
        verb = "raises" if effect > 0 else "lowers"
        unit = "percentage point" if round(points) == 1 else "percentage points"
        return f"{label}: {verb} the failure risk by {points:.0f} {unit}"
    parts = [label, *(str(item[key]) for key in _TEXT_KEYS if item.get(key))]
    for key in _FIGURE_KEYS:
        value = item.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            parts.append(f"{key} {value:+.3g}")
            break
    return ", ".join(parts)


def _unit_suffixes(unit: str) -> tuple[str, ...]:
    """How a unit is spelled at the end of a metric name: ``mm/s`` -> ``mm_s``, ``m³/h``
    -> ``m3h``, ``°C`` -> ``c``, ``%`` -> ``pct``."""
    if not unit:
        return ()
    slug = (
        unit.strip().lower().replace("³", "3").replace("²", "2").replace("°", "")
        .replace("%", "pct").replace(" ", "_")
    )  # fmt: skip
    return tuple(dict.fromkeys((slug.replace("/", "_"), slug.replace("/", ""))))
