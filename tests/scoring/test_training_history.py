"""Training a fleet model on the fleet's own database: rollups, tickets and a repair log."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
import pytest
from typer.testing import CliRunner

from backend.scoring.training_history import read_training_history
from backend.storage.migrator import apply_migrations
from benchmarks.models.fleet_from_database import record_outcomes
from fleetcare.cli.app import build_app
from models.fleet.repair_log import RepairRecord
from models.fleet.training import MIN_FAILURES
from models.registry import FileRegistry
from tests.cli_output import said
from tests.scoring.tiny_fleet import MACHINE_TYPE, SIM, Fleet, TinyFleet

pytestmark = pytest.mark.services

FIRST = SIM.start
END = SIM.start + timedelta(days=SIM.days)


@dataclass(frozen=True)
class LoadedFleet:
    url: str
    fleet: TinyFleet
    device_ids: dict[str, int]
    repairs: list[RepairRecord]
    wear_modes: tuple[str, ...]


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@pytest.fixture(scope="module")
def loaded(module_database_url: str, tiny_fleet: TinyFleet) -> LoadedFleet:
    """The tiny fleet's whole history in a database of its own, with its failures recorded."""
    url = module_database_url
    apply_migrations(url, dialect="postgres")
    writer = Fleet(url, tiny_fleet)
    ids = {
        source: writer.write(source, source, _midnight(FIRST), _midnight(END), refresh=False)
        for source in tiny_fleet.daily.device_ids
    }
    writer.refresh(_midnight(FIRST), _midnight(END))
    with psycopg.connect(url, autocommit=True) as conn:
        repairs = record_outcomes(conn, tiny_fleet.history / "ground_truth", ids)
    return LoadedFleet(url, tiny_fleet, ids, repairs, tiny_fleet.outcomes.modes)


def _order(names: tuple[str, ...]) -> list[int]:
    return sorted(range(len(names)), key=lambda k: names[k])


def test_the_database_gives_the_daily_means_and_outcomes_the_files_give(
    loaded: LoadedFleet,
) -> None:
    fleet = loaded.fleet
    with psycopg.connect(loaded.url) as conn:
        history = read_training_history(conn, MACHINE_TYPE, FIRST, END, repairs=loaded.repairs)
    daily = history.daily
    # Devices sorted by name in both; metrics by name.
    files = _order(fleet.daily.device_ids)
    assert list(daily.device_ids) == [fleet.daily.device_ids[k] for k in files]
    assert sorted(daily.metrics) == sorted(fleet.daily.metrics)
    columns = [daily.metrics.index(m) for m in fleet.daily.metrics]
    ours = daily.means[:, :, columns]
    theirs = fleet.daily.means[files]
    assert ours.shape == theirs.shape == (SIM.devices, SIM.days, len(fleet.daily.metrics))
    assert np.array_equal(np.isnan(ours), np.isnan(theirs))
    assert np.allclose(ours, theirs, rtol=1e-5, equal_nan=True)

    # Every failure was diagnosed (ticket or log): learning the wear modes, the outcomes
    # are the ground truth's: days to each failure, to each visit that removed advanced
    # wear, the days each device was down, the days left.
    truth = fleet.outcomes
    sources = history.sources
    with psycopg.connect(loaded.url) as conn:
        wear = read_training_history(
            conn, MACHINE_TYPE, FIRST, END, repairs=loaded.repairs, modes=truth.modes
        )
    assert wear.outcomes.modes == truth.modes
    for name in ("to_failure", "to_repair", "down", "remaining"):
        assert np.array_equal(getattr(wear.outcomes, name), getattr(truth, name)[files]), name
    # By default every diagnosed mode is learnt, the random failures' too.
    assert {mode for _, _, mode in truth.failures} <= set(history.outcomes.modes)
    assert wear.sha256 != history.sha256
    assert sources.unattributed == 0 and sources.repair_log_elsewhere == 0
    assert sources.confirmed_tickets + sources.repair_log == len(truth.failures)
    assert sources.confirmed_tickets > 0 and sources.repair_log > 0
    by_mode = {m: sum(1 for f in truth.failures if f[2] == m) for m in truth.modes}
    assert {m: n for m, n in sources.failures.items() if m in truth.modes} == {
        m: n for m, n in by_mode.items() if n
    }


