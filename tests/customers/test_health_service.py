"""The health service: changed and stale accounts are scored pass after pass, a restart
misses nothing and scores nothing twice, a failed pass is survived, and the command runs
once or continuously."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from typer.testing import CliRunner

from backend.customers.health_service import HealthPass, HealthRefresher
from backend.customers.health_weights import load_weights
from backend.storage.migrator import apply_migrations
from fleetcare.cli.app import build_app

pytestmark = pytest.mark.services

DAY = timedelta(hours=24)
MINUTE = timedelta(minutes=1)


def _accounts(url: str) -> dict[str, int]:
    """Three live accounts, one erased and one prospect (never scored)."""
    apply_migrations(url, dialect="postgres")
    with psycopg.connect(url) as conn:
        for key, status in [
            ("acme", "active"),
            ("globex", "active"),
            ("initech", "churned"),
            ("gone", "erased"),
            ("maybe", "prospect"),
        ]:
            conn.execute(
                "INSERT INTO accounts (customer_key, name, status) VALUES (%s, %s, %s)",
                (key, key.title(), status),
            )
        rows = conn.execute("SELECT customer_key, id FROM accounts").fetchall()
    return {str(key): int(account_id) for key, account_id in rows}


def _scored(url: str) -> dict[int, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT account_id, count(*) FROM health_scores GROUP BY account_id"
        ).fetchall()
    return {int(a): int(n) for a, n in rows}


def test_changed_and_stale_accounts_are_scored_and_nothing_else(fresh_database_url: str) -> None:
    ids = _accounts(fresh_database_url)
    live = {ids["acme"], ids["globex"], ids["initech"]}
    refresher = HealthRefresher(fresh_database_url, load_weights(), rescore_after=DAY)
    t0 = datetime.now(UTC) + timedelta(hours=1)  # passes as of moments after every insert

    first = refresher.run_once(now=t0)
    assert (first.changed, first.stale, first.scored) == (0, 3, 3)
    assert _scored(fresh_database_url) == dict.fromkeys(live, 1)

    assert refresher.run_once(now=t0 + MINUTE).scored == 0  # nothing new, nothing stale

    # A ticket stamped before that pass started but committed after it (as a scoring pass
    # stamps its predictions with its start): the overlap still finds it.
    with psycopg.connect(fresh_database_url) as conn:
        conn.execute(
            "INSERT INTO service_tickets (source_id, account_id, org_ref, category, opened_at) "
            "VALUES ('T-1', %s, 'acme', 'complaint', %s)",
            (ids["acme"], t0 + MINUTE - timedelta(seconds=2)),
        )
    ticket = refresher.run_once(now=t0 + 2 * MINUTE)
    assert (ticket.changed, ticket.stale, ticket.scored) == (1, 0, 1)
    # At the default cadence (10 minutes, longer than the overlap) the next pass sees the
    # ticket once more, and the one after it no more.
    again = refresher.run_once(now=t0 + 12 * MINUTE)
    assert (again.changed, again.scored) == (1, 1)
    assert refresher.run_once(now=t0 + 22 * MINUTE).scored == 0
    assert _scored(fresh_database_url)[ids["acme"]] == 3

    # A restarted service starts from the newest stored score, with the same overlap.
    restarted = HealthRefresher(fresh_database_url, load_weights(), rescore_after=DAY)
    assert restarted.run_once(now=t0 + 32 * MINUTE).scored == 0

    # A day later every live account is rescored, with or without new data.
    day_later = restarted.run_once(now=t0 + DAY + 15 * MINUTE)
    assert (day_later.changed, day_later.stale) == (0, 3)
    assert _scored(fresh_database_url) == {ids["acme"]: 4, ids["globex"]: 2, ids["initech"]: 2}


def test_a_restart_misses_no_change(fresh_database_url: str) -> None:
    ids = _accounts(fresh_database_url)
    t0 = datetime.now(UTC) + timedelta(hours=1)
    HealthRefresher(fresh_database_url, load_weights(), rescore_after=DAY).run_once(now=t0)
    with psycopg.connect(fresh_database_url) as conn:  # while the service was down
        conn.execute(
            "INSERT INTO service_tickets (source_id, account_id, org_ref, category, opened_at) "
            "VALUES ('T-2', %s, 'globex', 'complaint', %s)",
            (ids["globex"], t0 + 30 * MINUTE),
        )
    restarted = HealthRefresher(fresh_database_url, load_weights(), rescore_after=DAY)
    done = restarted.run_once(now=t0 + 2 * 60 * MINUTE)
    assert (done.changed, done.scored) == (1, 1)
    assert _scored(fresh_database_url)[ids["globex"]] == 2


def test_a_failed_pass_is_counted_and_the_next_one_runs(fresh_database_url: str) -> None:
    unreachable = HealthRefresher(
        "postgresql://nobody@127.0.0.1:1/none", load_weights(), rescore_after=DAY,
        connect_timeout_s=1,
    )  # fmt: skip
    stop = threading.Event()
    passes: list[HealthPass] = []
    threading.Timer(2.5, stop.set).start()
    unreachable.run(1.0, stop, passes.append)
    assert unreachable.passes == 0 and unreachable.failures >= 2 and passes == []


def test_the_health_command_runs_continuously(
    fresh_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _accounts(fresh_database_url)
    monkeypatch.setenv("FLEETCARE_DATABASE_URL", fresh_database_url)
    runner, app = CliRunner(), build_app()
    refused = runner.invoke(app, ["accounts", "health", "--continuous", "--since", "2026-01-01"])
    assert refused.exit_code == 2 and "--continuous scores as of each pass" in refused.output
    looped = runner.invoke(
        app, ["accounts", "health", "--continuous", "--interval", "1", "--duration", "2.5"]
    )
    assert looped.exit_code == 0, looped.output
    assert "0 failed" in looped.output
    scored = _scored(fresh_database_url)  # live accounts only, each at least once
    assert set(scored) == {ids[k] for k in ("acme", "globex", "initech")}
