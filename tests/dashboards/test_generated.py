"""The committed dashboard JSON: up to date, valid for the pinned Grafana, consistent."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml
from typer.testing import CliRunner

from dashboards.catalog import GENERATED_DIR, all_dashboards, build, file_name, stale_files
from dashboards.datasources import POSTGRES, PROMETHEUS
from dashboards.model import GRAFANA_VERSION, SCHEMA_VERSION, QueryVariable, SqlTarget
from fleetcare.cli.app import build_app

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "dashboards" / "schema" / "dashboard-v41.schema.json"
# The dashboard schema version each Grafana release writes (DashboardMigrator).
SCHEMA_VERSION_OF_GRAFANA = {"10.4": 39, "11.0": 39, "11.3": 40, "11.5": 40, "11.6": 41}


def _committed() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(GENERATED_DIR.glob("*.json"))}


def test_regeneration_changes_nothing(tmp_path: Path) -> None:
    assert stale_files() == [], "run `fleetcare dashboards build` and commit the result"
    build(tmp_path)
    for path in tmp_path.iterdir():
        assert path.read_bytes() == (GENERATED_DIR / path.name).read_bytes(), path.name
    assert {p.name for p in tmp_path.iterdir()} == set(_committed())


def test_build_check_fails_on_a_stale_directory(tmp_path: Path) -> None:
    runner = CliRunner()
    app = build_app()
    assert runner.invoke(app, ["dashboards", "build", "--out", str(tmp_path)]).exit_code == 0
    check = ["dashboards", "build", "--check", "--out", str(tmp_path)]
    assert runner.invoke(app, check).exit_code == 0
    victim = tmp_path / file_name(all_dashboards()[0])
    victim.write_text(victim.read_text().replace('"timeseries"', '"graph"', 1))
    (tmp_path / "orphan.json").write_text('{"uid": "fleetcare-retired"}')  # no longer shipped
    (tmp_path / "notes.json").write_text("{}")  # not a dashboard of ours
    result = runner.invoke(app, check)
    assert result.exit_code == 1
    assert victim.name in result.output and "orphan.json" in result.output
    assert "notes.json" not in result.output


def test_build_removes_retired_dashboards_but_no_other_file(tmp_path: Path) -> None:
    (tmp_path / "retired.json").write_text('{"uid": "fleetcare-retired", "panels": []}')
    users = {"notes.json": '{"uid": "theirs"}', "list.json": "[1, 2]", "broken.json": "{"}
    for name, text in users.items():
        (tmp_path / name).write_text(text)
    build(tmp_path)
    assert not (tmp_path / "retired.json").exists()
    assert {name: (tmp_path / name).read_text() for name in users} == users
    assert {p.name for p in tmp_path.iterdir()} == set(_committed()) | set(users)


def test_build_into_a_folder_it_cannot_write_is_one_error_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(build_app(), ["dashboards", "build", "--out", str(blocker / "x")])
    assert result.exit_code == 1
    assert "error: cannot write" in result.output and "Traceback" not in result.output


def test_the_schema_version_is_the_one_of_the_pinned_grafana_image() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    image = compose["services"]["grafana"]["image"]
    tag = image.split(":")[1]
    assert tag == GRAFANA_VERSION
    assert SCHEMA_VERSION_OF_GRAFANA[".".join(tag.split(".")[:2])] == SCHEMA_VERSION


@pytest.mark.parametrize("name", sorted(p.name for p in GENERATED_DIR.glob("*.json")))
def test_dashboard_json_validates_against_the_grafana_schema(name: str) -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(_committed()[name]))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]


def test_the_schema_rejects_what_grafana_would_not_take() -> None:
    schema = json.loads(SCHEMA.read_text())
    model = next(iter(_committed().values()))
    broken = json.loads(json.dumps(model))
    broken["schemaVersion"] = 36
    broken["panels"][0]["gridPos"]["w"] = 30
    broken["panels"][0]["targets"][0]["refId"] = "query 1"
    paths = {
        tuple(e.absolute_path) for e in jsonschema.Draft202012Validator(schema).iter_errors(broken)
    }
    assert ("schemaVersion",) in paths
    assert ("panels", 0, "gridPos", "w") in paths
    assert any(p[:3] == ("panels", 0, "targets") for p in paths)


def _overlaps(a: dict[str, int], b: dict[str, int]) -> bool:
    return (
        a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    )


def test_panels_are_laid_out_and_identified_consistently() -> None:
    uids = set()
    for name, model in _committed().items():
        assert model["uid"] not in uids, name
        uids.add(model["uid"])
        panels = model["panels"]
        assert len({p["id"] for p in panels}) == len(panels), name
        for index, panel in enumerate(panels):
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, f"{name}: {panel['title']}"
            for other in panels[index + 1 :]:
                assert not _overlaps(grid, other["gridPos"]), f"{name}: {panel['title']}"
            ref_ids = [t["refId"] for t in panel["targets"]]
            assert len(set(ref_ids)) == len(ref_ids)
            for target in panel["targets"]:
                assert target["datasource"] == panel["datasource"], panel["title"]


def test_panels_use_the_provisioned_data_sources() -> None:
    provisioned = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/fleetcare.yml").read_text()
    )["datasources"]
    by_uid = {source["uid"]: source for source in provisioned}
    for ref in (POSTGRES, PROMETHEUS):
        assert by_uid[ref.uid]["type"] == ref.type
        assert by_uid[ref.uid]["name"] == ref.name
    used = {
        (t["datasource"]["type"], t["datasource"]["uid"])
        for model in _committed().values()
        for panel in model["panels"]
        for t in panel["targets"]
    }
    assert used == {(POSTGRES.type, POSTGRES.uid), (PROMETHEUS.type, PROMETHEUS.uid)}


def test_provisioned_dashboards_are_the_generated_directory() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    provider = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/fleetcare.yml").read_text()
    )["providers"][0]
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./dashboards/generated:{provider['options']['path']}:ro" in mounts


def test_every_variable_a_query_uses_is_defined() -> None:
    builtin = {"__interval", "__interval_ms", "__rate_interval", "__range", "__range_s"}
    for dashboard in all_dashboards():
        defined = {variable.name for variable in dashboard.variables}
        texts = [t.sql if isinstance(t, SqlTarget) else t.expr for p in dashboard.panels
                 for t in p.targets]  # fmt: skip
        texts += [v.sql for v in dashboard.variables if isinstance(v, QueryVariable)]
        texts += [p.title for p in dashboard.panels]
        for text in texts:
            for name in re.findall(r"\$\{?(\w+)", text):
                if name.startswith("__") and re.search(rf"\${name}\(", text):
                    continue  # a macro
                assert name in defined | builtin, f"{dashboard.uid}: ${name}"