def test_an_undiagnosed_failure_censors_every_mode_and_the_device_is_down_until_it_reports(
    loaded: LoadedFleet,
) -> None:
    with psycopg.connect(loaded.url) as conn:
        before = read_training_history(conn, MACHINE_TYPE, FIRST, END, repairs=loaded.repairs)
    # Leave one failure out of the repair log: its trip event is all that remains.
    dropped = next(
        r
        for r in loaded.repairs
        if r.mode in before.outcomes.modes
        and before.sources.failures[r.mode] >= 2
        and (r.failed_at - _midnight(FIRST)).days >= 10
    )
    repairs = [r for r in loaded.repairs if r is not dropped]
    with psycopg.connect(loaded.url) as conn:
        after = read_training_history(conn, MACHINE_TYPE, FIRST, END, repairs=repairs)
    assert after.sources.unattributed == 1
    assert after.sources.repair_log == before.sources.repair_log - 1
    assert after.sha256 != before.sha256
    device = after.daily.device_ids.index(dropped.device_id)
    failed = (dropped.failed_at - _midnight(FIRST)).total_seconds() / 86_400
    day = int(failed) - 3  # three days before the failure
    mode = after.outcomes.modes.index(dropped.mode)
    assert before.outcomes.to_failure[device, day, mode] <= 14
    # Not read as "no failure": every mode is censored there (a visit of unknown effect).
    assert (
        after.outcomes.to_failure[device, day, mode] > before.outcomes.to_failure[device, day, mode]
    )
    assert (after.outcomes.to_repair[device, day] <= failed - day).all()
    # Down from the failure until the first day with readings again.
    means = after.daily.means[device]
    back = next(d for d in range(int(failed) + 1, SIM.days) if np.isfinite(means[d]).any())
    assert after.outcomes.down[device, int(failed) : back].all()
    assert not after.outcomes.down[device, back]


def _run(args: list[str], url: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), args, env={"FLEETCARE_DATABASE_URL": url})
    return result.exit_code, said(result.output)


