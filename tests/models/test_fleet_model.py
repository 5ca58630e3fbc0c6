"""The fleet model: features of gapped windows, ONNX parity, the registry, alert quality."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.errors import ManifestError
from models.fleet.alerts import NO_ALERT, ScoredDays, alert_quality, mode_confusion
from models.fleet.dataset import build_samples
from models.fleet.export import export_and_register, history_sha256, parity_error
from models.fleet.features import feature_names, window_features
from models.fleet.graph import fleet_graph
from models.fleet.labels import Outcomes
from models.fleet.scorer import FleetScorer
from models.registry import FileRegistry
from tests.scoring.tiny_fleet import CONFIG, MACHINE_TYPE, TinyFleet, make_tiny_fleet

METRICS = ("speed_rpm", "flow_m3h", "strainer_dp_bar", "bearing_temp_c", "power_kw",
           "ambient_temp_c")  # fmt: skip


@pytest.fixture(scope="module")
def tiny_fleet(tmp_path_factory: pytest.TempPathFactory) -> TinyFleet:
    return make_tiny_fleet(tmp_path_factory.mktemp("fleet"))


def _window(days: int = 20) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = np.array([1400.0, 80.0, 0.2, 45.0, 20.0, 18.0], dtype=np.float32)
    return (base * (1 + 0.02 * rng.normal(size=(1, days, len(METRICS))))).astype(np.float32)


def test_a_gap_is_skipped_not_read_as_zeros() -> None:
    full = _window()
    gapped = full.copy()
    gapped[0, 16:] = np.nan  # offline for the last four days
    zeros = full.copy()
    zeros[0, 16:] = 0.0
    f_full, f_gap, f_zero = (window_features(w, METRICS)[0] for w in (full, gapped, zeros))
    names = feature_names(METRICS)
    assert len(names) == f_full.size
    # Features of a window with a gap stay close to those of the full window ...
    change = [i for i, n in enumerate(names) if n.endswith("__change")]
    assert np.nanmax(np.abs(f_gap[change] - f_full[change])) < 0.1
    # ... and the level is that of the last observed days; zeros would read as a standstill.
    level = names.index("speed_rpm__raw__level")
    assert f_gap[level] == pytest.approx(f_full[level], rel=0.05)
    assert f_zero[level] == 0.0


def _demand_window(clog_from: int, rise: float, days: int = 28) -> np.ndarray:
    """A machine whose demand swings day to day (power and pressure drop move together);
    from ``clog_from`` on, the pressure drop grows by ``rise`` of its size a day."""
    rng = np.random.default_rng(4)
    demand = rng.uniform(0.3, 1.0, days)
    w = np.empty((1, days, len(METRICS)), dtype=np.float32)
    w[0, :, 0] = 1400.0
    w[0, :, 1] = 80.0 * demand
    w[0, :, 4] = 5.0 + 20.0 * demand
    clog = 1.0 + rise * np.maximum(np.arange(days) - clog_from, 0)
    w[0, :, 2] = (0.05 + 0.25 * demand) * clog
    w[0, :, 3] = 45.0
    w[0, :, 5] = 18.0
    return w


def test_vs_load_sees_a_clogging_strainer_through_the_swings_of_demand() -> None:
    names = feature_names(METRICS)
    clean, clogging = (window_features(_demand_window(22, r), METRICS)[0] for r in (0.0, 0.03))
    vs_load = names.index("strainer_dp_bar__per_speed__vs_load")
    growth = names.index("strainer_dp_bar__per_speed__vs_load_growth")
    # Demand alone: the fit against the load explains the pressure drop ...
    assert abs(clean[vs_load]) < 1e-6
    assert clean[growth] == pytest.approx(0.0, abs=1e-6)
    # ... so a few per cent of clogging stands out, and it is growing.
    assert clogging[vs_load] > 0.03
    assert clogging[growth] > 0.5
    # The plain change against the baseline is swamped by demand in the same windows.
    change = names.index("strainer_dp_bar__per_speed__change")
    spread = np.std([window_features(_demand_window(22, 0.0)[:, : 28 - k], METRICS)[0][change]
                     for k in range(6)])  # fmt: skip
    assert spread > clogging[vs_load] / 3


def test_a_window_without_readings_gives_missing_features() -> None:
    empty = np.full((1, 20, len(METRICS)), np.nan, dtype=np.float32)
    assert np.isnan(window_features(empty, METRICS)).all()
    with pytest.raises(ValueError, match="windows must be"):
        window_features(np.zeros((1, 20, 3), dtype=np.float32), METRICS)


def test_onnx_matches_scikit_learn_with_missing_values(
    tiny_fleet: TinyFleet, tmp_path: Path
) -> None:
    import onnx

    model = tiny_fleet.model
    samples = build_samples(tiny_fleet.daily, tiny_fleet.outcomes, CONFIG.window_days,
                            CONFIG.horizon_days, CONFIG.rul_cap_days, gap_share=0.5, seed=3)  # fmt: skip
    rng = np.random.default_rng(1)
    features = samples.features[rng.choice(samples.features.shape[0], 500)]
    features[rng.random(features.shape) < 0.1] = np.nan
    proto = fleet_graph(model.classifiers, model.regressor, CONFIG.rul_cap_days * 24,
                        model.anomaly, len(model.feature_names))  # fmt: skip
    path = tmp_path / "model.onnx"
    onnx.save(proto, str(path))
    assert parity_error(model, path, features) < 1e-4


def test_registered_model_scores_with_onnxruntime(tiny_fleet: TinyFleet, tmp_path: Path) -> None:
    registry = FileRegistry(tmp_path / "registry")
    samples = build_samples(tiny_fleet.daily, tiny_fleet.outcomes, CONFIG.window_days,
                            CONFIG.horizon_days, CONFIG.rul_cap_days)  # fmt: skip
    entry = export_and_register(
        tiny_fleet.model, registry, "tiny fleet",
        history_sha256(tiny_fleet.history, MACHINE_TYPE), samples.features[::9],
    )  # fmt: skip
    manifest = registry.manifest(entry.name, entry.version)
    assert manifest.name == f"fleet-{MACHINE_TYPE}"
    assert manifest.horizon == CONFIG.horizon_days * 24
    assert manifest.extra["alert_thresholds"] == tiny_fleet.model.thresholds
    assert manifest.metrics["onnx_parity_max_abs"] < 1e-4
    scorer = FleetScorer(entry.directory)
    window = np.full((2, CONFIG.window_days, len(scorer.metrics)), np.nan, dtype=np.float32)
    window[0] = tiny_fleet.daily.means[0, 40 : 40 + CONFIG.window_days]
    scores = scorer.score(window)
    assert 0.0 <= scores[0].risk <= 1.0 and scores[0].rul_hours >= 0
    assert set(scores[0].mode_probabilities) == set(manifest.failure_modes)
    assert len(scores[0].contributions) == 3
    # A device without any reading still gets a well-defined score, not a crash.
    assert 0.0 <= scores[1].risk <= 1.0
    (entry.directory / "model.onnx").write_bytes(b"tampered")
    with pytest.raises(ManifestError):
        FleetScorer(entry.directory)


def test_alert_quality_counts_correct_censored_and_lead_time() -> None:
    days = 40
    to_failure = np.full((2, days, 1), np.inf)
    to_failure[0, :30, 0] = 30 - np.arange(1, 31)  # device 0 fails at day 30
    to_repair = np.full((2, days, 1), np.inf)
    to_repair[1, :20, 0] = 20 - np.arange(1, 21)  # device 1 repaired at day 20
    outcomes = Outcomes(
        modes=("wear",),
        to_failure=to_failure,
        to_repair=to_repair,
        down=np.zeros((2, days), dtype=bool),
        remaining=np.broadcast_to(days - np.arange(1, days + 1.0), (2, days)).copy(),
        failures=((0, 30.0, "wear"), (1, 35.0, "random_thing")),
    )
    probability = np.zeros((2 * days, 1), dtype=np.float32)
    probability[10:29] = 0.9  # device 0 alerts from day 10: days 10-14 are too early
    probability[days + 15 : days + 19] = 0.9  # device 1 alerts before its repair: censored
    device = np.repeat(np.arange(2), days)
    day = np.tile(np.arange(days), 2)
    quality = {q.mode: q for q in alert_quality(
        ScoredDays(device, day, probability), outcomes, {"wear": 0.5}, 14.0, 0)}  # fmt: skip
    wear = quality["wear"]
    assert (wear.alerts, wear.correct_alerts, wear.censored_alerts) == (23, 14, 4)
    assert wear.precision == pytest.approx(14 / 19)
    assert (wear.failures, wear.detected, wear.recall) == (1, 1, 1.0)
    assert wear.median_lead_days == pytest.approx(14.0)
    assert quality["random_thing"].recall == 0.0


def test_mode_confusion_names_the_most_probable_mode_on_the_first_alerting_day() -> None:
    """Device 0's clog is first alerted on a day the bearing is the most probable mode;
    device 1's bearing is named right; device 2's random fault is alerted as a bearing, but
    counts in neither figure of ``named_right``; device 3's clog has no alert in the
    horizon before it (its alerts came too early)."""
    days, modes = 40, ("bearing", "clog")
    outcomes = Outcomes(
        modes=modes,
        to_failure=np.full((4, days, 2), np.inf),
        to_repair=np.full((4, days, 2), np.inf),
        down=np.zeros((4, days), dtype=bool),
        remaining=np.broadcast_to(days - np.arange(1, days + 1.0), (4, days)).copy(),
        failures=((0, 30.0, "clog"), (1, 25.0, "bearing"), (2, 20.0, "drive_fault"),
                  (3, 35.0, "clog")),
    )  # fmt: skip
    probability = np.zeros((4 * days, 2), dtype=np.float32)
    probability[20] = (0.6, 0.55)  # device 0, day 20: the clog alerts, the bearing is top
    probability[21:29] = (0.1, 0.9)  # then the clog is top
    probability[days + 15 : days + 24] = (0.8, 0.2)  # device 1
    probability[2 * days + 12] = (0.8, 0.3)  # device 2: an alert no mode could be right for
    probability[3 * days + 5 : 3 * days + 10] = (0.1, 0.9)  # device 3: 25 days early
    device = np.repeat(np.arange(4), days)
    day = np.tile(np.arange(days), 4)
    confusion = mode_confusion(
        ScoredDays(device, day, probability), outcomes, {"bearing": 0.7, "clog": 0.5}, 14.0, 0
    )
    assert confusion.true_modes == ["bearing", "clog", "drive_fault"]
    assert confusion.alerted_modes == ["bearing", "clog", NO_ALERT]
    assert confusion.counts == [[1, 0, 0], [1, 0, 1], [1, 0, 0]]
    assert confusion.named_right() == (1, 2)
    assert confusion.runner_up == 1  # device 0's clog was second on its first alert


def test_a_rare_mode_is_learnt_not_inverted() -> None:
    """40 positives in 100,000 rows, standing out on one feature among heavy-tailed ones:
    without the L2 penalty on leaf values boosting diverges and scores every positive 0.0
    and some negatives 1.0."""
    from dataclasses import replace

    from models.fleet.training import FleetConfig, fleet_classifier

    rng = np.random.default_rng(0)
    rows, positives = 100_000, 40
    x = rng.normal(size=(rows, 20)).astype(np.float32)
    x[:, 1:5] = rng.standard_cauchy(size=(rows, 4))
    x[:positives, 0] += 4.0
    y = np.zeros(rows, dtype=np.int8)
    y[:positives] = 1
    p = fleet_classifier(FleetConfig()).fit(x, y).predict_proba(x)[:, 1]
    assert np.median(p[:positives]) > 0.9 and p[positives:].max() < 0.1
    unpenalised = fleet_classifier(replace(FleetConfig(), l2_regularization=0.0))
    q = unpenalised.fit(x, y).predict_proba(x)[:, 1]
    assert np.median(q[:positives]) < 0.1  # the failure the penalty prevents
