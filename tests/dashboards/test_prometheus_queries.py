"""Every Prometheus query of every dashboard reads metrics that the service it belongs to
really exposes: the ingest service (private broker, fresh database) and the scoring worker
(fresh database, empty registry) are started here and their /metrics scraped; a metric is
looked up in the scrape of the service its name prefix belongs to."""

from __future__ import annotations

import http.client
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest

from backend.ingest.metrics import IngestMetrics, serving
from backend.ingest.service import IngestWorker, WorkerTarget
from backend.ingest.settings import IngestSettings
from backend.scoring.metrics import PREFIX as SCORING_PREFIX
from backend.scoring.worker import ScoringWorker
from backend.storage.migrator import apply_migrations
from dashboards.catalog import all_dashboards
from dashboards.model import PromTarget
from dashboards.promql import metric_names, series_family
from fleetcare.embedded.mosquitto import MosquittoBroker, MosquittoConfig
from models.registry import FileRegistry

pytestmark = pytest.mark.services

Families = dict[str, str]
SERVICE_PREFIXES = {"ingest": "fleetcare_ingest_", "scoring": SCORING_PREFIX}


def _families(text: str) -> Families:
    """``# TYPE`` lines of an exposition: family name -> type."""
    return {
        parts[2]: parts[3]
        for parts in (line.split() for line in text.splitlines())
        if len(parts) == 4 and parts[:2] == ["#", "TYPE"]
    }


def _scrape(port: int) -> Families:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        assert response.status == 200
        return _families(response.read().decode())
    finally:
        connection.close()


def _prometheus_targets() -> list[tuple[str, str, PromTarget]]:
    return [
        (dashboard.uid, panel.title, target)
        for dashboard in all_dashboards()
        for panel in dashboard.panels
        for target in panel.targets
        if isinstance(target, PromTarget)
    ]


def _service_of(name: str) -> str | None:
    return next((s for s, prefix in SERVICE_PREFIXES.items() if name.startswith(prefix)), None)


def _unexposed(
    targets: list[tuple[str, str, PromTarget]], exposed: dict[str, Families]
) -> list[str]:
    """One line per metric of ``targets`` that its service does not expose."""
    missing = []
    for uid, title, target in targets:
        names = metric_names(target.expr)
        if not names:
            missing.append(f"{uid} / {title}: no metric in {target.expr!r}")
        for name in sorted(names):
            service = _service_of(name)
            if service is None:
                missing.append(f"{uid} / {title}: {name} belongs to no scraped service")
                continue
            families = exposed[service]
            histograms = {family for family, kind in families.items() if kind == "histogram"}
            family = series_family(name, histograms)
            if family not in families:
                missing.append(f"{uid} / {title}: {name} is not in the {service} /metrics")
            elif name.endswith("_bucket") and families[family] != "histogram":
                missing.append(f"{uid} / {title}: {name} is not a histogram's bucket")
    return missing


def _ingest_families(database_url: str, broker: MosquittoBroker) -> Families:
    settings = IngestSettings(
        metrics_port=0, metrics_host="127.0.0.1", client_id_prefix=f"dash-{secrets.token_hex(3)}"
    )
    worker = IngestWorker(
        WorkerTarget(database_url, broker.url, f"dash{secrets.token_hex(3)}"), settings
    )
    worker.start()
    try:
        assert worker.receiver is not None and worker.receiver.wait_connected(10)
        assert worker.metrics_endpoint is not None
        return _scrape(worker.metrics_endpoint.port)
    finally:
        worker.stop()


def _scoring_families(database_url: str, registry_dir: Path) -> Families:
    """The scoring worker's /metrics as ``fleetcare score`` serves it, after one pass."""
    worker = ScoringWorker(database_url, FileRegistry(registry_dir))
    # ``fleetcare score`` serves the scoring metrics with the ingest's endpoint the same way.
    with serving(cast(IngestMetrics, worker.metrics), "127.0.0.1", 0) as port:
        assert port is not None
        worker.run_once()
        return _scrape(port)


@pytest.fixture
def exposed(
    fresh_database_url: str,
    mosquitto_factory: Callable[..., MosquittoBroker],
    tmp_path: Path,
) -> dict[str, Families]:
    extra = ("user root",) if os.geteuid() == 0 else ()
    broker = mosquitto_factory(MosquittoConfig(extra_lines=extra))
    apply_migrations(fresh_database_url)
    return {
        "ingest": _ingest_families(fresh_database_url, broker),
        "scoring": _scoring_families(fresh_database_url, tmp_path / "registry"),
    }


def test_every_prometheus_query_names_a_metric_its_service_exposes(
    exposed: dict[str, Families],
) -> None:
    targets = _prometheus_targets()
    assert targets, "the dashboards have Prometheus panels"
    assert _unexposed(targets, exposed) == []
    read = {_service_of(name) for _, _, t in targets for name in metric_names(t.expr)}
    assert read == set(SERVICE_PREFIXES), "every scraped service is read by some panel"


def test_a_misspelt_or_foreign_metric_is_reported(exposed: dict[str, Families]) -> None:
    def target(expr: str) -> list[tuple[str, str, PromTarget]]:
        return [("uid", "panel", PromTarget(expr))]

    scoring = "fleetcare_scoring_"
    good = f"histogram_quantile(0.95, sum by (le) (rate({scoring}batch_seconds_bucket[1h])))"
    assert _unexposed(target(good), exposed) == []
    assert _unexposed(target(good.replace("batch_seconds", "batch_second")), exposed) == [
        f"uid / panel: {scoring}batch_second_bucket is not in the scoring /metrics"
    ]
    # An ingest metric under the scoring prefix is not found in the scoring worker's scrape.
    assert _unexposed(target(f"rate({scoring}acks_total[5m])"), exposed) == [
        f"uid / panel: {scoring}acks_total is not in the scoring /metrics"
    ]
    assert _unexposed(target(f"rate({scoring}passes_total_bucket[5m])"), exposed) == [
        f"uid / panel: {scoring}passes_total_bucket is not in the scoring /metrics"
    ]
    assert _unexposed(target("rate(up[5m])"), exposed) == [
        "uid / panel: up belongs to no scraped service"
    ]


def test_the_scoring_panels_read_the_scoring_worker_not_the_predictions_table() -> None:
    fleet_ops = next(d for d in all_dashboards() if d.uid == "fleetcare-fleet-ops")
    panels = {panel.title: panel for panel in fleet_ops.panels}
    for title in ("Scoring latency", "Predictions made"):
        targets = panels[title].targets
        assert targets and all(isinstance(t, PromTarget) for t in targets), title
        assert all(
            name.startswith(SCORING_PREFIX)
            for t in targets
            if isinstance(t, PromTarget)
            for name in metric_names(t.expr)
        ), title


def test_the_metric_extractor_sees_through_promql() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le) (rate(a_seconds_bucket{job="x"}[5m]))) '
        "/ on (job) group_left sum without (instance) (rate(b_total[$__rate_interval]))"
    )
    assert metric_names(expr) == {"a_seconds_bucket", "b_total"}
    assert series_family("a_seconds_bucket", {"a_seconds"}) == "a_seconds"
    assert series_family("c_bucket", set()) == "c_bucket"
