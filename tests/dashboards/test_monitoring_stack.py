"""docker-compose.yml's Prometheus and Grafana agree with the dashboards and the services."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards.datasources import POSTGRES, PROMETHEUS, postgres_datasource
from dashboards.push import FOLDER_TITLE

ROOT = Path(__file__).resolve().parents[2]
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("service", "port_variable"),
    [("ingest", "FLEETCARE_INGEST_METRICS_PORT"), ("score", "FLEETCARE_SCORING_METRICS_PORT")],
)
def test_prometheus_scrapes_the_port_each_service_serves(
    services: dict[str, Any], service: str, port_variable: str
) -> None:
    port = str(services[service]["environment"][port_variable])
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    assert f"{service}:{port}" in targets
    assert port in {str(p) for p in services[service]["expose"]}


def test_grafana_waits_for_its_data_sources(services: dict[str, Any]) -> None:
    depends = services["grafana"]["depends_on"]
    for name in ("prometheus", "timescaledb"):
        assert depends[name]["condition"] == "service_healthy"


def test_provisioned_data_sources_match_what_push_creates(services: dict[str, Any]) -> None:
    sources = {
        s["uid"]: s
        for s in yaml.safe_load((PROVISIONING / "datasources/fleetcare.yml").read_text())[
            "datasources"
        ]
    }
    provisioned = sources[POSTGRES.uid]
    pushed = postgres_datasource("postgresql://fleetcare:x@timescaledb:5432/fleetcare")
    for key in ("name", "type", "url", "user"):
        assert provisioned[key] == pushed[key], key
    assert provisioned["jsonData"]["database"] == pushed["jsonData"]["database"]
    # $__timeGroup becomes time_bucket() only where the database has TimescaleDB.
    timescale_image = services["timescaledb"]["image"].startswith("timescale/timescaledb")
    assert provisioned["jsonData"]["timescaledb"] is timescale_image
    assert sources[PROMETHEUS.uid]["url"] == "http://prometheus:9090"


def test_provisioned_dashboards_land_in_the_folder_push_uses() -> None:
    provider = yaml.safe_load((PROVISIONING / "dashboards/fleetcare.yml").read_text())["providers"][
        0
    ]
    assert provider["folder"] == FOLDER_TITLE
    assert provider["type"] == "file"
    assert provider["allowUiUpdates"] is False
