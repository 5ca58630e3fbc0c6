"""The soak's verdicts on synthetic samples: each one must be able to fail."""

from __future__ import annotations

import math
import random

import pytest

from benchmarks.soak.checks import (
    DownlinkLedger,
    FlatnessRule,
    StoredCounts,
    WebhookLedger,
    downlink_check,
    fitted_rise,
    judge_flatness,
    memory_check,
    reconcile_readings,
    ticket_check,
    webhook_check,
)
from benchmarks.soak.metrics_text import HistogramState, parse_metrics, window_lag
from benchmarks.soak.processes import role_of_up_child
from benchmarks.soak.schedule import fault_schedule


def test_reconciliation_passes_only_when_every_reading_is_stored_once() -> None:
    assert reconcile_readings(1000, StoredCounts(rows=1000, distinct_readings=1000)).passed
    lost = reconcile_readings(1000, StoredCounts(rows=998, distinct_readings=998))
    assert not lost.passed
    assert lost.numbers["lost"] == 2
    duplicated = reconcile_readings(1000, StoredCounts(rows=1003, distinct_readings=1000))
    assert not duplicated.passed
    assert duplicated.numbers["duplicated"] == 3
    assert not reconcile_readings(0, StoredCounts(0, 0)).passed, "an empty run proves nothing"


def _series(n: int, level: float, slope_per_s: float, noise: float, seed: int = 1):
    rng = random.Random(seed)
    times = [5.0 * i for i in range(n)]
    return times, [level + slope_per_s * t + rng.gauss(0, noise) for t in times]


def test_flat_noisy_memory_passes() -> None:
    times, rss = _series(120, 180.0, 0.0, 2.0)
    result = judge_flatness("ingest", times, rss, window_start=0.0)
    assert result.judged
    assert result.passed, result


def test_a_leak_fails_even_inside_noise() -> None:
    # 180 MiB growing 1 MiB a minute for 10 minutes: +10 MiB within ±2 MiB noise.
    times, rss = _series(120, 180.0, 1 / 60, 2.0)
    result = judge_flatness("ingest", times, rss, window_start=0.0, rule=FlatnessRule(8, 0.02))
    assert not result.passed
    assert result.fitted_rise_mib == pytest.approx(10, abs=2)
    assert not memory_check([result]).passed


def test_warm_up_before_the_window_is_not_judged() -> None:
    times, rss = _series(120, 180.0, 0.0, 1.0)
    rss = [v + 0.5 * min(t, 300.0) for t, v in zip(times, rss, strict=True)]  # warms up
    assert not judge_flatness("care", times, rss, window_start=0.0).passed
    assert judge_flatness("care", times, rss, window_start=300.0).passed


def test_too_few_samples_are_reported_not_passed_silently() -> None:
    result = judge_flatness("api", [0.0, 5.0], [100.0, 300.0], window_start=0.0)
    assert not result.judged
    check = memory_check([result])
    assert not check.passed
    assert "too few samples" in check.detail


def test_fitted_rise_is_slope_times_span() -> None:
    assert fitted_rise([0, 10, 20], [100, 105, 110]) == pytest.approx(10)
    assert fitted_rise([0], [1]) == 0


def test_ticket_check() -> None:
    assert ticket_check(0, tickets=12, predictions_at_risk=40).passed
    assert not ticket_check(1, tickets=12, predictions_at_risk=40).passed
    assert not ticket_check(0, tickets=0, predictions_at_risk=40).passed


def test_webhooks_every_key_received_once_or_dropped_by_key() -> None:
    outbox = {"a": True, "b": True}
    assert webhook_check(WebhookLedger(outbox, {"a": 1, "b": 2}, 0)).passed
    missing = webhook_check(WebhookLedger(outbox, {"a": 1}, 0))
    assert not missing.passed
    assert missing.numbers["missing"] == 1
    assert not webhook_check(WebhookLedger({"a": True, "b": False}, {"a": 1, "b": 1}, 0)).passed
    assert not webhook_check(WebhookLedger(outbox, {"a": 1, "b": 1}, 1)).passed
    assert not webhook_check(WebhookLedger(outbox, {"a": 1, "b": 1, "zz": 1}, 0)).passed
    assert not webhook_check(WebhookLedger({}, {}, 0)).passed


