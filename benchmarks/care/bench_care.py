"""Care engine and notification delivery, each beside a bare baseline in the same run.

Run: ``nice -n 10 .venv/bin/python -m benchmarks.care.bench_care``
(defaults: 2,000 predictions on 400 devices, 4 concurrent workers, 1,000 notifications).

1. Engine: ``run_once`` over the predictions (context, rules, priority, dedup locks, storm
   control, need, ticket, event, outbox and CSM alert, one savepoint each) against the least
   a ticket needs: per prediction one transaction that reads it and inserts a ticket with
   ``ON CONFLICT DO NOTHING``.
2. Concurrency: ``--workers`` threads, each with its own connection, evaluate the same
   predictions (every need raised ``--workers`` times at once) against one worker alone;
   counts the tickets (must equal the devices at risk).
3. Delivery: the outbox rows sent by the delivery worker to a local HTTP receiver against the
   same signed bodies POSTed straight with httpx (no database).

Creates its own database on ``--server`` (default the local PostgreSQL) and drops it.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import psycopg
from psycopg import sql

from backend.care.delivery import DeliveryWorker
from backend.care.engine import CareEngine
from backend.care.rule_definitions import load_rules_file
from backend.care.rule_store import sync_rules
from backend.care.settings import CareSettings
from backend.care.signing import sign
from backend.storage.migrator import apply_migrations

T0 = datetime(2026, 6, 1, tzinfo=UTC)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _url(server: str, dbname: str) -> str:
    return server.rsplit("/", 1)[0] + "/" + dbname


def seed(conn: psycopg.Connection[Any], devices: int, predictions: int) -> list[int]:
    model = conn.execute(
        "INSERT INTO device_models (name, kind) VALUES ('b', 'pump') RETURNING id"
    ).fetchone()
    assert model is not None
    ids = []
    for a in range(devices // 10):
        account = conn.execute(
            "INSERT INTO accounts (customer_key, name, region) VALUES (%s, %s, 'north')"
            " RETURNING id",
            (f"k{a}", f"a{a}"),
        ).fetchone()
        assert account is not None
        site = conn.execute(
            "INSERT INTO sites (account_id, name, region) VALUES (%s, 's', 'north') RETURNING id",
            (account[0],),
        ).fetchone()
        assert site is not None
        for d in range(10):
            row = conn.execute(
                "INSERT INTO devices (external_id, model_id, account_id, site_id)"
                " VALUES (%s, %s, %s, %s) RETURNING id",
                (f"d{a}-{d}", model[0], account[0], site[0]),
            ).fetchone()
            assert row is not None
            ids.append(int(row[0]))
    prediction_ids = []
    for i in range(predictions):
        device = ids[i % len(ids)]
        risk = 0.9 if (i // len(ids)) % 2 == 0 and i % 2 == 0 else 0.3
        row = conn.execute(
            "INSERT INTO predictions (predicted_at, device_id, window_start, window_end,"
            " horizon_hours, failure_risk, failure_mode) VALUES (%s, %s, %s, %s, 168, %s,"
            " 'bearing_wear') RETURNING id",
            (T0, device, T0 - timedelta(days=1), T0, risk),
        ).fetchone()
        assert row is not None
        prediction_ids.append(int(row[0]))
    sync_rules(conn, load_rules_file(), actor="bench")
    conn.commit()
    return prediction_ids


def reset(conn: psycopg.Connection[Any]) -> None:
    for table in (
        "notification_outbox",
        "alerts",
        "tickets",
        "service_needs",
        "risk_signals",
        "incidents",
        "audit_log",
    ):
        conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))
    conn.execute("UPDATE care_cursors SET last_id = 0")
    conn.commit()


def baseline_tickets(conn: psycopg.Connection[Any], prediction_ids: list[int]) -> float:
    started = time.perf_counter()
    for prediction_id in prediction_ids:
        with conn.transaction():
            row = conn.execute(
                "SELECT device_id, failure_risk, failure_mode FROM predictions WHERE id = %s",
                (prediction_id,),
            ).fetchone()
            assert row is not None
            if row[1] >= 0.7:
                conn.execute(
                    "INSERT INTO tickets (dedup_key, device_id, failure_mode, failure_risk,"
                    " priority) VALUES (%s, %s, %s, %s, 3) ON CONFLICT DO NOTHING",
                    (f"device:{row[0]}:{row[2]}", row[0], row[2], row[1]),
                )
    return time.perf_counter() - started


def concurrent(url: str, settings: CareSettings, ids: list[int], workers: int) -> float:
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def work() -> None:
        engine = CareEngine(settings, clock=lambda: T0)
        try:
            with psycopg.connect(url) as conn:
                barrier.wait()
                for prediction_id in ids:
                    engine.process_prediction(conn, prediction_id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - started


class _Receiver:
    def __init__(self) -> None:
        self.count = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.count += 1
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--devices", type=int, default=400)
    parser.add_argument("--predictions", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--notifications", type=int, default=1000)
    args = parser.parse_args()
    dbname = f"fleetcare_bench_care_{secrets.token_hex(3)}"
    with psycopg.connect(args.server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    url = _url(args.server, dbname)
    settings = CareSettings(
        storm_site_devices=1000,
        storm_account_devices=1000,
        max_tickets_per_site_per_hour=1000,
        max_tickets_per_account_per_hour=1000,
        batch_size=500,
    )
    rows: list[tuple[str, str, str, str]] = []
    try:
        apply_migrations(url, dialect="postgres")
        with psycopg.connect(url) as conn:
            ids = seed(conn, args.devices, args.predictions)
            log(f"seeded {args.devices} devices, {len(ids)} predictions")
            base_s = baseline_tickets(conn, ids)
            base_tickets = conn.execute("SELECT count(*) FROM tickets").fetchone()
            reset(conn)
            started = time.perf_counter()
            report = CareEngine(settings, clock=lambda: T0).run_once(conn)
            engine_s = time.perf_counter() - started
            tickets = conn.execute("SELECT count(*) FROM tickets").fetchone()
            log(f"engine outcomes: {dict(report.outcomes)}")
            assert base_tickets is not None
            assert tickets is not None
            assert tickets[0] == base_tickets[0], (tickets, base_tickets)
            rows.append(
                (
                    f"engine, {len(ids)} predictions ({tickets[0]} tickets)",
                    f"{len(ids) / engine_s:,.0f} predictions/s",
                    f"{len(ids) / base_s:,.0f} predictions/s (read + INSERT ON CONFLICT)",
                    f"{base_s / engine_s:.2f}",
                )
            )
            reset(conn)
            subset = ids[: args.predictions // 4]
            one_s = concurrent(url, settings, subset, 1)
            expected = conn.execute("SELECT count(*) FROM tickets").fetchone()
            reset(conn)
            many_s = concurrent(url, settings, subset, args.workers)
            got = conn.execute("SELECT count(*) FROM tickets").fetchone()
            assert expected is not None
            assert got is not None
            rows.append(
                (
                    f"{args.workers} workers raising the same {len(subset)} needs at once",
                    f"{args.workers * len(subset) / many_s:,.0f} evaluations/s,"
                    f" {got[0]} tickets (expected {expected[0]})",
                    f"{len(subset) / one_s:,.0f} evaluations/s (1 worker)",
                    f"{(args.workers * len(subset) / many_s) / (len(subset) / one_s):.2f}",
                )
            )
            reset(conn)
            receiver = _Receiver()
            hook = conn.execute(
                "INSERT INTO webhooks (url, secret) VALUES (%s, 'bench-secret') RETURNING id",
                (receiver.url,),
            ).fetchone()
            assert hook is not None
            bodies = []
            for i in range(args.notifications):
                payload = {"event": "ticket.opened", "id": f"k{i}", "data": {"n": i}}
                bodies.append(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode())
                conn.execute(
                    "INSERT INTO notification_outbox (channel, webhook_id, event, payload,"
                    " idempotency_key, next_attempt_at) VALUES ('webhook', %s, 'ticket.opened',"
                    " %s, %s, %s)",
                    (hook[0], json.dumps(payload), f"k{i}", T0),
                )
            conn.commit()
            started = time.perf_counter()
            with httpx.Client() as client:
                for i, body in enumerate(bodies):
                    client.post(
                        receiver.url,
                        content=body,
                        headers={
                            "X-Fleetcare-Signature": sign("bench-secret", body),
                            "Idempotency-Key": f"k{i}",
                        },
                    )
            direct_s = time.perf_counter() - started
            receiver.count = 0
            started = time.perf_counter()
            with DeliveryWorker(settings.model_copy(update={"delivery_batch": 200})) as worker:
                while worker.deliver_due(conn).delivered:
                    pass
            outbox_s = time.perf_counter() - started
            assert receiver.count == args.notifications, receiver.count
            rows.append(
                (
                    f"webhook delivery, {args.notifications} notifications",
                    f"{args.notifications / outbox_s:,.0f} /s (outbox, claim, sign, mark)",
                    f"{args.notifications / direct_s:,.0f} /s (signed POSTs, no database)",
                    f"{direct_s / outbox_s:.2f}",
                )
            )
            receiver.server.shutdown()
    finally:
        with psycopg.connect(args.server, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )
    print("| figure | care | baseline | ratio (care / baseline) |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
