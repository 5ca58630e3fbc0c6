"""cProfile of the ingest's hot path without MQTT: decode → prepare (pack) → COPY.

``python -m benchmarks.ingest.profile_hot_path [--messages 4000]`` builds the load
generator's 50-reading batches (8 metrics), writes them through a :class:`BatchWriter`
into a fresh database (dropped at the end) in batches of 400 messages, and prints where
the time goes. A short local run; the figures are shares, not rates.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import secrets
import time

import psycopg
from psycopg import sql

from backend.ingest.loadgen import FleetPublisher, FleetSpec, register_fleet
from backend.ingest.metrics import IngestMetrics
from backend.ingest.pending import Inbound
from backend.ingest.service import build_writer, database_dialect, tune_gc_for_throughput
from backend.ingest.settings import IngestSettings
from backend.storage.migrator import apply_migrations

SHARED_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", default=SHARED_SERVER)
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--sort", default="cumulative", help="pstats order: cumulative, tottime…")
    args = parser.parse_args(argv)
    name = f"fleetcare_profile_{secrets.token_hex(3)}"
    with psycopg.connect(args.server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = args.server.rsplit("/", 1)[0] + "/" + name
    try:
        apply_migrations(url)
        spec = FleetSpec(prefix="prof", devices=200)
        register_fleet(url, spec)
        source = FleetPublisher("mqtt://127.0.0.1:1", "prof", spec)  # builds, never connects
        messages = [
            Inbound(*source.message(i % spec.devices)[:2], mid=i) for i in range(args.messages)
        ]
        settings = IngestSettings(metrics_port=None)
        writer = build_writer(url, "prof", settings, database_dialect(url), IngestMetrics())
        tune_gc_for_throughput()
        writer.write(messages[:100])  # caches and partitions
        profile = cProfile.Profile()
        started = time.perf_counter()
        profile.enable()
        for start in range(100, len(messages), 400):
            writer.write(messages[start : start + 400])
        profile.disable()
        elapsed = time.perf_counter() - started
        readings = (len(messages) - 100) * spec.readings_per_message
        print(f"{readings:,} readings in {elapsed:.2f} s under the profiler")
        pstats.Stats(profile).sort_stats(args.sort).print_stats(args.top)
        writer.close()
    finally:
        with psycopg.connect(args.server, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


if __name__ == "__main__":
    main()
