"""The metric names a PromQL expression reads (enough of PromQL for dashboard queries)."""

from __future__ import annotations

import re

__all__ = ["metric_names", "series_family"]

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(
    r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", re.IGNORECASE
)
_IDENTIFIER = re.compile(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?")
_KEYWORDS = {
    "and", "or", "unless", "offset", "bool", "inf", "nan", "atan2", "group_left", "group_right"
}  # fmt: skip
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def metric_names(expr: str) -> set[str]:
    """Every metric selector of ``expr`` (functions, aggregations, labels and numbers excluded).

    >>> sorted(metric_names('histogram_quantile(0.95, sum by (le) (rate(x_bucket[5m])))'))
    ['x_bucket']
    """
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def series_family(name: str, histograms: set[str]) -> str:
    """The metric family of a series name: ``x_bucket`` of histogram ``x`` is ``x``."""
    for suffix in _HISTOGRAM_SUFFIXES:
        base = name.removesuffix(suffix)
        if base != name and base in histograms:
            return base
    return name
