"""docker-compose.yml (there is no Docker engine here): its structure and its agreement with the code."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic_settings import BaseSettings

from backend.settings import BackendSettings
from fleetcare.cli.config import reference_sections
from fleetcare.config import ENV_PREFIX, load_settings
from tests.foundation.conftest import settings_env_names

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
FLEETCARE_SERVICES = {
    "api", "ingest", "score", "care", "health", "maintain", "downlink", "gateway", "simulator",
}  # fmt: skip
# The services that serve Prometheus /metrics (the API, care, gateway, simulator do not).
METRICS_SERVICES = {"ingest", "score"}
INFRASTRUCTURE = {"timescaledb", "mqtt", "prometheus", "grafana"}
# What the code and docs expect on the host: PostgreSQL, MQTT, Grafana, Prometheus, the API.
EXPECTED_HOST_PORTS = {
    "timescaledb": 5432,
    "mqtt": 1883,
    "grafana": 3000,
    "prometheus": 9090,
    "api": 8000,
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(key): str(value) for key, value in env.items()}


def _interpolate(value: str) -> str:
    """Resolve ``${VAR:-default}`` the way compose does with VAR unset."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def _host_ports(service: dict[str, Any]) -> dict[int, int]:
    """Published ports as ``{host: container}``."""
    mapping = {}
    for entry in service.get("ports", []):
        host, container = str(entry).split(":")[-2:]
        mapping[int(host)] = int(container.split("/")[0])
    return mapping


def _served_ports(service: dict[str, Any]) -> set[int]:
    return set(_host_ports(service).values()) | {int(port) for port in service.get("expose", [])}


def test_all_services_are_there(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == FLEETCARE_SERVICES | INFRASTRUCTURE


def test_every_service_has_an_image_and_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        assert service.get("image"), f"{name} has no image"
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in {"CMD", "CMD-SHELL"}, f"{name} has no healthcheck"
        assert not service["healthcheck"].get("disable"), name


def test_fleetcare_services_are_built_from_the_dockerfile(
    services: dict[str, dict[str, Any]],
) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.MULTILINE)
    users = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1] not in {"root", "0"}, "the image must run as a non-root user"
    for name in FLEETCARE_SERVICES:
        service = services[name]
        assert service.get("build") == ".", name
        command = service["command"]
        assert "fleetcare" in " ".join(command), name


def test_fleetcare_env_names_are_real_settings(services: dict[str, dict[str, Any]]) -> None:
    known = set(settings_env_names()) | {
        info.alias or f"{cls.model_config.get('env_prefix') or ENV_PREFIX}{field}".upper()
        for _, cls in reference_sections()
        if issubclass(cls, BaseSettings)
        for field, info in cls.model_fields.items()
    }
    for name, service in services.items():
        for key in _env(service):
            if key.startswith("FLEETCARE_"):
                assert key in known, f"{name}: {key} is not a field of any settings class"


def test_fleetcare_services_get_valid_settings(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in FLEETCARE_SERVICES:
        env = {key: _interpolate(value) for key, value in _env(services[name]).items()}
        assert {"FLEETCARE_DATABASE_URL", "FLEETCARE_BROKER_URL"} <= set(env), name
        for key in settings_env_names():
            monkeypatch.delenv(key, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        settings = load_settings(BackendSettings)  # raises ConfigError on a bad value
        assert settings.database_url and settings.broker_url


def test_service_urls_point_at_services_that_serve_them(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in FLEETCARE_SERVICES:
        env = {key: _interpolate(value) for key, value in _env(services[name]).items()}
        for key in ("FLEETCARE_DATABASE_URL", "FLEETCARE_BROKER_URL"):
            url = urlsplit(env[key])
            assert url.hostname in services, f"{name}: {key} names unknown host {url.hostname}"
            assert url.port in _served_ports(services[url.hostname]), f"{name}: {key}"
            assert url.hostname in services[name].get("depends_on", {}), (
                f"{name} must wait for {url.hostname}"
            )


def test_the_ports_the_code_expects_are_published(services: dict[str, dict[str, Any]]) -> None:
    for name, port in EXPECTED_HOST_PORTS.items():
        assert _host_ports(services[name]).get(port) == port, f"{name} must publish {port}"
    api_env = _env(services["api"])
    assert int(api_env["FLEETCARE_API_PORT"]) == 8000
    assert api_env["FLEETCARE_API_HOST"] == "0.0.0.0"
    assert BackendSettings.model_fields["api_port"].default == 8000


def test_depends_on_names_real_services(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for dependency, spec in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if spec.get("condition") == "service_healthy":
                assert "healthcheck" in services[dependency]


def test_mounted_files_exist(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("./deploy/"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_mosquitto_queues_deliberately_high_with_persistence() -> None:
    settings = dict(
        line.split(None, 1)
        for line in (ROOT / "deploy/mosquitto/mosquitto.conf").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    assert int(settings["max_queued_messages"]) >= 100_000, "default 1000 drops silently"
    assert settings["persistence"] == "true"
    assert settings["listener"].split()[0] == "1883"


def test_prometheus_scrapes_every_fleetcare_service(services: dict[str, dict[str, Any]]) -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    scraped = {target.split(":")[0] for target in targets}
    assert scraped >= METRICS_SERVICES
    for target in targets:
        host, port = target.split(":")
        if host in services:
            assert int(port) in _served_ports(services[host]), f"{target} is not served"


def test_grafana_provisions_both_datasources_and_the_dashboards(
    services: dict[str, dict[str, Any]],
) -> None:
    provisioning = ROOT / "deploy/grafana/provisioning"
    sources = yaml.safe_load((provisioning / "datasources/fleetcare.yml").read_text())[
        "datasources"
    ]
    types = {source["type"] for source in sources}
    assert "prometheus" in types
    assert types & {"postgres", "grafana-postgresql-datasource"}
    for source in sources:
        host = source["url"].split("//")[-1].split(":")[0]
        assert host in services, f"datasource {source['name']} points at unknown {host}"
    providers = yaml.safe_load((provisioning / "dashboards/fleetcare.yml").read_text())["providers"]
    path = providers[0]["options"]["path"]
    mounts = [str(volume) for volume in services["grafana"]["volumes"]]
    assert any(m.startswith("./dashboards/generated:" + path) for m in mounts)


def test_the_gateway_config_file_is_valid_toml() -> None:
    tomllib.loads((ROOT / "deploy/gateway/gateway.toml").read_text())
