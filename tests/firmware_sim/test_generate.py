"""``sim generate`` writes the documented files and schema, and refuses to clobber output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from firmware_sim import OutputExistsError, SimConfig, generate
from firmware_sim.cli import app
from firmware_sim.machines import MACHINE_TYPES, machine_spec
from firmware_sim.schema import EVENTS_SCHEMA, telemetry_schema, usage_schema

REPO = Path(__file__).resolve().parents[2]


def test_telemetry_has_the_documented_schema(small_run: Path, small_config: SimConfig) -> None:
    manifest = json.loads((small_run / "manifest.json").read_text())
    rows = 0
    for entry in manifest["telemetry_files"]:
        path = small_run / entry["path"]
        spec = machine_spec(entry["machine_type"])
        schema = pq.read_schema(path)
        assert schema.equals(telemetry_schema(spec), check_metadata=False)
        assert schema.field("ts").type == pa.timestamp("ms", tz="UTC")
        assert schema.field("vibration_rms_mm_s").metadata[b"unit"] == b"mm/s"
        meta = pq.read_metadata(path)
        assert meta.num_rows == entry["rows"]
        assert meta.num_row_groups == small_config.days
        rows += entry["rows"]
    assert rows == small_config.devices * small_config.days * small_config.steps_per_day
    assert manifest["counts"]["readings"] == rows
    assert manifest["config"]["seed"] == small_config.seed


def test_rows_are_ordered_by_device_then_time(small_run: Path) -> None:
    table = ds.dataset(small_run / "telemetry" / MACHINE_TYPES[0]).to_table()
    first_group = table.slice(0, 1440 * 2)
    ts = first_group["ts"].to_numpy()
    assert (ts[1:1440] > ts[:1439]).all()
    assert ts[1440] == ts[0]
    assert len(set(first_group["device_id"].to_pylist()[:1440])) == 1


def test_side_files_have_their_schemas(small_run: Path, small_config: SimConfig) -> None:
    usage = pq.read_table(small_run / "usage" / "usage.parquet")
    assert usage.schema.equals(usage_schema())
    assert usage.num_rows == small_config.devices * small_config.days
    hours = usage["operating_hours"].to_numpy()
    assert hours.min() >= 0 and hours.max() <= 24
    events = pq.read_table(small_run / "events" / "events.parquet")
    assert events.schema.equals(EVENTS_SCHEMA)
    kinds = set(events["kind"].to_pylist())
    assert kinds <= {"trip", "restart", "maintenance_start", "maintenance_end"}
    failures = pq.read_table(small_run / "ground_truth" / "failures.parquet")
    assert events["kind"].to_pylist().count("trip") == failures.num_rows


def test_ground_truth_is_never_in_telemetry(small_run: Path) -> None:
    names = {f.name for t in MACHINE_TYPES for f in telemetry_schema(machine_spec(t))}
    assert not names & {"degradation", "mode", "cause", "account_id", "failed_at"}


def test_refuses_to_overwrite_without_asking(tmp_path: Path) -> None:
    config = SimConfig(devices=3, days=1, seed=1)
    generate(config, tmp_path)
    with pytest.raises(OutputExistsError):
        generate(config, tmp_path)
    generate(config, tmp_path, overwrite=True)


def test_cli_generate(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["generate", "--devices", "4", "--days", "1", "--out", str(tmp_path), "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["counts"]["devices"] == 4
    again = CliRunner().invoke(
        app, ["generate", "--devices", "4", "--days", "1", "--out", str(tmp_path)]
    )
    assert again.exit_code == 1


def test_runs_as_a_module(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "firmware_sim",
            "generate",
            "-n",
            "2",
            "-d",
            "1",
            "-o",
            str(tmp_path),
            "--no-writer-thread",
            "--compression",
            "zstd",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "manifest.json").is_file()