def _write_log(path: Path, repairs: list[RepairRecord]) -> None:
    lines = ["device_id,failed_at,mode,repaired_at"] + [
        f"{r.device_id},{r.failed_at.isoformat()},{r.mode},"
        f"{r.repaired_at.isoformat() if r.repaired_at else ''}"
        for r in repairs
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_cli_trains_and_registers_a_candidate_on_the_database(
    loaded: LoadedFleet, tmp_path: Path
) -> None:
    log = tmp_path / "repairs.csv"
    _write_log(log, loaded.repairs)
    registry = tmp_path / "registry"
    until = (END - timedelta(days=1)).isoformat()
    code, out = _run(
        ["models", "train", "fleet", "--machine-type", MACHINE_TYPE, "--days", str(SIM.days),
         "--until", until, "--repair-log", str(log), "--registry", str(registry),
         "--modes", ",".join(loaded.wear_modes)],
        loaded.url,
    )  # fmt: skip
    assert code == 0, out
    assert f"history: {SIM.devices} devices of {MACHINE_TYPE}" in out
    assert f"{len(loaded.repairs)} from the repair log" in out
    assert "registered fleet-centrifugal_pump v1 (candidate)" in out
    assert "fleetcare models promote fleet-centrifugal_pump v1" in out
    entry = FileRegistry(registry).get("fleet-centrifugal_pump", "v1")
    assert entry.status == "candidate"
    manifest = json.loads(
        (registry / "fleet-centrifugal_pump" / "v1" / "manifest.json").read_text()
    )
    with psycopg.connect(loaded.url) as conn:
        history = read_training_history(
            conn, MACHINE_TYPE, FIRST, END, repairs=loaded.repairs, modes=loaded.wear_modes
        )
    assert manifest["training_data_sha256"] == history.sha256
    assert "fleet database" in manifest["training_data"]
    assert tuple(manifest["failure_modes"]) == loaded.wear_modes
    trainable = {
        m
        for m, n in history.sources.failures.items()
        if n >= MIN_FAILURES and m in loaded.wear_modes
    }
    # Alert thresholds only for modes with enough diagnosed failures, and at least one.
    assert manifest["extra"]["alert_thresholds"]
    assert set(manifest["extra"]["alert_thresholds"]) <= trainable
    random = sorted({m for m in history.sources.failures if m not in loaded.wear_modes})
    assert random
    for mode in random:
        assert (
            f"{mode}: {history.sources.failures[mode]} failure(s) (not learnt: not in --modes)"
            in out
        )
    # Out-of-fold alert quality of every mode with a classifier is recorded.
    assert {k for k in entry.metrics if k.endswith("_recall")}
    assert all(0.0 <= v <= 1.0 for k, v in entry.metrics.items() if k.startswith("holdout_"))


def test_cli_says_what_is_missing(loaded: LoadedFleet, tmp_path: Path) -> None:
    code, out = _run(
        ["models", "train", "fleet", "--machine-type", "chiller", "--registry", str(tmp_path)],
        loaded.url,
    )
    assert code == 1
    assert "no device model of that name or kind; kinds in the catalogue: centrifugal_pump" in out
    # A range before the fleet's history: no readings, no failures.
    code, out = _run(
        ["models", "train", "fleet", "--machine-type", MACHINE_TYPE, "--until", "2024-06-30",
         "--registry", str(tmp_path)],
        loaded.url,
    )  # fmt: skip
    assert code == 1
    assert "0 device-days with readings" in out
    assert f"has the {MIN_FAILURES} diagnosed failures a classifier needs" in out
    assert not list(tmp_path.iterdir())
    bad = tmp_path / "bad.csv"
    bad.write_text("device_id,failed_at,mode\ncp-1,yesterday,bearing_wear\n", encoding="utf-8")
    code, out = _run(
        ["models", "train", "fleet", "--machine-type", MACHINE_TYPE, "--repair-log", str(bad)],
        loaded.url,
    )
    assert code == 1
    assert "1 invalid row(s) in the repair log, nothing used" in out
    assert "line 2: failed_at" in out
    code, out = _run(
        ["models", "train", "fleet", "--machine-type", MACHINE_TYPE, "--modes", "Bearing Wear"],
        loaded.url,
    )
    assert code == 2
    assert "give failure mode names like bearing_wear" in out


@pytest.mark.parametrize("hours_before_the_failure", [None, 8.0])
def test_another_breakdown_in_a_tickets_window_is_not_taken_for_the_tickets_own(
    loaded: LoadedFleet, hours_before_the_failure: float | None
) -> None:
    """A confirmed ticket whose window also holds another breakdown, diagnosed in the
    repair log with another mode: soon after the ticket was opened (``None``), or 8 hours
    before the ticket's own failure. Neither is taken for the ticket's failure, nor merged
    with it: both stay diagnosed, none is left to censor every mode."""
    with psycopg.connect(loaded.url, autocommit=True) as conn:
        device, created, resolved, mode = conn.execute(
            "SELECT device_id, created_at, resolved_at, failure_mode FROM tickets "
            "WHERE outcome = 'failure_confirmed' AND created_at > %s ORDER BY id LIMIT 1",
            (_midnight(FIRST) + timedelta(days=1),),
        ).fetchone()  # type: ignore[misc]
        external, failed = conn.execute(
            "SELECT d.external_id, max(e.time) FROM devices d JOIN device_events e "
            "ON e.device_id = d.id AND e.time BETWEEN %s AND %s WHERE d.id = %s "
            "GROUP BY d.external_id",
            (created, resolved, device),
        ).fetchone()  # type: ignore[misc]
        other_at = (
            created + timedelta(hours=6)
            if hours_before_the_failure is None
            else failed - timedelta(hours=hours_before_the_failure)
        )
        other = RepairRecord(
            device_id=external,
            failed_at=other_at,
            mode="seal_leak" if mode != "seal_leak" else "bearing_wear",
            repaired_at=other_at + timedelta(hours=4),
        )
        conn.execute(
            "INSERT INTO device_events (time, device_id, seq, kind) VALUES (%s, %s, -1, 'trip')",
            (other_at, device),
        )
        try:
            before = read_training_history(conn, MACHINE_TYPE, FIRST, END, repairs=loaded.repairs)
            history = read_training_history(
                conn, MACHINE_TYPE, FIRST, END, repairs=[*loaded.repairs, other]
            )
        finally:
            conn.execute("DELETE FROM device_events WHERE seq = -1")
    assert history.sources.unattributed == 0
    assert history.sources.repair_log == before.sources.repair_log + 1
    assert history.sources.confirmed_tickets == before.sources.confirmed_tickets
    k = history.daily.device_ids.index(external)
    failed_day = (failed - _midnight(FIRST)).total_seconds() / 86_400
    assert (k, failed_day, mode) in history.outcomes.failures
