"""The soak report renders its verdict, timeline and plots from a result."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from benchmarks.soak.checks import StoredCounts, judge_flatness, reconcile_readings
from benchmarks.soak.driver import FaultEvent, SoakOptions, SoakResult, judge_memory
from benchmarks.soak.sampler import Sample


def _samples(run_s: float, leak_mib_per_s: float) -> list[Sample]:
    samples = []
    for i in range(int(run_s // 5) + 1):
        t = 5.0 * i
        ingest_pid = 100 if t < 0.35 * run_s else 101  # killed and restarted
        samples.append(
            Sample(
                t=t,
                phase="run",
                stored=240 * int(t),
                rate=240.0,
                lag_mean_s=0.1,
                lag_p99_s=0.4 if i % 7 else math.inf,
                rss={
                    "ingest": (ingest_pid, 130.0 + leak_mib_per_s * t),
                    "care": (200, 125.0),
                    "sim-0": (300, 150.0 + t),  # plotted, never judged
                },
            )
        )
    return samples


def test_judge_memory_is_per_process_and_catches_a_leak() -> None:
    options = SoakOptions(minutes=10, out=Path("unused"))
    flat = judge_memory(_samples(600, 0.0), options)
    # The first ingest process died before half-time: only its successor is judged.
    assert {r.role for r in flat} == {"care", "ingest (pid 101)"}
    assert all(r.passed for r in flat)
    leaking = judge_memory(_samples(600, 0.1), options)  # 6 MiB a minute: +30 MiB
    assert not next(r for r in leaking if r.role.startswith("ingest")).passed


def test_report_shows_failures_faults_and_plots(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from benchmarks.soak.report import write_report

    options = SoakOptions(minutes=10, out=tmp_path)
    samples = _samples(600, 0.05)
    result = SoakResult(
        options=options,
        services=["ingest", "care", "api"],
        samples=samples,
        faults=[
            FaultEvent(120, "broker_restart", "mosquitto stopped and started"),
            FaultEvent(300, "database_outage", "PostgreSQL stopped for 30 s", 330),
            FaultEvent(200, "sim_device_outage", "1 device link(s) cut (cp-000001)", 215),
        ],
        sim_faults={"device_outage": 1},
        checks=[reconcile_readings(1000, StoredCounts(999, 999))],
        flatness=[judge_flatness("ingest", [s.t for s in samples], [1.0] * len(samples), 0)],
        figures={"sent": 1000, "stored_rows": 999},
    )
    assert not result.passed
    text = write_report(result, tmp_path).read_text()
    assert "**FAILED**" in text
    assert "lost 1" in text
    assert "| 300 | 330 | database_outage |" in text
    for name in ("rate.png", "lag.png", "rss.png"):
        assert (tmp_path / name).stat().st_size > 5_000
        assert f"]({name})" in text
