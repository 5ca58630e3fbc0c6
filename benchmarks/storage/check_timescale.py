"""Check each telemetry layout against a real TimescaleDB (the PGlite WebAssembly build).

Run: ``.venv/bin/python -m benchmarks.storage.check_timescale``

For every layout: hypertable (1-day chunks) with its unique key, a continuous
aggregate of hourly avg/min/max per device and metric (the long form, which
needs ``unnest``/``jsonb_each`` for the wide layouts, and a positional form
without set-returning functions where the layout allows one), then
compression with ``segmentby`` device_id and the before/after sizes.

Only correctness and sizes come from here: the WebAssembly build is far slower
than native PostgreSQL, so no timings are reported. Needs ``node`` and
``tools/timescaledb-wasm`` (``make setup``).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from .layouts import MAX_POSITIONS
from .workload import METRIC_NAMES, generate

HELPER_DIR = Path(__file__).resolve().parents[2] / "tools" / "timescaledb-wasm"


@contextmanager
def timescale_server() -> Iterator[str]:
    node = shutil.which("node")
    if node is None or not (HELPER_DIR / "node_modules" / "@unni-craftsman" / "pglite").is_dir():
        raise SystemExit("needs node and tools/timescaledb-wasm (make setup)")
    proc = subprocess.Popen(
        [node, "server.mjs", "0"],
        cwd=HELPER_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.startswith("READY "):
                port = int(line.split()[1])
                break
            if not line and proc.poll() is not None:
                break
        if port is None:
            raise RuntimeError("TimescaleDB WebAssembly server did not start")
        yield f"postgresql://fleetcare:fleetcare@127.0.0.1:{port}/postgres?sslmode=disable"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _connect(url: str) -> psycopg.Connection[Any]:
    for _ in range(50):
        try:
            conn = psycopg.connect(url, autocommit=True, connect_timeout=5)
            conn.prepare_threshold = None  # one shared backend: no named prepared statements
            return conn
        except psycopg.OperationalError:
            time.sleep(0.1)
    raise RuntimeError("cannot connect to the TimescaleDB WebAssembly server")


HOURLY = "time_bucket('1 hour', {t}time) AS bucket"

# (layout, value columns DDL, unique key, compress segmentby, fill-from-narrow SQL, caggs)
LAYOUTS: list[dict[str, Any]] = [
    {
        "name": "narrow",
        "cols": "metric_id int NOT NULL, value float8 NOT NULL",
        "indexes": ["(device_id, seq, metric_id, time)", "(device_id, metric_id, time)"],
        "segmentby": "device_id, metric_id",
        "fill": None,
        "caggs": {
            "long form": "SELECT device_id, metric_id, "
            + HOURLY.format(t="")
            + ", avg(value) AS a, min(value) AS mn,"
            " max(value) AS mx FROM narrow GROUP BY device_id, metric_id, bucket",
        },
    },
    {
        "name": "wide_array",
        "cols": "metric_ids int2[] NOT NULL, vals float8[] NOT NULL",
        "indexes": ["(device_id, time, seq)"],
        "segmentby": "device_id",
        "fill": "INSERT INTO wide_array SELECT time, device_id, seq,"
        " array_agg(metric_id::int2 ORDER BY metric_id),"
        " array_agg(value ORDER BY metric_id) FROM narrow GROUP BY time, device_id, seq",
        "caggs": {
            "long form, unnest in FROM": "SELECT w.device_id, u.metric_id, "
            + HOURLY.format(t="w.")
            + ", avg(u.v) AS a, min(u.v) AS mn, max(u.v) AS mx FROM wide_array w CROSS JOIN LATERAL"
            " unnest(w.metric_ids, w.vals) AS u(metric_id, v)"
            " GROUP BY w.device_id, u.metric_id, bucket",
        },
    },
    {
        "name": "wide_array_cat",
        "cols": "vals float8[] NOT NULL",
        "indexes": ["(device_id, time, seq)"],
        "segmentby": "device_id",
        "fill": "INSERT INTO wide_array_cat SELECT time, device_id, seq,"
        " array_agg(value ORDER BY metric_id)"
        " FROM narrow GROUP BY time, device_id, seq",
        "caggs": {
            "long form, unnest in FROM": "SELECT w.device_id, u.pos, "
            + HOURLY.format(t="w.")
            + ", avg(u.v) AS a, min(u.v) AS mn, max(u.v) AS mx"
            " FROM wide_array_cat w CROSS JOIN LATERAL"
            " unnest(w.vals) WITH ORDINALITY AS u(v, pos) GROUP BY w.device_id, u.pos, bucket",
            "positional, no set-returning function": "SELECT device_id, "
            + HOURLY.format(t="")
            + ", "
            + ", ".join(
                f"avg(vals[{p}]) AS a{p}, min(vals[{p}]) AS mn{p}, max(vals[{p}]) AS mx{p}"
                for p in range(1, MAX_POSITIONS + 1)
            )
            + " FROM wide_array_cat GROUP BY device_id, bucket",
        },
    },
    {
        "name": "wide_jsonb",
        "cols": "vals jsonb NOT NULL",
        "indexes": ["(device_id, time, seq)"],
        "segmentby": "device_id",
        "fill": "INSERT INTO wide_jsonb SELECT n.time, n.device_id, n.seq,"
        " jsonb_object_agg(c.name, n.value)"
        " FROM narrow n JOIN metric_name c USING (metric_id) GROUP BY n.time, n.device_id, n.seq",
        "caggs": {
            "long form, jsonb_each in FROM": "SELECT w.device_id, e.key, "
            + HOURLY.format(t="w.")
            + ", avg(e.value::float8) AS a, min(e.value::float8) AS mn,"
            " max(e.value::float8) AS mx FROM wide_jsonb w"
            " CROSS JOIN LATERAL jsonb_each(w.vals) AS e GROUP BY w.device_id, e.key, bucket",
            "per known key, no set-returning function": "SELECT device_id, "
            + HOURLY.format(t="")
            + ", "
            + ", ".join(f"avg((vals->>'{n}')::float8) AS a_{n}" for n in METRIC_NAMES[:8])
            + " FROM wide_jsonb GROUP BY device_id, bucket",
        },
    },
]


def _describe(conn: psycopg.Connection[Any], view: str, long_form: bool) -> str:
    """Row count, and for the long form a checksum to compare across layouts."""
    if long_form:
        row = conn.execute(
            f"SELECT count(*), round(sum(a)::numeric, 3), round(sum(mn)::numeric, 3),"
            f" round(sum(mx)::numeric, 3) FROM {view}"
        ).fetchone()
        assert row is not None
        return f"works: {row[0]} rows, sum(avg)={row[1]}, sum(min)={row[2]}, sum(max)={row[3]}"
    row = conn.execute(f"SELECT count(*) FROM {view}").fetchone()
    assert row is not None
    return f"works: {row[0]} rows"


def _one_line(e: BaseException) -> str:
    msg = str(e).strip().splitlines()
    diag = getattr(e, "diag", None)
    detail = getattr(diag, "message_detail", None) if diag else None
    return (msg[0] if msg else type(e).__name__) + (f" (detail: {detail})" if detail else "")


def run(args: argparse.Namespace) -> list[str]:
    wl = generate(args.devices, args.readings, 8, 60, 4, seed=args.seed)
    out: list[str] = []
    with timescale_server() as url, _connect(url) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        version = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
        ).fetchone()
        pg = conn.execute("SHOW server_version").fetchone()
        out.append(
            f"TimescaleDB {version[0] if version else '?'} on PostgreSQL {pg[0] if pg else '?'}"
            f" (PGlite WebAssembly); data: {wl.devices} devices x {wl.readings_per_device} readings"
            f" x 8 metrics, 1/min, 3 decimals"
        )
        conn.execute("CREATE TABLE metric_name (metric_id int PRIMARY KEY, name text NOT NULL)")
        conn.execute(
            "INSERT INTO metric_name SELECT i, n"
            " FROM unnest(%s::text[]) WITH ORDINALITY AS u(n, i)",
            [list(METRIC_NAMES)],
        )
        out.append("")
        out.append("| layout | continuous aggregate | result |")
        out.append("|---|---|---|")
        sizes: list[str] = []
        for lay in LAYOUTS:
            t = lay["name"]
            conn.execute(
                f"CREATE TABLE {t} (time timestamptz NOT NULL, device_id bigint NOT NULL,"
                f" seq bigint NOT NULL, {lay['cols']})"
            )
            conn.execute(f"SELECT create_hypertable('{t}', by_range('time', INTERVAL '1 day'))")
            for i, cols in enumerate(lay["indexes"]):
                unique = "UNIQUE " if i == 0 else ""
                conn.execute(f"CREATE {unique}INDEX {t}_i{i} ON {t} {cols}")
            if lay["fill"] is None:
                _fill_narrow(conn, wl)
            else:
                conn.execute(lay["fill"])
            n = conn.execute(f"SELECT count(*) FROM {t}").fetchone()
            for label, query in lay["caggs"].items():
                view = f"{t}_cagg_{abs(hash(label)) % 10000}"
                try:
                    conn.execute(
                        f"CREATE MATERIALIZED VIEW {view} WITH (timescaledb.continuous) AS {query}"
                        " WITH NO DATA"
                    )
                    conn.execute(f"CALL refresh_continuous_aggregate('{view}', NULL, NULL)")
                    result = _describe(conn, view, label.startswith("long form"))
                    conn.execute(f"DROP MATERIALIZED VIEW {view}")
                except psycopg.Error as e:
                    result = "refused: " + _one_line(e)
                out.append(f"| {t} | {label} | {result} |")
            conn.execute(
                f"ALTER TABLE {t} SET (timescaledb.compress, timescaledb.compress_segmentby ="
                f" '{lay['segmentby']}', timescaledb.compress_orderby = 'time')"
            )
            conn.execute(f"SELECT compress_chunk(c) FROM show_chunks('{t}') AS c")
            stats = conn.execute(
                "SELECT before_compression_total_bytes, after_compression_total_bytes"
                f" FROM hypertable_compression_stats('{t}')"
            ).fetchone()
            assert stats is not None
            assert n is not None
            b, a = int(stats[0]), int(stats[1])
            sizes.append(
                f"| {t} | {lay['segmentby']} | {n[0]:,} | {b / wl.readings:,.0f}"
                f" | {a / wl.readings:,.1f}"
                f" | {b / a:.1f}x |"
            )
        out.append("")
        out.append("Compression (orderby time); bytes per reading, heap + indexes:")
        out.append("")
        out.append(
            "| layout | segmentby | rows | B/reading uncompressed | B/reading compressed | ratio |"
        )
        out.append("|---|---|---|---|---|---|")
        out.extend(sizes)
    return out


def _fill_narrow(conn: psycopg.Connection[Any], wl: Any) -> None:
    """Insert the workload into ``narrow`` (no COPY here: arrays through unnest, in chunks)."""
    ts: list[Any] = []
    dev: list[int] = []
    seq: list[int] = []
    mid: list[int] = []
    val: list[float] = []

    def flush() -> None:
        conn.execute(
            "INSERT INTO narrow SELECT * FROM unnest(%s::timestamptz[], %s::int8[], %s::int8[],"
            " %s::int4[],"
            " %s::float8[])",
            [ts, dev, seq, mid, val],
        )
        for lst in (ts, dev, seq, mid, val):
            lst.clear()

    for t in range(wl.readings_per_device):
        for d in range(wl.devices):
            device = d + 1
            for m, v in zip(wl.model_of(device).metric_ids, wl.values[t][d], strict=True):
                ts.append(wl.times[t])
                dev.append(device)
                seq.append(t + 1)
                mid.append(m)
                val.append(v)
        if len(ts) >= 20000:
            flush()
    if ts:
        flush()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--devices", type=int, default=20)
    p.add_argument(
        "--readings", type=int, default=2880, help="readings per device (2880 = two days at 1/min)"
    )
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    lines = run(args)
    print("\n".join(lines))
    print(f"\n(checked in {time.perf_counter() - t0:.0f}s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
