"""The API while its database is away: 503 with Retry-After, and no dead connection served
after the database dropped them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from fastapi.testclient import TestClient

from backend.api.app import create_app, open_pool
from backend.settings import BackendSettings
from fleetcare.embedded.ports import free_tcp_port
from tests.api.fleet import Fleet


@pytest.fixture
def unreachable_client() -> Iterator[TestClient]:
    url = f"postgresql://postgres@127.0.0.1:{free_tcp_port()}/nothing?connect_timeout=1"
    pool = open_pool(url, wait_s=0.5)
    pool.open(wait=False)
    try:
        app = create_app(BackendSettings(database_url=url), pool=pool)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client
    finally:
        pool.close(timeout=1)


def test_no_database_is_a_503_with_retry_after_not_a_hang(
    unreachable_client: TestClient,
) -> None:
    started = time.monotonic()
    response = unreachable_client.get("/health")
    assert time.monotonic() - started < 5, "a request must not wait for the database long"
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json()["error"]["code"] == "unavailable"
    keyed = unreachable_client.get("/devices", headers={"X-API-Key": "fc_abcdef012345_x"})
    assert keyed.status_code == 503, "checking a key needs the database too"


def test_connections_the_database_dropped_are_not_served(api_database_url: str) -> None:
    pool = open_pool(api_database_url, min_size=2, max_size=2, wait_s=2.0)
    pool.open(wait=True)
    try:
        app = create_app(BackendSettings(database_url=api_database_url), pool=pool)
        with TestClient(app, raise_server_exceptions=False) as client:
            assert client.get("/health").status_code == 200
            with psycopg.connect(api_database_url, autocommit=True) as admin:
                dropped = admin.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ).fetchone()
            assert dropped is not None and dropped[0] >= 2
            answers = [client.get("/health").status_code for _ in range(4)]
            assert answers == [200] * 4, "a request got a connection the database had closed"
    finally:
        pool.close(timeout=1)


def test_more_concurrent_requests_than_connections_all_get_answers(
    api_database_url: str, fleet: Fleet
) -> None:
    """Each request uses one connection for its key and its work: with a pool of 2, 8
    requests at once are served in turn (holding one while waiting for a second deadlocked
    until the pool gave up)."""
    pool = open_pool(api_database_url, min_size=2, max_size=2, wait_s=3.0)
    pool.open(wait=True)
    try:
        app = create_app(BackendSettings(database_url=api_database_url), pool=pool)
        headers = fleet.headers("admin")
        with (
            TestClient(app, raise_server_exceptions=False) as client,
            ThreadPoolExecutor(8) as threads,
        ):
            answers = list(
                threads.map(lambda _: client.get("/devices", headers=headers).status_code, range(8))
            )
        assert answers == [200] * 8
    finally:
        pool.close(timeout=1)


def test_a_browser_gets_a_page_that_waits_for_the_database(
    unreachable_client: TestClient,
) -> None:
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    page = unreachable_client.get("/console/tickets", headers=browser)
    assert page.status_code == 503
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["Retry-After"] == "5"
    assert '<meta http-equiv="refresh" content="5">' in page.text
    form = unreachable_client.post("/console/tickets/1/self-test", headers=browser, data={})
    assert form.status_code == 503
    assert "refresh" not in form.text, "reloading would send the form's POST as a GET"
    assert "send it again" in form.text
    api = unreachable_client.get("/health", headers={"Accept": "application/json"})
    assert api.json()["error"]["code"] == "unavailable"
