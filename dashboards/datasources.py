"""The two data sources every dashboard reads, by the uids the provisioning files give them.

``deploy/grafana/provisioning/datasources/fleetcare.yml`` provisions them in
``docker-compose.yml``; ``fleetcare dashboards push`` creates the same ones through the HTTP
API (:func:`postgres_datasource`, :func:`prometheus_datasource`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "POSTGRES",
    "PROMETHEUS",
    "DataSourceRef",
    "postgres_datasource",
    "prometheus_datasource",
]


@dataclass(frozen=True)
class DataSourceRef:
    """How a panel names its data source: plugin type and uid."""

    type: str
    uid: str
    name: str

    def render(self) -> dict[str, str]:
        return {"type": self.type, "uid": self.uid}


POSTGRES = DataSourceRef(
    "grafana-postgresql-datasource", "fleetcare-postgres", "fleetcare PostgreSQL"
)
PROMETHEUS = DataSourceRef("prometheus", "fleetcare-prometheus", "Prometheus")


def postgres_datasource(database_url: str, *, timescaledb: bool = True) -> dict[str, Any]:
    """The PostgreSQL data source definition for ``database_url`` (password kept secure)."""
    url = urlsplit(database_url)
    if url.scheme not in {"postgresql", "postgres"} or not url.hostname:
        raise ValueError("the database URL must look like postgresql://user:pass@host:port/db")
    database = url.path.lstrip("/") or "fleetcare"
    return {
        "name": POSTGRES.name,
        "uid": POSTGRES.uid,
        "type": POSTGRES.type,
        "access": "proxy",
        "url": f"{url.hostname}:{url.port or 5432}",
        "user": url.username or "fleetcare",
        "jsonData": {
            "database": database,
            "sslmode": "disable",
            "postgresVersion": 1500,
            "timescaledb": timescaledb,
        },
        "secureJsonData": {"password": url.password or ""},
    }


def prometheus_datasource(prometheus_url: str) -> dict[str, Any]:
    """The Prometheus data source definition for ``prometheus_url``."""
    if urlsplit(prometheus_url).scheme not in {"http", "https"}:
        raise ValueError("the Prometheus URL must be http:// or https://")
    return {
        "name": PROMETHEUS.name,
        "uid": PROMETHEUS.uid,
        "type": PROMETHEUS.type,
        "access": "proxy",
        "url": prometheus_url,
        "isDefault": True,
        "jsonData": {"httpMethod": "POST"},
    }
