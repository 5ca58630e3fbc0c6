"""docker-compose.yml and deploy/ run the real CLI with real settings (no Docker engine here).

Every ``fleetcare ...`` a service runs is parsed by the real click command tree, so an option
or sub-command that does not exist fails here; every ``FLEETCARE_*`` variable is a setting of
one of the documented settings classes; the gateway's configuration loads with the gateway's
own loader; Prometheus scrapes exactly the ports the services serve /metrics on; healthchecks
ask only for endpoints that exist.
"""

from __future__ import annotations

import re
import shlex
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer
import yaml
from pydantic_settings import BaseSettings
from typer.core import TyperGroup

from backend.ingest.settings import IngestSettings
from backend.scoring.settings import ScoringSettings
from fleetcare.cli.app import build_app
from fleetcare.cli.config import reference_sections
from fleetcare.config import ENV_PREFIX, load_settings
from gateway.config import GatewayConfig, load_config

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
GATEWAY_TOML = ROOT / "deploy/gateway/gateway.toml"
PROMETHEUS = ROOT / "deploy/prometheus/prometheus.yml"
# The sub-commands whose process serves Prometheus /metrics, and the settings that place it.
METRICS_SETTINGS: dict[str, type[BaseSettings]] = {
    "ingest": IngestSettings,
    "score": ScoringSettings,
}
HEALTHCHECK_URL = re.compile(r"https?://[^\s'\"]+")

Services = dict[str, dict[str, Any]]


class InvocationError(Exception):
    """A ``fleetcare`` argument list the CLI would refuse (missing sub-command, extra words)."""


@pytest.fixture(scope="module")
def services() -> Services:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data["services"]  # type: ignore[no-any-return]


@cache
def _root_command() -> Any:
    return typer.main.get_command(build_app())


def fleetcare_invocations(command: list[str] | str) -> list[list[str]]:
    """The argument lists of every ``fleetcare ...`` a compose ``command`` runs.

    Understands the exec form (``["fleetcare", ...]``) and ``sh -c "a && exec fleetcare ..."``.
    """
    words = shlex.split(command) if isinstance(command, str) else [str(w) for w in command]
    if words[:2] == ["sh", "-c"] and len(words) == 3:
        lines = []
        for step in re.split(r"&&|\|\||;", words[2]):
            parts = shlex.split(step)
            if parts[:1] == ["exec"]:
                parts = parts[1:]
            lines.append(parts)
    else:
        lines = [words]
    return [parts[1:] for parts in lines if parts[:1] == ["fleetcare"]]


def parse_invocation(args: list[str]) -> list[str]:
    """Parse ``fleetcare ARGS`` like the CLI would; return the command path.

    Raises:
        typer.TyperException: an unknown option or sub-command, a bad or missing value.
        InvocationError: a group without its sub-command, or words left over.
    """
    command = _root_command()
    ctx = command.make_context("fleetcare", list(args), resilient_parsing=False)
    path = [ctx.info_name or "fleetcare"]
    while isinstance(command, TyperGroup):
        rest = [*ctx._protected_args, *ctx.args]
        if not rest:
            if not command.invoke_without_command:
                raise InvocationError(f"{' '.join(path)} needs a sub-command")
            break
        name, sub, rest = command.resolve_command(ctx, rest)
        assert name is not None and sub is not None
        ctx = sub.make_context(name, rest, parent=ctx, resilient_parsing=False)
        command = sub
        path.append(name)
    if not isinstance(command, TyperGroup) and ctx.args:
        raise InvocationError(f"{' '.join(path)}: unexpected arguments {ctx.args}")
    return path


def settings_env_names(settings_cls: type[BaseSettings]) -> set[str]:
    """The environment variables ``settings_cls`` reads (as :mod:`fleetcare.config` forms them)."""
    prefix = str(settings_cls.model_config.get("env_prefix") or ENV_PREFIX)
    return {
        info.alias or f"{prefix}{name}".upper() for name, info in settings_cls.model_fields.items()
    }


