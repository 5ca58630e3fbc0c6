"""Measure telemetry table layouts on plain PostgreSQL: ingest, size, reads, rollup.

Run: ``.venv/bin/python -m benchmarks.storage.bench_layout``

Creates its own database (``fleetcare_bench_layout_<pid>_<rand>``) on the given
server, drops it at the end (also on failure or Ctrl-C), and prints Markdown
tables of medians over ``--reps`` repetitions. Each repetition loads every
layout once, in a rotated order, from one Python process with psycopg binary
COPY, ``--batch`` readings per transaction.

Read timings are end-to-end from the client (execute + fetch), each query on a
device not read before in that repetition ("cold-ish": not in PostgreSQL's
buffers from a read; the OS page cache is warm, nothing is dropped). Rollups
are reduced to one row on the server so that the result transfer is not timed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import signal
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import orjson
import psycopg
from psycopg import sql
from psycopg.types.json import set_json_dumps, set_json_loads

from .layouts import Layout, all_layouts, iter_readings
from .workload import Workload, generate

Result = dict[str, Any]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


# ---------------------------------------------------------------------------
# one layout, one repetition
# ---------------------------------------------------------------------------


def _ingest(conn: psycopg.Connection[Any], layout: Layout, wl: Workload, batch: int) -> float:
    copy_sql = f"COPY {layout.table} ({layout.columns}) FROM STDIN (FORMAT BINARY)"
    t0 = time.perf_counter()
    with conn.cursor() as cur:
        for lo in range(0, wl.readings, batch):
            hi = min(lo + batch, wl.readings)
            with conn.transaction(), cur.copy(copy_sql) as cp:
                cp.set_types(layout.types)
                layout.write(cp, iter_readings(wl, lo, hi))
    return time.perf_counter() - t0


def _timed_query(conn: psycopg.Connection[Any], q: tuple[str, dict[str, Any]]) -> tuple[float, int]:
    t0 = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute(q[0], q[1])
        rows = cur.fetchall()
    return (time.perf_counter() - t0) * 1000.0, len(rows)


def _explain(conn: psycopg.Connection[Any], q: tuple[str, dict[str, Any]]) -> tuple[int, float]:
    """Shared buffers touched (hit + read) and server execution time (ms) of one execution.

    From EXPLAIN (ANALYZE, BUFFERS, TIMING OFF): no result transfer, no client decoding.
    """
    with conn.cursor() as cur:
        cur.execute("EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, FORMAT JSON) " + q[0], q[1])
        row = cur.fetchone()
    assert row is not None
    out = row[0][0]
    plan = out["Plan"]
    buffers = int(plan.get("Shared Hit Blocks", 0)) + int(plan.get("Shared Read Blocks", 0))
    return buffers, float(out["Execution Time"])


def _plan_text(conn: psycopg.Connection[Any], q: tuple[str, dict[str, Any]]) -> str:
    with conn.cursor() as cur:
        cur.execute("EXPLAIN (COSTS OFF) " + q[0], q[1])
        return "\n".join(r[0] for r in cur.fetchall())


def run_layout(
    dsn: str,
    layout: Layout,
    wl: Workload,
    devices: list[int],
    args: argparse.Namespace,
    rng: random.Random,
) -> Result:
    res: Result = {"layout": layout.name}
    with psycopg.connect(dsn, autocommit=True) as conn:
        set_json_dumps(orjson.dumps, conn)
        set_json_loads(orjson.loads, conn)
        if not args.jit:
            conn.execute("SET jit = off")
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(layout.table)))
        for stmt in layout.ddl():
            conn.execute(stmt)
        conn.execute("CHECKPOINT")  # start each load with no dirty backlog from the last one

        secs = _ingest(conn, layout, wl, args.batch)
        res["ingest_s"] = secs
        res["readings_per_s"] = wl.readings / secs
        res["values_per_s"] = wl.metric_values / secs

        t0 = time.perf_counter()
        conn.execute(f"VACUUM (ANALYZE) {layout.table}")
        res["vacuum_analyze_s"] = time.perf_counter() - t0

        row = conn.execute(
            "SELECT pg_total_relation_size(%(t)s::regclass), pg_table_size(%(t)s::regclass),"
            " pg_indexes_size(%(t)s::regclass), (SELECT count(*) FROM " + layout.table + ")",
            {"t": layout.table},
        ).fetchone()
        assert row is not None
        total, table, indexes, nrows = row
        res.update(total_bytes=total, table_bytes=table, index_bytes=indexes, rows=nrows)
        res["bytes_per_reading_total"] = total / wl.readings
        res["bytes_per_reading_table"] = table / wl.readings

        hi = wl.end
        lo = hi - timedelta(days=7)
        nq = args.queries
        one_devs, all_devs = devices[:nq], devices[nq : 2 * nq]
        extra = devices[2 * nq :]
        positions = [rng.randrange(wl.metrics_per_reading) for _ in range(nq + len(extra))]

        one = [
            _timed_query(conn, layout.window_one(wl, d, p, lo, hi))
            for d, p in zip(one_devs, positions[:nq], strict=True)
        ]
        full = [_timed_query(conn, layout.window_all(d, lo, hi)) for d in all_devs]
        res["window_one_ms"] = _median([t for t, _ in one])
        res["window_one_rows"] = one[0][1]
        res["window_all_ms"] = _median([t for t, _ in full])
        res["window_all_rows"] = full[0][1]

        # Buffers touched and server-side time of cold-ish window reads, on devices not read yet.
        half = len(extra) // 2
        e_one = [
            _explain(conn, layout.window_one(wl, d, p, lo, hi))
            for d, p in zip(extra[:half], positions[nq : nq + half], strict=True)
        ]
        e_all = [_explain(conn, layout.window_all(d, lo, hi)) for d in extra[half:]]
        res["window_one_buffers"] = _median([b for b, _ in e_one])
        res["window_all_buffers"] = _median([b for b, _ in e_all])
        res["window_one_server_ms"] = _median([t for _, t in e_one])
        res["window_all_server_ms"] = _median([t for _, t in e_all])
        if args.plans:
            res["plan_window_one"] = _plan_text(conn, layout.window_one(wl, extra[0], 0, lo, hi))
            res["plan_window_all"] = _plan_text(conn, layout.window_all(extra[0], lo, hi))

        day_lo = wl.times[0].replace(hour=0, minute=0, second=0)
        day_hi = day_lo + timedelta(days=1)

        def rollup_runs(make: Callable[[Any, Any], tuple[str, dict[str, Any]]]) -> float:
            return _median(
                [_timed_query(conn, make(day_lo, day_hi))[0] for _ in range(args.rollup_runs)]
            )

        res["rollup_ms"] = rollup_runs(layout.rollup)
        if args.plans:
            res["plan_rollup"] = _plan_text(conn, layout.rollup(day_lo, day_hi))
        if layout.supports_positional_rollup:
            res["rollup_positional_ms"] = rollup_runs(layout.rollup_positional)

        conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(layout.table)))
    return res


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------

COLUMNS: list[tuple[str, str, str]] = [
    # key, header, format
    ("readings_per_s", "readings/s", "{:,.0f}"),
    ("values_per_s", "values/s", "{:,.0f}"),
    ("bytes_per_reading_total", "B/reading total", "{:,.0f}"),
    ("bytes_per_reading_table", "B/reading heap", "{:,.0f}"),
    ("window_one_ms", "7-day window, 1 metric (ms)", "{:.2f}"),
    ("window_all_ms", "7-day window, all metrics (ms)", "{:.2f}"),
    ("rollup_ms", "hourly rollup, 1 day, all devices (ms)", "{:,.0f}"),
]

RATIO_COLUMNS: list[tuple[str, str]] = [
    ("values_per_s", "ingest rate"),
    ("bytes_per_reading_total", "size total"),
    ("bytes_per_reading_table", "size heap"),
    ("window_one_ms", "window 1 metric"),
    ("window_all_ms", "window all"),
    ("rollup_ms", "rollup"),
]


def summarise(results: list[Result]) -> dict[str, Result]:
    by: dict[str, list[Result]] = {}
    for r in results:
        by.setdefault(r["layout"], []).append(r)
    out: dict[str, Result] = {}
    for name, rs in by.items():
        med: Result = {"reps": len(rs)}
        for k in rs[0]:
            if isinstance(rs[0][k], (int, float)) and not isinstance(rs[0][k], bool):
                vals = [r[k] for r in rs if k in r]
                med[k] = _median(vals)
                med[k + "__min"] = min(vals)
                med[k + "__max"] = max(vals)
        out[name] = med
    return out


def markdown(summary: dict[str, Result], layouts: dict[str, Layout], wl: Workload) -> str:
    lines = []
    hdr = ["layout", *(h for _, h, _ in COLUMNS), "buffers/window (1 metric / all)"]
    lines.append("| " + " | ".join(hdr) + " |")
    lines.append("|" + "---|" * len(hdr))
    for name, m in summary.items():
        cells = [f"{layouts[name].title}"]
        for key, _, fmt in COLUMNS:
            cell = fmt.format(m[key])
            if key == "rollup_ms" and "rollup_positional_ms" in m:
                cell += f" (unnest); {m['rollup_positional_ms']:,.0f} (positional, no unnest)"
            cells.append(cell)
        cells.append(f"{m['window_one_buffers']:.0f} / {m['window_all_buffers']:.0f}")
        lines.append("| " + " | ".join(cells) + " |")

    base = summary.get("narrow")
    if base is not None:
        lines.append("")
        lines.append(
            "Ratios vs narrow (medians; ingest: >1 is faster;"
            " size and times: <1 is smaller/faster):"
        )
        lines.append("")
        hdr2 = ["layout", *(h for _, h in RATIO_COLUMNS)]
        lines.append("| " + " | ".join(hdr2) + " |")
        lines.append("|" + "---|" * len(hdr2))
        for name, m in summary.items():
            cells = [layouts[name].title]
            for key, _ in RATIO_COLUMNS:
                r = f"{m[key] / base[key]:.2f}x"
                if key == "rollup_ms" and "rollup_positional_ms" in m:
                    r += f" ({m['rollup_positional_ms'] / base[key]:.2f}x positional)"
                cells.append(r)
            lines.append("| " + " | ".join(cells) + " |")

    lines.append("")
    lines.append(
        "Window reads, end to end (client: execute + fetch + decode) vs server only"
        " (EXPLAIN ANALYZE execution time, other devices), ms; rows returned:"
    )
    lines.append("")
    lines.append(
        "| layout | 1 metric: end to end | 1 metric: server | all metrics: end to end"
        " | all metrics: server | rows (1 metric / all) |"
    )
    lines.append("|---|---|---|---|---|---|")
    for name, m in summary.items():
        lines.append(
            f"| {name} | {m['window_one_ms']:.2f} | {m['window_one_server_ms']:.2f}"
            f" | {m['window_all_ms']:.2f} | {m['window_all_server_ms']:.2f}"
            f" | {m['window_one_rows']:,.0f} / {m['window_all_rows']:,.0f} |"
        )
    lines.append("")
    lines.append("Spread over repetitions (min-max):")
    lines.append("")
    lines.append(
        "| layout | values/s | window 1 metric ms | window all ms | rollup ms"
        " | VACUUM ANALYZE s | rows |"
    )
    lines.append("|---|---|---|---|---|---|---|")
    for name, m in summary.items():

        def rng(k: str, fmt: str, m: Result = m) -> str:
            return f"{fmt.format(m[k + '__min'])}-{fmt.format(m[k + '__max'])}"

        lines.append(
            f"| {name} | {rng('values_per_s', '{:,.0f}')} | {rng('window_one_ms', '{:.2f}')}"
            f" | {rng('window_all_ms', '{:.2f}')} | {rng('rollup_ms', '{:,.0f}')}"
            f" | {m['vacuum_analyze_s']:.1f} | {m['rows']:,.0f} |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--dsn",
        default="host=127.0.0.1 port=5432 user=postgres dbname=postgres",
        help="server to create the scratch database on (needs CREATEDB)",
    )
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument(
        "--readings", type=int, default=400, help="readings per device (default 400: 3.2 M values)"
    )
    p.add_argument("--metrics", type=int, default=8, help="metrics per reading (6-12 realistic)")
    p.add_argument("--interval-s", type=int, default=60, help="seconds between a device's readings")
    p.add_argument(
        "--models", type=int, default=4, help="device models with overlapping metric sets"
    )
    p.add_argument("--batch", type=int, default=5000, help="readings per COPY transaction")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument(
        "--queries", type=int, default=20, help="window queries per kind per layout and rep"
    )
    p.add_argument(
        "--rollup-runs", type=int, default=3, help="rollup executions per layout and rep (median)"
    )
    p.add_argument("--layouts", default=",".join(all_layouts()), help="comma-separated subset")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--jit", action="store_true", help="keep the server's JIT setting (default: SET jit = off)"
    )
    p.add_argument(
        "--plans", action="store_true", help="print the query plans of the last repetition"
    )
    p.add_argument("--json", metavar="PATH", help="also write raw per-repetition results as JSON")
    return p.parse_args(argv)


def _server_facts(admin_dsn: str) -> dict[str, str]:
    names = (
        "server_version",
        "shared_buffers",
        "max_parallel_workers_per_gather",
        "jit",
        "autovacuum",
        "synchronous_commit",
    )
    facts: dict[str, str] = {}
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        for name in names:
            row = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()
            facts[name] = str(row[0]) if row else "?"
    facts["version"] = facts.pop("server_version")
    return facts


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    layouts_all = all_layouts()
    chosen = [s.strip() for s in args.layouts.split(",") if s.strip()]
    unknown = [c for c in chosen if c not in layouts_all]
    if unknown:
        log(f"unknown layouts: {unknown}; known: {list(layouts_all)}")
        return 2
    layouts = {c: layouts_all[c] for c in chosen}

    def _terminate(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)  # unwind so the scratch database is dropped

    signal.signal(signal.SIGTERM, _terminate)

    t_start = time.perf_counter()
    wl = generate(
        args.devices, args.readings, args.metrics, args.interval_s, args.models, seed=args.seed
    )
    log(
        f"workload: {wl.devices} devices x {wl.readings_per_device} readings"
        f" x {wl.metrics_per_reading} metrics"
        f" = {wl.readings:,} readings, {wl.metric_values:,} values, every {wl.interval_s}s"
        f" ({wl.times[0]:%Y-%m-%d %H:%M} .. {wl.end:%Y-%m-%d %H:%M} UTC), generated in"
        f" {time.perf_counter() - t_start:.1f}s"
    )
    facts = _server_facts(args.dsn)
    dbname = f"fleetcare_bench_layout_{os.getpid()}_{secrets.token_hex(3)}"
    admin = psycopg.connect(args.dsn, autocommit=True)
    results: list[Result] = []
    try:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        log(f"created database {dbname}")
        dsn = psycopg.conninfo.make_conninfo(args.dsn, dbname=dbname)
        n_extra = 10
        for rep in range(args.reps):
            rng = random.Random(args.seed * 1000 + rep)
            need = 2 * args.queries + n_extra
            devices = rng.sample(range(1, wl.devices + 1), min(wl.devices, need))
            while (
                len(devices) < need
            ):  # fewer devices than queries: reuse (then no longer cold-ish)
                devices += devices[: need - len(devices)]
            order = list(layouts.values())
            k = rep % len(order)
            order = order[k:] + order[:k]  # rotate so no layout always runs first
            for lay in order:
                r = run_layout(dsn, lay, wl, devices, args, rng)
                r["rep"] = rep
                results.append(r)
                log(
                    f"rep {rep + 1}/{args.reps} {lay.name:15s} {r['values_per_s']:>11,.0f} values/s"
                    f" {r['bytes_per_reading_total']:7.0f} B/reading"
                    f"  window1 {r['window_one_ms']:6.2f} ms"
                    f"  windowall {r['window_all_ms']:6.2f} ms  rollup {r['rollup_ms']:7.0f} ms"
                    + (
                        f" / positional {r['rollup_positional_ms']:.0f} ms"
                        if "rollup_positional_ms" in r
                        else ""
                    )
                )
    finally:
        try:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )
            log(f"dropped database {dbname}")
        finally:
            admin.close()

    summary = summarise(results)
    elapsed = time.perf_counter() - t_start
    print(
        f"Workload: {wl.devices} devices x {wl.readings_per_device} readings"
        f" (every {wl.interval_s}s) x {wl.metrics_per_reading} metrics"
        f" = {wl.readings:,} readings / {wl.metric_values:,} values;"
        f" COPY batches of {args.batch} readings; medians of {args.reps} reps;"
        f" nproc={os.cpu_count()};"
        f" PostgreSQL {facts['version']} (shared_buffers={facts['shared_buffers']},"
        f" max_parallel_workers_per_gather={facts['max_parallel_workers_per_gather']},"
        f" jit={'server default' if args.jit else 'off'}); run took {elapsed:.0f}s."
    )
    print()
    print(markdown(summary, layouts, wl))
    if args.plans:
        last = {r["layout"]: r for r in results}
        for lname, lres in last.items():
            print(f"\n#### {lname}\n```")
            for key in ("plan_window_one", "plan_window_all", "plan_rollup"):
                print(f"-- {key}\n{lres[key]}")
            print("```")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"args": vars(args), "server": facts, "results": results, "summary": summary},
                f,
                indent=1,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
