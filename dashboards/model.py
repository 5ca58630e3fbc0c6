"""A small typed builder for Grafana dashboards: panels, targets, template variables.

Only what fleetcare's dashboards use, rendered to the JSON model of the Grafana version
pinned in ``docker-compose.yml`` (:data:`SCHEMA_VERSION`). Panels are laid out left to
right in Grafana's 24-column grid, wrapping to a new row when one is full.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from dashboards.datasources import POSTGRES, PROMETHEUS, DataSourceRef

__all__ = [
    "GRAFANA_VERSION",
    "SCHEMA_VERSION",
    "CustomVariable",
    "Dashboard",
    "Panel",
    "PromTarget",
    "QueryVariable",
    "SqlTarget",
    "Target",
    "Variable",
]

#: The Grafana image ``docker-compose.yml`` runs, and the dashboard schema version it writes.
GRAFANA_VERSION = "11.6.0"
SCHEMA_VERSION = 41
GRID_COLUMNS = 24

Json = dict[str, Any]
PanelKind = Literal["timeseries", "table", "stat", "barchart", "piechart", "bargauge"]
SqlFormat = Literal["time_series", "table"]


@dataclass(frozen=True)
class SqlTarget:
    """A raw SQL query for the PostgreSQL data source.

    Attributes:
        sql: the query, with Grafana macros and template variables left in.
        columns: the columns the query returns, in order (checked by the tests).
        format: ``time_series`` (a ``time`` column, then values) or ``table``.
        legend: a display name for a single-value time series (``""``: the column name).
    """

    sql: str
    columns: tuple[str, ...]
    format: SqlFormat = "time_series"
    legend: str = ""

    @property
    def datasource(self) -> DataSourceRef:
        return POSTGRES

    def render(self, ref_id: str) -> Json:
        return {
            "datasource": self.datasource.render(),
            "editorMode": "code",
            "format": self.format,
            "rawQuery": True,
            "rawSql": self.sql.strip(),
            "refId": ref_id,
        }


@dataclass(frozen=True)
class PromTarget:
    """A PromQL query for the Prometheus data source."""

    expr: str
    legend: str = ""
    instant: bool = False

    @property
    def datasource(self) -> DataSourceRef:
        return PROMETHEUS

    def render(self, ref_id: str) -> Json:
        return {
            "datasource": self.datasource.render(),
            "editorMode": "code",
            "expr": self.expr.strip(),
            "instant": self.instant,
            "legendFormat": self.legend or "__auto",
            "range": not self.instant,
            "refId": ref_id,
        }


Target = SqlTarget | PromTarget


@dataclass(frozen=True)
class Panel:
    """One visualisation.

    Attributes:
        title: shown on the panel.
        kind: the panel plugin.
        targets: one or more queries, all of the same data source.
        description: the panel's tooltip: what it shows and where the numbers come from.
        unit: Grafana unit id of the values (``s``, ``percentunit``, ``short``, …).
        width, height: size in grid units (24 columns across).
        min_interval: lower bound of ``$__interval`` (the panel's "min interval").
        right_axis: display names of series drawn on a second y axis (overlays).
        overrides_unit: display name -> unit for series whose unit differs.
    """

    title: str
    kind: PanelKind
    targets: Sequence[Target]
    description: str = ""
    unit: str = "short"
    width: int = 12
    height: int = 8
    min_interval: str = ""
    right_axis: tuple[str, ...] = ()
    overrides_unit: tuple[tuple[str, str], ...] = ()
    stacked: bool = False

    def __post_init__(self) -> None:
        if not self.targets:
            raise ValueError(f"panel {self.title!r} has no query")
        sources = {target.datasource for target in self.targets}
        if len(sources) != 1:
            raise ValueError(f"panel {self.title!r} mixes data sources")
        if not 1 <= self.width <= GRID_COLUMNS or self.height < 2:
            raise ValueError(f"panel {self.title!r} has an impossible size")

    @property
    def datasource(self) -> DataSourceRef:
        return self.targets[0].datasource

    def _overrides(self) -> list[Json]:
        overrides: list[Json] = []
        for name in self.right_axis:
            overrides.append(
                {
                    "matcher": {"id": "byName", "options": name},
                    "properties": [{"id": "custom.axisPlacement", "value": "right"}],
                }
            )
        for name, unit in self.overrides_unit:
            overrides.append(
                {
                    "matcher": {"id": "byName", "options": name},
                    "properties": [{"id": "unit", "value": unit}],
                }
            )
        return overrides

    def _options(self) -> Json:
        legend = {"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": True}
        reduce = {"calcs": ["lastNotNull"], "fields": "", "values": False}
        if self.kind == "timeseries":
            return {"legend": legend, "tooltip": {"mode": "multi", "sort": "none"}}
        if self.kind == "table":
            return {"cellHeight": "sm", "showHeader": True}
        if self.kind == "stat":
            return {
                "colorMode": "value",
                "graphMode": "area",
                "justifyMode": "auto",
                "orientation": "auto",
                "reduceOptions": reduce,
                "textMode": "auto",
            }
        if self.kind == "barchart":
            return {
                "legend": legend,
                "orientation": "auto",
                "showValue": "auto",
                "stacking": "normal" if self.stacked else "none",
                "tooltip": {"mode": "multi", "sort": "none"},
                "xTickLabelRotation": 0,
            }
        if self.kind == "piechart":
            return {
                "legend": legend,
                "pieType": "donut",
                "reduceOptions": {**reduce, "values": True},
                "tooltip": {"mode": "single", "sort": "none"},
            }
        return {"displayMode": "gradient", "orientation": "horizontal", "reduceOptions": reduce}

    def _field_defaults(self) -> Json:
        defaults: Json = {"unit": self.unit}
        if self.kind == "timeseries":
            defaults["custom"] = {
                "drawStyle": "line",
                "fillOpacity": 10,
                "lineWidth": 1,
                "showPoints": "never",
                "spanNulls": False,
                "stacking": {"group": "A", "mode": "normal" if self.stacked else "none"},
            }
        return defaults

    def render(self, panel_id: int, x: int, y: int) -> Json:
        panel: Json = {
            "datasource": self.datasource.render(),
            "description": self.description,
            "fieldConfig": {"defaults": self._field_defaults(), "overrides": self._overrides()},
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
            "id": panel_id,
            "options": self._options(),
            "pluginVersion": GRAFANA_VERSION,
            "targets": [
                target.render(chr(ord("A") + index)) for index, target in enumerate(self.targets)
            ],
            "title": self.title,
            "type": self.kind,
        }
        if self.min_interval:
            panel["interval"] = self.min_interval
        return panel


@dataclass(frozen=True)
class QueryVariable:
    """A template variable whose options come from SQL (``__value``/``__text`` columns)."""

    name: str
    label: str
    sql: str
    multi: bool = False
    include_all: bool = False

    def render(self) -> Json:
        return {
            "current": {},
            "datasource": POSTGRES.render(),
            "definition": self.sql.strip(),
            "hide": 0,
            "includeAll": self.include_all,
            "label": self.label,
            "multi": self.multi,
            "name": self.name,
            "options": [],
            "query": self.sql.strip(),
            "refresh": 1,
            "regex": "",
            "skipUrlSync": False,
            "sort": 0,
            "type": "query",
        }


@dataclass(frozen=True)
class CustomVariable:
    """A template variable with a fixed list of values."""

    name: str
    label: str
    values: tuple[str, ...]
    multi: bool = False
    include_all: bool = False

    def render(self) -> Json:
        options = [
            {"selected": index == 0, "text": value, "value": value}
            for index, value in enumerate(self.values)
        ]
        return {
            "current": {"selected": True, "text": self.values[0], "value": self.values[0]},
            "hide": 0,
            "includeAll": self.include_all,
            "label": self.label,
            "multi": self.multi,
            "name": self.name,
            "options": options,
            "query": ",".join(self.values),
            "skipUrlSync": False,
            "type": "custom",
        }


Variable = QueryVariable | CustomVariable


@dataclass(frozen=True)
class Dashboard:
    """A whole dashboard: identity, default time range, variables and panels."""

    uid: str
    title: str
    description: str
    panels: Sequence[Panel]
    tags: tuple[str, ...] = ("fleetcare",)
    variables: Sequence[Variable] = field(default_factory=tuple)
    time_from: str = "now-24h"
    refresh: str = "1m"

    def __post_init__(self) -> None:
        titles = [panel.title for panel in self.panels]
        if len(set(titles)) != len(titles):
            raise ValueError(f"dashboard {self.uid}: two panels share a title")
        names = [variable.name for variable in self.variables]
        if len(set(names)) != len(names):
            raise ValueError(f"dashboard {self.uid}: two variables share a name")

    def _layout(self) -> list[Json]:
        rendered: list[Json] = []
        x = y = row_height = 0
        for panel_id, panel in enumerate(self.panels, start=1):
            if x + panel.width > GRID_COLUMNS:
                x, y, row_height = 0, y + row_height, 0
            rendered.append(panel.render(panel_id, x, y))
            x += panel.width
            row_height = max(row_height, panel.height)
        return rendered

    def render(self) -> Json:
        """The dashboard JSON model (what Grafana stores and provisions)."""
        return {
            "annotations": {
                "list": [
                    {
                        "builtIn": 1,
                        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                        "enable": True,
                        "hide": True,
                        "iconColor": "rgba(0, 211, 255, 1)",
                        "name": "Annotations & Alerts",
                        "type": "dashboard",
                    }
                ]
            },
            "description": self.description,
            "editable": False,
            "fiscalYearStartMonth": 0,
            "graphTooltip": 1,
            "id": None,
            "links": [],
            "panels": self._layout(),
            "refresh": self.refresh,
            "schemaVersion": SCHEMA_VERSION,
            "tags": list(self.tags),
            "templating": {"list": [variable.render() for variable in self.variables]},
            "time": {"from": self.time_from, "to": "now"},
            "timepicker": {},
            "timezone": "utc",
            "title": self.title,
            "uid": self.uid,
            "version": 1,
            "weekStart": "",
        }