def known_env_names() -> set[str]:
    return set().union(*(settings_env_names(cls) for _, cls in reference_sections()))


def _is_setting(key: str, known: set[str]) -> bool:
    # Nested settings are addressed as NAME__FIELD (env_nested_delimiter "__").
    return key in known or any(key.startswith(name + "__") for name in known)


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(key): str(value) for key, value in env.items()}


def _interpolate(value: str) -> str:
    """Resolve ``${VAR:-default}`` the way compose does with VAR unset."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def _fleetcare_services(services: Services) -> dict[str, list[list[str]]]:
    found = {
        name: fleetcare_invocations(service["command"])
        for name, service in services.items()
        if "command" in service
    }
    return {name: calls for name, calls in found.items() if calls}


def _served_metrics(services: Services, name: str) -> tuple[str, int] | None:
    """``(host, port)`` of the /metrics the service's main command serves, or None."""
    main = _fleetcare_services(services).get(name, [[]])[-1]
    settings_cls = METRICS_SETTINGS.get(parse_invocation(main)[1]) if main else None
    if settings_cls is None:
        return None
    prefix = str(settings_cls.model_config.get("env_prefix"))
    env = _env(services[name])
    default = settings_cls.model_fields["metrics_port"].default
    port = env.get(f"{prefix}METRICS_PORT", str(default))
    if port.lower() == "none":
        return None
    return env.get(f"{prefix}METRICS_HOST", "127.0.0.1"), int(port)


def test_the_backend_services_run_the_real_commands(services: Services) -> None:
    commands = {
        name: [tuple(parse_invocation(args)[1:]) for args in calls]
        for name, calls in _fleetcare_services(services).items()
    }
    assert commands == {
        "api": [("db", "migrate"), ("api", "serve")],
        "ingest": [("ingest", "run")],
        "score": [("score",)],
        "care": [("care", "run")],
        "health": [("accounts", "health")],
        "maintain": [("db", "maintain")],
        "downlink": [("downlink", "run")],
        "gateway": [("gateway", "run")],
        "simulator": [("sim", "run")],
    }


@pytest.mark.parametrize(
    "args",
    [
        ["ingest", "--metrics-port", "9101"],
        ["score", "run"],
        ["gateway", "run", "--config", "x.toml", "--metrics-port", "9103"],
        ["sim", "run", "--devices", "many"],
        ["care"],
        ["gateway", "run"],
    ],
)
def test_the_parser_refuses_what_the_cli_would(args: list[str]) -> None:
    with pytest.raises((typer.TyperException, InvocationError)):
        parse_invocation(args)


def test_sh_c_commands_are_split_into_their_invocations() -> None:
    assert fleetcare_invocations(
        ["sh", "-c", "fleetcare db migrate && exec fleetcare api serve"]
    ) == [
        ["db", "migrate"],
        ["api", "serve"],
    ]
    assert fleetcare_invocations(["python", "-m", "http.server"]) == []


def test_every_fleetcare_env_var_is_a_real_setting(services: Services) -> None:
    known = known_env_names()
    assert "FLEETCARE_INGEST_METRICS_PORT" in known and "FLEETCARE_DATABASE_URL" in known
    assert not _is_setting("FLEETCARE_INGEST_METRICS_PROT", known)
    for name, service in services.items():
        for key in _env(service):
            if key.startswith(ENV_PREFIX):
                assert _is_setting(key, known), f"{name}: {key} is no setting of any settings class"


