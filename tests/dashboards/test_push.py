"""``fleetcare dashboards push`` against a stand-in for Grafana's HTTP API."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from typer.testing import CliRunner

from dashboards.catalog import GENERATED_DIR, all_dashboards, file_name
from dashboards.push import FOLDER_UID, PushError, push
from fleetcare.cli.app import build_app
from tests.cli_output import said
from tests.dashboards.grafana_standin import grafana_standin

TOKEN = "glsa_test_token"
DATABASE_URL = "postgresql://grafana_reader:s3cret@timescaledb:5432/fleetcare"
PROMETHEUS_URL = "http://prometheus:9090"


def _push(url: str, token: str = TOKEN) -> Counter[tuple[str, str]]:
    results = push(url, token, database_url=DATABASE_URL, prometheus_url=PROMETHEUS_URL)
    return Counter((r.kind, r.action) for r in results)


def test_first_push_creates_everything_with_the_generated_json() -> None:
    with grafana_standin(TOKEN) as (url, state):
        assert _push(url) == {
            ("datasource", "created"): 2,
            ("folder", "created"): 1,
            ("dashboard", "created"): 4,
        }
        postgres = state.datasources["fleetcare-postgres"]
        assert postgres["type"] == "grafana-postgresql-datasource"
        assert postgres["url"] == "timescaledb:5432" and postgres["user"] == "grafana_reader"
        assert postgres["jsonData"]["database"] == "fleetcare"
        assert postgres["secureJsonData"] == {"password": "s3cret"}
        assert state.datasources["fleetcare-prometheus"]["url"] == PROMETHEUS_URL
        assert state.folders[FOLDER_UID]["title"] == "fleetcare"
        for dashboard in all_dashboards():
            stored = state.dashboards[dashboard.uid]
            assert stored["meta"]["folderUid"] == FOLDER_UID
            committed = json.loads((GENERATED_DIR / file_name(dashboard)).read_text())
            server_fields = {"id", "version"}
            assert {k: v for k, v in stored["dashboard"].items() if k not in server_fields} == {
                k: v for k, v in committed.items() if k not in server_fields
            }


def test_second_push_changes_nothing() -> None:
    with grafana_standin(TOKEN) as (url, state):
        _push(url)
        writes_before = len(state.writes())
        assert _push(url) == {
            ("datasource", "unchanged"): 2,
            ("folder", "unchanged"): 1,
            ("dashboard", "unchanged"): 4,
        }
        assert len(state.writes()) == writes_before
        assert all(d["dashboard"]["version"] == 1 for d in state.dashboards.values())


def test_push_restores_what_was_changed_in_grafana() -> None:
    with grafana_standin(TOKEN) as (url, state):
        _push(url)
        uid = all_dashboards()[0].uid
        state.dashboards[uid]["dashboard"]["title"] = "edited in the UI"
        state.datasources["fleetcare-prometheus"]["url"] = "http://elsewhere:9090"
        state.folders[FOLDER_UID]["title"] = "renamed"
        assert _push(url) == {
            ("datasource", "updated"): 1,
            ("datasource", "unchanged"): 1,
            ("folder", "updated"): 1,
            ("dashboard", "updated"): 1,
            ("dashboard", "unchanged"): 3,
        }
        assert state.dashboards[uid]["dashboard"]["title"] == all_dashboards()[0].title
        assert state.dashboards[uid]["dashboard"]["version"] == 2
        overwrite = [r for r in state.writes() if r.path == "/api/dashboards/db"][-1]
        assert overwrite.body["overwrite"] is True
        assert state.datasources["fleetcare-prometheus"]["url"] == PROMETHEUS_URL


def test_a_refused_token_is_a_clear_error_and_writes_nothing() -> None:
    with grafana_standin(TOKEN) as (url, state):
        with pytest.raises(PushError) as caught:
            _push(url, token="wrong")
        assert caught.value.status == 401
        assert state.writes() == [] and state.dashboards == {}


def test_the_cli_pushes_and_reports_each_object() -> None:
    runner = CliRunner()
    app = build_app()
    with grafana_standin(TOKEN) as (url, state):
        args = ["dashboards", "push", "--grafana-url", url, "--database-url", DATABASE_URL]
        result = runner.invoke(app, [*args, "--token", TOKEN])
        assert result.exit_code == 0, result.output
        assert result.output.count("created") == 7
        again = runner.invoke(app, [*args, "--token", TOKEN])
        assert again.output.count("unchanged") == 7
        refused = runner.invoke(app, [*args, "--token", "wrong"])
        assert refused.exit_code == 2
        assert "401" in refused.output and "s3cret" not in refused.output
        assert len(state.dashboards) == 4


def test_an_unreachable_grafana_is_a_clear_error() -> None:
    with grafana_standin(TOKEN) as (url, _state):
        pass  # the port is free again: nothing listens there now
    with pytest.raises(PushError, match="unreachable"):
        push(url, TOKEN, database_url=DATABASE_URL, prometheus_url=PROMETHEUS_URL, timeout_s=2)


@pytest.mark.parametrize("option", ["--grafana-url", "--prometheus-url"])
@pytest.mark.parametrize("value", ["notaurl", "ftp://grafana", "http://"])
def test_a_url_that_is_not_http_is_refused_before_any_request(option: str, value: str) -> None:
    args = {"--grafana-url": "http://localhost:3000", "--prometheus-url": "http://p:9090"}
    args[option] = value
    argv = [x for pair in args.items() for x in pair]
    result = CliRunner().invoke(
        build_app(),
        ["dashboards", "push", *argv, "--database-url", DATABASE_URL, "--token", TOKEN],
    )
    assert result.exit_code == 2
    text = said(result.output)
    assert f"Invalid value for {option}: '{value}' is not an http(s) URL" in text
