"""Customers: identity resolution, quality report, health score and churn models, each side
by side with a baseline in the same run.

Run: ``.venv/bin/python -m benchmarks.customers.bench_customers``
(``--sim-dir DIR`` reuses a simulator output; ``--skip-sim`` / ``--skip-telco``).

1. **Simulated customers** (``fleetcare sim generate``: 2,400 devices, 800 accounts, 540
   days, 30-min readings, seed 11; into a fresh database ``fleetcare_bench_customers_<pid>``
   dropped at the end):
   - identity resolution, pairwise precision and recall against ``identity_map``; baseline:
     exact keys only (domain, VAT id, phone, identical unique name);
   - quality report: conflicts, duplicates and blanks found vs planted;
   - health score ROC AUC (churned vs renewed), scored 30 days before each renewal that has
     at least 120 days of history; baseline: the same measures with equal weights;
   - churn model (logistic, boosted, blend; health measures + weekly usage sequence features),
     stratified 5-fold CV × 3; compared with the health score on the same accounts.
2. **IBM Telco churn** (``$FLEETCARE_DATA_SETS/telco_churn``): stratified 5-fold CV × 3 ROC
   AUC, mean ± std; baseline: logistic regression on the one-hot raw columns; fleetcare:
   the blend on the engineered features.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pyarrow.parquet as pq
from psycopg import sql
from sklearn.metrics import roc_auc_score

from backend.customers.churn_features import FEATURE_NAMES, account_features
from backend.customers.churn_model import cross_validate
from backend.customers.health_measures import gather_inputs, measures_from_inputs
from backend.customers.health_score import combine
from backend.customers.health_weights import MEASURES, HealthWeights, load_weights
from backend.customers.identity import Thresholds
from backend.customers.quality import build_report
from backend.customers.settings import CustomersSettings
from backend.customers.simload import load_simulation, true_account_map
from backend.customers.telco import baseline_features, engineered_features, load_telco
from backend.storage.migrator import apply_migrations
from firmware_sim import SimConfig, generate

SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
SYSTEMS = {"crm": "crm", "erp": "erp", "servicedesk": "service"}


def _database(server: str, name: str) -> str:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base, _, _ = server.rpartition("/")
    return f"{base}/{name}"


def _drop(server: str, name: str) -> None:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _pairs(assign: dict[Any, Any], keys: list[Any]) -> set[frozenset[Any]]:
    groups: dict[Any, list[Any]] = defaultdict(list)
    for key in keys:
        groups[assign.get(key, ("alone", key))].append(key)
    return {frozenset(p) for g in groups.values() for p in itertools.combinations(g, 2)}


def identity_scores(conn: psycopg.Connection, sim_dir: Path) -> dict[str, float]:
    truth_rows = json.loads((sim_dir / "ground_truth" / "identity_map.json").read_text())
    truth = {(SYSTEMS[r["system"]], r["source_id"]): r["account_id"] for r in truth_rows}
    rows = conn.execute(
        "SELECT source, source_id, account_id FROM account_identities "
        "WHERE superseded_at IS NULL AND status = 'matched'"
    ).fetchall()
    predicted = {(s, i): a for s, i, a in rows}
    out: dict[str, float] = {}
    for scope in ("crm", "all"):
        keys = [k for k in truth if scope == "all" or k[0] == scope]
        true_pairs, found = _pairs(truth, keys), _pairs(predicted, keys)
        out[f"{scope}_precision"] = len(true_pairs & found) / max(1, len(found))
        out[f"{scope}_recall"] = len(true_pairs & found) / max(1, len(true_pairs))
    out["in_review"] = float(
        conn.execute(
            "SELECT count(*) FROM account_identities "
            "WHERE superseded_at IS NULL AND status = 'review'"
        ).fetchone()[0]  # type: ignore[index]
    )
    return out


def _load(server: str, name: str, sim_dir: Path, thresholds: Thresholds, *, full: bool) -> str:
    url = _database(server, name)
    apply_migrations(url, "postgres")
    with psycopg.connect(url) as conn:
        if full:
            load_simulation(conn, sim_dir, thresholds=thresholds)
        else:
            from backend.customers.importer import import_file

            for source, file in (
                ("crm", "crm_accounts"),
                ("erp", "erp_customers"),
                ("service", "servicedesk_organisations"),
            ):
                import_file(
                    conn, sim_dir / "exports" / f"{file}.csv", source, thresholds=thresholds
                )  # type: ignore[arg-type]
        conn.commit()
    return url


def simulated(sim_dir: Path, server: str) -> list[str]:
    lines: list[str] = []
    defaults = CustomersSettings()
    tag = f"fleetcare_bench_customers_{os.getpid()}"
    exact_only = _load(
        server, tag + "_exact", sim_dir, Thresholds(match=1.01, review=1.01), full=False
    )
    with psycopg.connect(exact_only) as conn:
        baseline = identity_scores(conn, sim_dir)
    _drop(server, tag + "_exact")
    started = time.perf_counter()
    url = _load(
        server,
        tag,
        sim_dir,
        Thresholds(defaults.match_threshold, defaults.review_threshold),
        full=True,
    )
    load_s = time.perf_counter() - started
    try:
        with psycopg.connect(url) as conn:
            ours = identity_scores(conn, sim_dir)
            lines.append("| identity (pairwise) | exact keys only | fleetcare | ratio |")
            lines.append("|---|---|---|---|")
            for key in ("crm_precision", "crm_recall", "all_precision", "all_recall"):
                lines.append(
                    f"| {key.replace('_', ' ')} | {baseline[key]:.3f} | {ours[key]:.3f} | "
                    f"{ours[key] / max(baseline[key], 1e-9):.2f} |"
                )
            lines.append(
                f"| left for review | {baseline['in_review']:.0f} | {ours['in_review']:.0f} | |"
            )
            lines.append(
                f"\nloading the simulation (import, resolution, usage, events): {load_s:.0f} s\n"
            )
            planted = json.loads((sim_dir / "ground_truth" / "planted_defects.json").read_text())
            report = build_report(conn)
            lines.append("| quality | planted | found |")
            lines.append("|---|---|---|")
            for field, count in planted["conflicts_by_field"].items():
                lines.append(
                    f"| conflicts: {field} | {count} | {report.conflicts_by_field.get(field, 0)} |"
                )
            lines.append(
                f"| CRM duplicates | {planted['crm_duplicates']} | "
                f"{report.duplicates_by_source['crm']} |"
            )
            lines.append(
                f"| blank fields | {sum(planted['missing_by_field'].values())} | "
                f"{sum(report.missing_by_field.values())} |"
            )
            lines += health_and_churn(conn, sim_dir)
    finally:
        _drop(server, tag)
    return lines


def health_and_churn(conn: psycopg.Connection, sim_dir: Path) -> list[str]:
    weights = load_weights()
    equal = HealthWeights(version="equal", weights=dict.fromkeys(MEASURES, 1.0))
    mapping = true_account_map(conn, sim_dir)
    start = datetime.fromisoformat(json.loads((sim_dir / "manifest.json").read_text())["start"])
    labels: list[int] = []
    ours: list[float] = []
    flat: list[float] = []
    rows: list[list[float]] = []
    oracle: list[float] = []
    for outcome in pq.read_table(sim_dir / "ground_truth" / "outcomes.parquet").to_pylist():
        if outcome["outcome"] == "pending" or outcome["account_id"] not in mapping:
            continue
        at = datetime.fromisoformat(outcome["renewal_date"]).replace(tzinfo=UTC) - timedelta(
            days=30
        )
        if at - start < timedelta(days=120):
            continue
        account = mapping[outcome["account_id"]]
        measures = measures_from_inputs(gather_inputs(conn, account, at))
        labels.append(int(outcome["outcome"] == "churn"))
        ours.append(-combine(measures, weights)[0])
        flat.append(-combine(measures, equal)[0])
        features = account_features(conn, account, at)
        rows.append([features[n] for n in FEATURE_NAMES])
        oracle.append(outcome["p_churn"])
    auc_ours, auc_flat = roc_auc_score(labels, ours), roc_auc_score(labels, flat)
    cv = cross_validate(np.asarray(rows), np.asarray(labels), folds=5, repeats=3)
    return [
        f"\n{len(labels)} renewals with ≥ 120 days of history, {sum(labels)} churned\n",
        "| churned vs renewed, ROC AUC | baseline | fleetcare | ratio |",
        "|---|---|---|---|",
        f"| health score (weights {weights.version}) | {auc_flat:.3f} (equal weights) "
        f"| {auc_ours:.3f} | {auc_ours / auc_flat:.2f} |",
        f"| churn model, 5-fold CV × 3 | {auc_ours:.3f} (health score) "
        f"| {cv.mean('blend'):.3f} ± {cv.std('blend'):.3f} (blend); "
        f"logistic {cv.mean('logistic'):.3f} ± {cv.std('logistic'):.3f} "
        f"| {cv.mean('blend') / auc_ours:.2f} |",
        "| reference: the simulator's own churn probability (not observable) | "
        f"| {roc_auc_score(labels, oracle):.3f} | |",
    ]


def telco(data_sets: Path) -> list[str]:
    frame, labels = load_telco(data_sets)
    started = time.perf_counter()
    base = cross_validate(baseline_features(frame).to_numpy(float), labels, folds=5, repeats=3)
    ours = cross_validate(engineered_features(frame).to_numpy(float), labels, folds=5, repeats=3)
    elapsed = time.perf_counter() - started
    lines = [
        "\nIBM Telco churn, stratified 5-fold CV × 3 (15 folds), ROC AUC mean ± std:\n",
        "| model | raw one-hot features | engineered features |",
        "|---|---|---|",
    ]
    for name in ("logistic", "boosted", "blend"):
        lines.append(
            f"| {name} | {base.mean(name):.4f} ± {base.std(name):.4f} "
            f"| {ours.mean(name):.4f} ± {ours.std(name):.4f} |"
        )
    lines.append(
        f"\nfleetcare (blend, engineered) vs baseline (logistic, raw): {ours.mean('blend'):.4f} vs "
        f"{base.mean('logistic'):.4f}, ratio {ours.mean('blend') / base.mean('logistic'):.3f}; "
        f"folds above 0.85: {sum(a >= 0.85 for a in ours.auc['blend'])}/15; "
        f"median {statistics.median(ours.auc['blend']):.4f} ({elapsed:.0f} s)"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim-dir", type=Path, default=None)
    parser.add_argument(
        "--server-url", default=os.environ.get("FLEETCARE_BENCH_SERVER_URL", SERVER)
    )
    parser.add_argument("--skip-sim", action="store_true")
    parser.add_argument("--skip-telco", action="store_true")
    args = parser.parse_args()
    lines = ["# customers benchmark\n"]
    if not args.skip_telco:
        lines += telco(CustomersSettings().data_sets)
    if not args.skip_sim:
        if args.sim_dir is None:
            with tempfile.TemporaryDirectory() as tmp:
                sim_dir = Path(tmp) / "sim"
                generate(
                    SimConfig(devices=2400, accounts=800, days=540, seed=11, interval_s=1800),
                    sim_dir,
                )
                lines += [
                    "\n## simulated customers (seed 11, 800 accounts)\n",
                    *simulated(sim_dir, args.server_url),
                ]
        else:
            lines += ["\n## simulated customers\n", *simulated(args.sim_dir, args.server_url)]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