def test_the_compose_env_is_valid_for_every_settings_class(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    known = known_env_names()
    for name in _fleetcare_services(services):
        env = {key: _interpolate(value) for key, value in _env(services[name]).items()}
        for key in known:
            monkeypatch.delenv(key, raising=False)
        monkeypatch.delenv("FLEETCARE_CONFIG", raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        for _, settings_cls in reference_sections():
            load_settings(settings_cls)  # raises ConfigError naming a bad value


def test_metrics_bind_every_interface_and_are_exposed(services: Services) -> None:
    for name in _fleetcare_services(services):
        served = _served_metrics(services, name)
        if served is None:
            continue
        host, port = served
        assert host == "0.0.0.0", f"{name}: /metrics on {host} cannot be scraped from outside"
        assert port in {int(p) for p in services[name].get("expose", [])}, name


def test_prometheus_scrapes_exactly_the_served_metrics_ports(services: Services) -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    targets = [
        (job.get("metrics_path", "/metrics"), target)
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    ]
    scraped: dict[str, int] = {}
    for path, target in targets:
        host, port = target.rsplit(":", 1)
        if host == "localhost":  # Prometheus itself
            continue
        assert host in services, f"{target}: no such service"
        served = _served_metrics(services, host)
        assert served is not None, f"{target}: {host} serves no /metrics"
        assert int(port) == served[1], f"{target}: {host} serves /metrics on {served[1]}"
        assert path == "/metrics"
        scraped[host] = int(port)
    expected = {
        name: served[1]
        for name in _fleetcare_services(services)
        if (served := _served_metrics(services, name)) is not None
    }
    assert scraped == expected


def test_healthchecks_ask_only_for_endpoints_that_exist(services: Services) -> None:
    from backend.api.spec import openapi_spec

    api_paths = set(openapi_spec()["paths"])
    assert "/health" in api_paths
    for name in _fleetcare_services(services):
        test = " ".join(str(word) for word in services[name].get("healthcheck", {}).get("test", []))
        env = _env(services[name])
        for url in HEALTHCHECK_URL.findall(test):
            parts = urlsplit(url)
            metrics = _served_metrics(services, name)
            if metrics is not None and parts.port == metrics[1]:
                assert parts.path == "/metrics", f"{name}: {url}"
                continue
            assert parts.port == int(env["FLEETCARE_API_PORT"]), f"{name}: nothing serves {url}"
            assert parts.path in api_paths, f"{name}: the API has no {parts.path}"
            assert ["api", "serve"] in _fleetcare_services(services)[name], name


@pytest.fixture(scope="module")
def gateway_config() -> GatewayConfig:
    return load_config(GATEWAY_TOML)  # raises GatewayConfigError naming every bad key


def test_the_gateway_config_loads_and_points_at_compose(
    services: Services, gateway_config: GatewayConfig
) -> None:
    gateway = services["gateway"]
    args = _fleetcare_services(services)["gateway"][0]
    mounted = {
        str(volume).split(":")[1]: str(volume).split(":")[0] for volume in gateway["volumes"]
    }
    config_path = args[args.index("--config") + 1]
    assert (ROOT / mounted[config_path]).resolve() == GATEWAY_TOML
    assert any(str(gateway_config.data_dir).startswith(target) for target in mounted)
    for broker in [gateway_config.uplink, gateway_config.local]:
        assert broker is not None
        url = urlsplit(str(broker.url))
        assert url.hostname in services, f"{broker.url}: no such service"
        assert url.hostname in gateway.get("depends_on", {}), (
            f"gateway must wait for {url.hostname}"
        )
    ingest_root = _env(services["ingest"])["FLEETCARE_TOPIC_ROOT"]
    assert gateway_config.uplink.topic_root == ingest_root


def test_the_simulator_publishes_where_the_gateway_listens(
    services: Services, gateway_config: GatewayConfig
) -> None:
    args = _fleetcare_services(services)["simulator"][0]
    assert gateway_config.local is not None
    assert args[args.index("--topic-root") + 1] == gateway_config.local.topic_root
    assert args[args.index("--broker") + 1] == str(gateway_config.local.url)
    assert "gateway" in services["simulator"]["depends_on"]
