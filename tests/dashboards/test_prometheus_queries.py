"""Every Prometheus query of every dashboard reads metrics a running service exposes: the
ingest service is started here (private broker, fresh database) and its /metrics scraped."""

from __future__ import annotations

import http.client
import os
import secrets
from collections.abc import Callable

import pytest

from backend.ingest.service import IngestWorker, WorkerTarget
from backend.ingest.settings import IngestSettings
from backend.storage.migrator import apply_migrations
from dashboards.catalog import all_dashboards
from dashboards.model import PromTarget
from dashboards.promql import metric_names, series_family
from fleetcare.embedded.mosquitto import MosquittoBroker, MosquittoConfig

pytestmark = pytest.mark.services


def _families(text: str) -> dict[str, str]:
    """``# TYPE`` lines of an exposition: family name -> type."""
    return {
        parts[2]: parts[3]
        for parts in (line.split() for line in text.splitlines())
        if len(parts) == 4 and parts[:2] == ["#", "TYPE"]
    }


def _prometheus_targets() -> list[tuple[str, str, PromTarget]]:
    return [
        (dashboard.uid, panel.title, target)
        for dashboard in all_dashboards()
        for panel in dashboard.panels
        for target in panel.targets
        if isinstance(target, PromTarget)
    ]


@pytest.fixture
def exposed(
    fresh_database_url: str, mosquitto_factory: Callable[..., MosquittoBroker]
) -> dict[str, str]:
    extra = ("user root",) if os.geteuid() == 0 else ()
    broker = mosquitto_factory(MosquittoConfig(extra_lines=extra))
    apply_migrations(fresh_database_url)
    settings = IngestSettings(
        metrics_port=0, metrics_host="127.0.0.1", client_id_prefix=f"dash-{secrets.token_hex(3)}"
    )
    worker = IngestWorker(
        WorkerTarget(fresh_database_url, broker.url, f"dash{secrets.token_hex(3)}"), settings
    )
    worker.start()
    try:
        assert worker.receiver is not None and worker.receiver.wait_connected(10)
        assert worker.metrics_endpoint is not None
        connection = http.client.HTTPConnection(
            "127.0.0.1", worker.metrics_endpoint.port, timeout=5
        )
        try:
            connection.request("GET", "/metrics")
            response = connection.getresponse()
            assert response.status == 200
            return _families(response.read().decode())
        finally:
            connection.close()
    finally:
        worker.stop()


def test_every_prometheus_query_names_an_exposed_metric(exposed: dict[str, str]) -> None:
    targets = _prometheus_targets()
    assert targets, "the dashboards have Prometheus panels"
    histograms = {name for name, kind in exposed.items() if kind == "histogram"}
    for uid, title, target in targets:
        names = metric_names(target.expr)
        assert names, f"{uid} / {title}: no metric in {target.expr!r}"
        for name in names:
            family = series_family(name, histograms)
            assert family in exposed, f"{uid} / {title}: {name} is not exposed by the ingest"
            if name.endswith("_bucket"):
                assert exposed[family] == "histogram", f"{uid} / {title}: {name}"


def test_the_metric_extractor_sees_through_promql() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le) (rate(a_seconds_bucket{job="x"}[5m]))) '
        "/ on (job) group_left sum without (instance) (rate(b_total[$__rate_interval]))"
    )
    assert metric_names(expr) == {"a_seconds_bucket", "b_total"}
    assert series_family("a_seconds_bucket", {"a_seconds"}) == "a_seconds"
    assert series_family("c_bucket", set()) == "c_bucket"