def test_lag_per_interval_from_two_scrapes_and_across_a_restart() -> None:
    text = "\n".join(
        [
            "# TYPE lag histogram",
            'lag_bucket{le="0.1"} 90',
            'lag_bucket{le="1"} 99',
            'lag_bucket{le="+Inf"} 100',
            "lag_sum 12.5",
            "lag_count 100",
        ]
    )
    values = parse_metrics(text)
    assert values["lag_count"] == 100
    before = HistogramState(50, 2.5, ((0.1, 50), (1.0, 50), (math.inf, 50)))
    after = HistogramState(100, 12.5, ((0.1, 90), (1.0, 99), (math.inf, 100)))
    lag = window_lag(before, after)
    assert lag is not None
    assert lag.observations == 50
    assert lag.mean_s == pytest.approx(0.2)
    assert lag.p99_bound_s == math.inf  # 1 of 50 past the last finite bucket
    restarted = window_lag(after, HistogramState(10, 0.5, ((0.1, 10), (1.0, 10), (math.inf, 10))))
    assert restarted is not None
    assert restarted.observations == 10
    assert restarted.p99_bound_s == 0.1
    assert window_lag(after, after) is None


def test_schedule_spreads_every_fault_kind_over_the_run() -> None:
    plan = fault_schedule(1800, database_outage_s=30)
    kinds = [f.kind for f in plan]
    assert kinds.count("broker_restart") == 2
    assert kinds.count("ingest_kill") == 2
    assert kinds.count("database_outage") == 1
    assert all(0 < f.at_s < 1800 for f in plan)
    assert fault_schedule(120)[2].duration_s == 20  # at most a sixth of a short run
    with pytest.raises(ValueError):
        fault_schedule(0)


def test_up_children_are_recognised_by_their_sub_command() -> None:
    assert role_of_up_child(["python", "-m", "fleetcare.cli", "ingest", "run"]) == "ingest"
    assert role_of_up_child(["python", "-m", "fleetcare.cli", "api", "serve"]) == "api"
    assert role_of_up_child(["python", "-m", "fleetcare.cli", "score"]) == "score"
    assert (
        role_of_up_child(["python", "-m", "fleetcare.cli", "accounts", "health", "--continuous"])
        == "health"
    )
    assert (
        role_of_up_child(["python", "-m", "fleetcare.cli", "db", "maintain", "--continuous"])
        == "maintain"
    )
    assert role_of_up_child(["python", "-m", "fleetcare.cli", "up"]) is None


def _downlink(**changes: object) -> DownlinkLedger:
    fields: dict[str, object] = {
        "configs_sent": {1: (2, "applied"), 2: (1, "rejected")},
        "twins": {1: (2, 2, "applied"), 2: (1, 1, "rejected")},
        "commands_accepted": ["c1", "c2"],
        "command_status": {"c1": "ok", "c2": "ok"},
    }
    fields.update(changes)
    return DownlinkLedger(**fields)  # type: ignore[arg-type]


def test_downlink_passes_only_when_everything_came_back_as_owed() -> None:
    assert downlink_check(_downlink()).passed
    behind = downlink_check(_downlink(twins={1: (2, 1, "applied"), 2: (1, 1, "rejected")}))
    assert not behind.passed
    assert behind.numbers["configs_behind"] == 1
    wrong = downlink_check(_downlink(twins={1: (2, 2, "applied"), 2: (1, 1, "applied")}))
    assert not wrong.passed, "a config the firmware must refuse was reported applied"
    assert wrong.numbers["configs_wrong_status"] == 1
    lost_config = downlink_check(_downlink(twins={1: (2, 2, "applied")}))
    assert not lost_config.passed
    assert lost_config.numbers["configs_lost"] == 1
    unanswered = downlink_check(_downlink(command_status={"c1": "ok", "c2": "sent"}))
    assert not unanswered.passed
    assert unanswered.numbers["commands_not_ok"] == 1
    expired = downlink_check(_downlink(command_status={"c1": "ok", "c2": "expired"}))
    assert not expired.passed
    lost = downlink_check(_downlink(command_status={"c1": "ok"}))
    assert not lost.passed
    assert lost.numbers["commands_lost"] == 1
    unheard_of = downlink_check(_downlink(command_status={"c1": "ok", "c2": "ok", "c3": "ok"}))
    assert not unheard_of.passed, "a command queued twice by a retry"
    assert unheard_of.numbers["commands_unheard_of"] == 1


def test_downlink_with_nothing_accepted_proves_nothing() -> None:
    assert not downlink_check(_downlink(configs_sent={}, twins={})).passed
    assert not downlink_check(_downlink(commands_accepted=[], command_status={})).passed
    # A later version the API committed (a timed-out request) must still come back.
    newer = _downlink(twins={1: (3, 2, "applied"), 2: (1, 1, "rejected")})
    assert not downlink_check(newer).passed
