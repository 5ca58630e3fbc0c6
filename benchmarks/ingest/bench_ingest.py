"""Ingest throughput, latency and memory, side by side on one machine, in one run.

Run: ``.venv/bin/python -m benchmarks.ingest.bench_ingest``
(``--duration S`` per live phase, default 20; ``--memory-minutes 10`` adds the long run).

Each phase gets a fresh database (``fleetcare_bench_ingest_<pid>_<phase>``, migrated, fleet
registered; dropped at the end) and a private Mosquitto (queue limits set high, persistence
on). Rates count what landed in the database, not what was sent:

1. **raw COPY**: the same readings (same devices, seqs, times, values), packed in advance,
   binary COPY into ``telemetry`` from this process, one transaction per batch.
2. **naive**: ``benchmarks.ingest.naive`` (paho subscriber, one INSERT and one commit per
   message), fed with one reading per message (the tutorial's devices), and fed with the
   same 50-reading batches as fleetcare.
3. **fleetcare ingest** (``python -m backend.ingest run``) with one worker and with two,
   once on a shared subscription and once partitioned (``--two-workers``): *drain*, the
   rate of committing a backlog the broker holds (publisher idle: the ingest, broker and
   database have the machine); *live*, the landed rate while ``benchmarks.ingest.publish``
   (a separate process on this machine) publishes at the drain rate (more than the ingest
   takes while it shares the machine: the broker queues the rest); *live, sustained*, the
   highest fixed publisher rate, in steps of 10 %, at which what lands matches what is
   offered with a device-to-commit p99 under 1 s (:class:`Steady`). After the live phases
   everything is drained and the stored readings are counted: sent == stored, no
   duplicates.
4. **latency**: one worker fed at half its live rate (the most it sustains with the
   publisher on the same machine); p50/p99 of device send time to commit
   (``fleetcare_ingest_end_to_end_lag_seconds``, bucket upper bounds), and its memory.
   ``--memory-minutes 10`` repeats it for ten minutes, sampling memory every 10 s.

Also measured, for context: one single-row ``INSERT`` + ``COMMIT`` at a time against the
database alone, which is what bounds any commit-per-message design on this disk.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import psycopg
from psycopg import sql

from backend.ingest.loadgen import DEFAULT_METRICS, FleetPublisher, FleetSpec, register_fleet
from backend.storage.copy_writer import TelemetryCopyBatch, copy_telemetry, pack_readings
from backend.storage.migrator import apply_migrations
from device_sdk.wire import decode_batch
from fleetcare.embedded.mosquitto import MosquittoBroker, MosquittoConfig
from fleetcare.embedded.ports import free_tcp_port, free_tcp_port_run

SHARED_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
REPO = Path(__file__).resolve().parents[2]
WRITTEN = 'fleetcare_ingest_readings_written_total{channel="telemetry"}'


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Result:
    name: str
    readings_per_s: float
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.server = args.server
        self.databases: list[str] = []
        self.workdir = Path(tempfile.mkdtemp(prefix="fc-bench-ingest-"))
        self.results: list[Result] = []

    # -- infrastructure --------------------------------------------------------------------

    def database(self, tag: str, spec: FleetSpec) -> str:
        name = f"fleetcare_bench_ingest_{os.getpid()}_{tag}"
        with psycopg.connect(self.server, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.databases.append(name)
        url = self.server.rsplit("/", 1)[0] + "/" + name
        apply_migrations(url)
        register_fleet(url, spec)
        with psycopg.connect(self.server, autocommit=True) as conn:
            conn.execute("CHECKPOINT")  # earlier phases' dirty pages are not this one's cost
        return url

    def drop_databases(self) -> None:
        with psycopg.connect(self.server, autocommit=True) as conn:
            for name in self.databases:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )

    @contextmanager
    def broker(self) -> Iterator[MosquittoBroker]:
        extra = ("user root",) if os.geteuid() == 0 else ()
        broker = MosquittoBroker(
            self.workdir / f"mosquitto-{secrets.token_hex(3)}", MosquittoConfig(extra_lines=extra)
        )
        broker.start()
        try:
            yield broker
        finally:
            broker.kill()

    def spec(self, readings_per_message: int, prefix: str = "bench") -> FleetSpec:
        return FleetSpec(
            prefix=prefix,
            devices=self.args.devices,
            readings_per_message=readings_per_message,
            metrics=DEFAULT_METRICS[: self.args.metrics],
            model=f"bench-{self.args.metrics}",
        )

    def publish(
        self,
        broker: MosquittoBroker,
        root: str,
        spec: FleetSpec,
        messages: int,
        rate: float | None,
        first_seq: int,
    ) -> subprocess.Popen[str]:
        command = [
            sys.executable, "-m", "benchmarks.ingest.publish",
            "--broker", broker.url, "--root", root, "--prefix", spec.prefix,
            "--devices", str(spec.devices), "--readings", str(spec.readings_per_message),
            "--metrics", str(len(spec.metrics)), "--messages", str(messages),
            "--first-seq", str(first_seq), "--client", self.args.publisher,
        ]  # fmt: skip
        if rate is not None:
            command += ["--rate", f"{rate:.3f}"]
        return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)

    @staticmethod
    def published(process: subprocess.Popen[str], timeout_s: float = 300) -> dict[str, Any]:
        out, _ = process.communicate(timeout=timeout_s)
        stats: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        if not stats["acked"]:
            raise RuntimeError(f"publisher: broker did not acknowledge everything: {stats}")
        return stats

    # -- 1. raw COPY -----------------------------------------------------------------------

    def raw_copy(self) -> Result:
        spec = self.spec(50)
        url = self.database("raw", spec)
        gen = FleetPublisher("mqtt://127.0.0.1:1", "raw", spec, first_seq=1)
        with psycopg.connect(url, autocommit=True) as conn:
            ids = {
                str(e): int(str(i)) for e, i in conn.execute("SELECT external_id, id FROM devices")
            }
            blocks: list[bytes] = []
            for number in range(self.args.raw_messages):
                _topic, payload, _n = gen.message(number % spec.devices)
                batch = decode_batch(payload)
                values = np.array([list(e["m"].values()) for e in batch.entries], dtype=np.float64)
                blocks.append(
                    pack_readings(
                        [e["t"] for e in batch.entries],
                        ids[batch.device],
                        [e["seq"] for e in batch.entries],
                        values,
                    )
                )
            per_batch = max(1, self.args.batch_readings // spec.readings_per_message)
            started = time.perf_counter()
            for start in range(0, len(blocks), per_batch):
                part = blocks[start : start + per_batch]
                with conn.transaction():
                    copy_telemetry(
                        conn, TelemetryCopyBatch(part, len(part) * spec.readings_per_message)
                    )
            seconds = time.perf_counter() - started
            row = conn.execute("SELECT count(*) FROM telemetry").fetchone()
        stored = int(str(row[0])) if row else 0
        rate = stored / seconds
        log(f"raw COPY: {stored:,} readings in {seconds:.2f} s = {rate:,.0f}/s")
        return Result(
            "raw binary COPY, 1 process",
            rate,
            f"{stored:,} readings, batches of {per_batch * spec.readings_per_message:,}",
        )

    def commit_reference(self) -> Result:
        """Database only: one single-row INSERT and COMMIT at a time (the disk's flush rate)."""
        spec = self.spec(1)
        url = self.database("commits", spec)
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT id FROM devices LIMIT 1").fetchone()
            assert row is not None
            started = time.perf_counter()
            count = 0
            while time.perf_counter() - started < 5.0:
                conn.execute(
                    "INSERT INTO telemetry (time, device_id, seq, vals) VALUES (now(), %s, %s, %s)",
                    (row[0], count, [1.0] * len(spec.metrics)),
                )
                conn.commit()
                count += 1
            seconds = time.perf_counter() - started
        rate = count / seconds
        log(f"single-row INSERT + COMMIT, database only: {rate:,.0f}/s ({1000 / rate:.2f} ms each)")
        return Result(
            "database only: one single-row INSERT + COMMIT at a time (reference)",
            rate,
            f"{1000 / rate:.2f} ms per commit: the disk's flush time bounds any "
            "commit-per-message design",
        )

    # -- 2. naive --------------------------------------------------------------------------

    def naive(self, readings_per_message: int, rate: float) -> Result:
        spec = self.spec(readings_per_message)
        url = self.database(f"naive{readings_per_message}", spec)
        root = f"naive{readings_per_message}"
        with self.broker() as broker:
            subscriber = subprocess.Popen(
                [
                    sys.executable, "-m", "benchmarks.ingest.naive",
                    "--broker-port", str(broker.port), "--root", root, "--database", url,
                ],
                cwd=REPO,
            )  # fmt: skip
            time.sleep(2.0)
            messages = int(rate * (self.args.duration + 10))
            publisher = self.publish(broker, root, spec, messages, rate, 1)
            time.sleep(3.0)
            c0, t0 = self.count(url), time.monotonic()
            time.sleep(self.args.duration)
            c1, t1 = self.count(url), time.monotonic()
            publisher.send_signal(signal.SIGTERM)
            publisher.communicate(timeout=120)
            subscriber.send_signal(signal.SIGTERM)
            subscriber.wait(30)
        landed = (c1 - c0) / (t1 - t0)
        log(f"naive ({readings_per_message}/message): {landed:,.0f} readings/s")
        return Result(
            f"naive: paho, INSERT + commit per message, {readings_per_message} reading(s)/message",
            landed,
            f"publisher at {rate * readings_per_message:,.0f} readings/s; "
            f"{c1 - c0:,} landed in {t1 - t0:.1f} s",
        )

    @staticmethod
    def count(url: str) -> int:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT count(*) FROM telemetry").fetchone()
        return int(str(row[0])) if row else 0

    # -- 3. fleetcare ----------------------------------------------------------------------

    @contextmanager
    def ingest(
        self,
        url: str,
        broker: MosquittoBroker,
        root: str,
        workers: int,
        port: int,
        subscription: str = "auto",
    ) -> Iterator[subprocess.Popen[bytes]]:
        env = {
            **os.environ,
            "FLEETCARE_DATABASE_URL": url,
            "FLEETCARE_BROKER_URL": broker.url,
            "FLEETCARE_TOPIC_ROOT": root,
            "FLEETCARE_INGEST_METRICS_PORT": str(port),
            "FLEETCARE_INGEST_CLIENT_ID_PREFIX": f"bench-{root}",
            "FLEETCARE_INGEST_SUBSCRIPTION": subscription,
            "FLEETCARE_LOG_LEVEL": "WARNING",
        }
        log_file = (self.workdir / f"ingest-{root}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "backend.ingest", "run", "--workers", str(workers)],
            cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log_file.close()
        try:
            deadline = time.monotonic() + 30
            while not all(
                self.scrape(port + i).get("fleetcare_ingest_mqtt_connected") == 1.0
                for i in range(workers)
            ):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"ingest did not start; see {log_file.name}")
                time.sleep(0.2)
            yield process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()

    @staticmethod
    def scrape(port: int) -> dict[str, float]:
        import urllib.request

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                text = response.read().decode()
        except OSError:
            return {}
        values: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    def written(self, port: int, workers: int) -> float:
        return sum(self.scrape(port + i).get(WRITTEN, 0.0) for i in range(workers))

    def wait_written(self, port: int, workers: int, target: float, timeout_s: float) -> float:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            done = self.written(port, workers)
            if done >= target:
                return done
            time.sleep(0.1)
        raise RuntimeError(f"ingest committed {self.written(port, workers):,.0f} of {target:,.0f}")

    def fleetcare(self, workers: int, subscription: str = "auto") -> tuple[Result, Result, Result]:
        spec = self.spec(50)
        tag = f"{workers}{subscription}"
        url = self.database(f"fleetcare{tag}", spec)
        root = f"fc{tag}"
        port = free_tcp_port_run(workers)
        mode = self.mode(workers, subscription)
        with self.broker() as broker:
            with self.ingest(url, broker, root, workers, port, subscription):
                pass  # sessions exist: the broker queues for them from now on
            backlog = self.published(
                self.publish(broker, root, spec, self.args.drain_messages, None, 1)
            )
            with self.ingest(url, broker, root, workers, port, subscription) as process:
                started = time.monotonic()
                first = self.wait_written(port, workers, 1, 60)
                t0, c0 = time.monotonic(), self.written(port, workers)
                if c0 > backlog["readings"] * 0.9:  # too small a backlog: time from the start
                    t0, c0 = started, 0.0
                self.wait_written(port, workers, backlog["readings"], 300)
                drain = (backlog["readings"] - c0) / (time.monotonic() - t0)
                log(
                    f"fleetcare {workers} worker(s){mode}, drain: {drain:,.0f} readings/s "
                    f"(first commit {first:,.0f})"
                )
                rate = drain / spec.readings_per_message
                messages = int(rate * (self.args.duration + 5))
                publisher = self.publish(broker, root, spec, messages, rate, 10_000_000)
                time.sleep(4.0)
                c0, t0 = self.written(port, workers), time.monotonic()
                rss = self.sample_rss(process, self.args.duration)
                c1, t1 = self.written(port, workers), time.monotonic()
                live = self.published(publisher)
                total = backlog["readings"] + live["readings"]
                live_rate = (c1 - c0) / (t1 - t0)
                steady = Steady(self, broker, root, spec, port, workers, done=total)
                sustained = steady.highest(live_rate)
                total = steady.done
                self.wait_written(port, workers, total, 300)
            stored = self.stored(url)
        log(
            f"fleetcare {workers} worker(s){mode}, live: {live_rate:,.0f} readings/s; "
            f"stored {stored}"
        )
        if stored != (total, total, total):
            raise RuntimeError(
                f"arrivals: sent {total}, stored (rows, distinct rows, readings) {stored}"
            )
        note = (
            f"sent {total:,} = stored {stored[0]:,}, 0 duplicates; "
            f"ingest RSS {min(rss):.0f}-{max(rss):.0f} MiB; publisher ({self.args.publisher}) "
            f"{live.get('cpu_us_per_message', 0):.0f} µs CPU a message"
        )
        return (
            Result(
                f"fleetcare ingest, {workers} worker(s){mode}, drain (backlog in the broker)",
                drain,
                f"{backlog['readings']:,} readings",
            ),
            Result(
                f"fleetcare ingest, {workers} worker(s){mode}, live (publisher at the drain rate)",
                live_rate,
                note,
            ),
            Result(
                f"fleetcare ingest, {workers} worker(s){mode}, live, sustained (the highest "
                "publisher rate it keeps up with)",
                sustained.landed if sustained is not None else 0.0,
                steady.summary(),
            ),
        )

    @staticmethod
    def mode(workers: int, subscription: str) -> str:
        """The subscription mode in a result's name, for several workers."""
        if workers == 1:
            return ""
        return f" ({'partitioned' if subscription == 'auto' else subscription})"

    def sample_rss(
        self, process: subprocess.Popen[bytes], seconds: float, every_s: float = 1.0
    ) -> list[float]:
        samples: list[float] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                procs = [
                    psutil.Process(process.pid),
                    *psutil.Process(process.pid).children(recursive=True),
                ]
                samples.append(sum(p.memory_info().rss for p in procs) / 2**20)
            except psutil.Error:
                pass
            time.sleep(min(every_s, max(0.0, deadline - time.monotonic())))
        return samples or [0.0]

    @staticmethod
    def stored(url: str) -> tuple[int, int, int]:
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT count(*), count(DISTINCT (device_id, time, seq)), "
                "count(DISTINCT (device_id, seq)) FROM telemetry"
            ).fetchone()
        assert row is not None
        return int(str(row[0])), int(str(row[1])), int(str(row[2]))

    # -- 4. latency and memory -------------------------------------------------------------

    def latency(self, readings_per_s: float, seconds: float, tag: str) -> Result:
        spec = self.spec(50)
        url = self.database(tag, spec)
        root = tag
        port = free_tcp_port()
        rate = readings_per_s / spec.readings_per_message
        with self.broker() as broker, self.ingest(url, broker, root, 1, port) as process:
            publisher = self.publish(broker, root, spec, int(rate * (seconds + 4)), rate, 1)
            time.sleep(4.0)
            before = self.scrape(port)
            rss = self.sample_rss(process, seconds, every_s=1.0 if seconds <= 60 else 10.0)
            after = self.scrape(port)
            sent = self.published(publisher)
            self.wait_written(port, 1, sent["readings"], 300)
        stored = self.stored(url)
        if stored != (sent["readings"],) * 3:
            raise RuntimeError(f"arrivals: sent {sent['readings']}, stored {stored}")
        p50, p99, n = quantiles(before, after)
        landed = (after.get(WRITTEN, 0) - before.get(WRITTEN, 0)) / seconds
        log(
            f"{tag}: p50 <= {p50} s, p99 <= {p99} s over {n} messages; "
            f"RSS {min(rss):.0f}-{max(rss):.0f} MiB"
        )
        return Result(
            f"fleetcare ingest, 1 worker, fed at {readings_per_s:,.0f} readings/s "
            f"for {seconds:.0f} s",
            landed,
            f"lag p50 <= {p50 * 1000:.0f} ms, p99 <= {p99 * 1000:.0f} ms ({n:,} messages); "
            f"RSS {rss[0]:.0f} MiB at start, "
            f"{min(rss):.0f}-{max(rss):.0f} MiB over the run; sent {sent['readings']:,} = stored",
            {"p50_s": p50, "p99_s": p99, "rss_mib": rss},
        )


@dataclass(frozen=True)
class Step:
    """One rate tried: what was published, what landed, and the lag while it ran."""

    offered: float
    landed: float
    p99_s: float

    @property
    def kept_up(self) -> bool:
        """Landed what was offered (within 3 %) with a p99 lag under 1 s."""
        return self.landed >= 0.97 * self.offered and self.p99_s <= 1.0


class Steady:
    """Finds the highest publisher rate the ingest keeps up with, with the publisher live.

    "Live" at the drain rate overloads the ingest on purpose: the publisher then spends CPU
    on messages the broker can only queue, which the ingest pays for on a shared machine. A
    streaming system's throughput is the rate it sustains: each step publishes at a fixed
    rate for ``--duration`` seconds once the broker's queue is empty, and passes when what
    landed matches what was offered and the device-to-commit lag's p99 stays under 1 s.
    Steps go up by 10 % from the overloaded live rate until one fails (down by 10 % when
    the first fails).
    """

    UP = (1.0, 1.1, 1.2, 1.3, 1.4, 1.5)
    DOWN = (0.9, 0.8, 0.7)

    def __init__(
        self,
        bench: Bench,
        broker: MosquittoBroker,
        root: str,
        spec: FleetSpec,
        port: int,
        workers: int,
        done: int,
    ) -> None:
        self.bench, self.broker, self.root, self.spec = bench, broker, root, spec
        self.port, self.workers = port, workers
        self.done = done
        """Readings published so far (all must land before the next step starts)."""
        self.steps: list[Step] = []

    def highest(self, live_rate: float) -> Step | None:
        passed: Step | None = None
        for factor in self.UP:
            step = self.run(live_rate * factor)
            if not step.kept_up:
                break
            passed = step
        if passed is None:
            for factor in self.DOWN:
                step = self.run(live_rate * factor)
                if step.kept_up:
                    return step
        return passed

    def run(self, readings_per_s: float) -> Step:
        bench, duration = self.bench, self.bench.args.duration
        bench.wait_written(self.port, self.workers, self.done, 300)
        rate = readings_per_s / self.spec.readings_per_message
        first_seq = 20_000_000 * (len(self.steps) + 1)
        publisher = bench.publish(
            self.broker, self.root, self.spec, int(rate * (duration + 4)), rate, first_seq
        )
        time.sleep(3.0)
        before = self.scrape()
        time.sleep(duration)
        after = self.scrape()
        self.done += bench.published(publisher)["readings"]
        _p50, p99, _n = quantiles(before, after)
        landed = (after.get(WRITTEN, 0.0) - before.get(WRITTEN, 0.0)) / duration
        step = Step(readings_per_s, landed, p99)
        self.steps.append(step)
        log(
            f"  sustained? offered {readings_per_s:,.0f}/s, landed {landed:,.0f}/s, "
            f"p99 <= {p99} s: {'kept up' if step.kept_up else 'fell behind'}"
        )
        return step

    def scrape(self) -> dict[str, float]:
        """The workers' metrics, summed."""
        total: dict[str, float] = {}
        for index in range(self.workers):
            for key, value in self.bench.scrape(self.port + index).items():
                total[key] = total.get(key, 0.0) + value
        return total

    def summary(self) -> str:
        return "; ".join(
            f"{s.offered:,.0f}/s offered: {s.landed:,.0f} landed, p99 <= {s.p99_s * 1000:.0f} ms"
            f" ({'kept up' if s.kept_up else 'fell behind'})"
            for s in self.steps
        )


def quantiles(before: dict[str, float], after: dict[str, float]) -> tuple[float, float, int]:
    prefix = 'fleetcare_ingest_end_to_end_lag_seconds_bucket{le="'
    buckets = []
    for key, value in after.items():
        if key.startswith(prefix):
            bound = key[len(prefix) : -2]
            buckets.append(
                (float("inf") if bound == "+Inf" else float(bound), value - before.get(key, 0.0))
            )
    buckets.sort()
    total = buckets[-1][1] if buckets else 0.0

    def q(fraction: float) -> float:
        for bound, cumulative in buckets:
            if cumulative >= fraction * total:
                return bound
        return float("inf")

    return q(0.5), q(0.99), int(total)


def table(results: list[Result], raw: Result, naive: Result) -> str:
    lines = [
        "| pipeline | readings/s | values/s | vs raw COPY | vs naive (1 reading/msg) | notes |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.readings_per_s:,.0f} "
            f"| {r.readings_per_s * len(DEFAULT_METRICS):,.0f} "
            f"| {r.readings_per_s / raw.readings_per_s:.0%} "
            f"| {r.readings_per_s / naive.readings_per_s:,.1f}x | {r.detail} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--server",
        default=SHARED_SERVER,
        help="PostgreSQL server URL (databases are created on it)",
    )
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of each live phase")
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--metrics", type=int, default=8, help="metrics per reading (at most 8)")
    parser.add_argument(
        "--raw-messages", type=int, default=12_000, help="50-reading messages for raw COPY"
    )
    parser.add_argument(
        "--drain-messages", type=int, default=12_000, help="backlog for the drain phases"
    )
    parser.add_argument(
        "--batch-readings", type=int, default=25_000, help="readings per raw COPY transaction"
    )
    parser.add_argument(
        "--memory-minutes", type=float, default=0.0, help="add the long memory run (e.g. 10)"
    )
    parser.add_argument("--skip-two-workers", action="store_true")
    parser.add_argument(
        "--publisher",
        choices=("raw", "paho"),
        default="raw",
        help="the devices' MQTT client: raw socket writes (default, light on the shared CPU) "
        "or paho-mqtt",
    )
    parser.add_argument(
        "--two-workers",
        default="shared,partitioned",
        help="comma-separated FLEETCARE_INGEST_SUBSCRIPTION modes to run two workers with "
        "(shared, partitioned; default both)",
    )
    parser.add_argument(
        "--memory-only",
        type=float,
        default=None,
        metavar="READINGS_PER_S",
        help="run only the memory phase (--memory-minutes long) at this rate",
    )
    args = parser.parse_args(argv)
    bench = Bench(args)
    started = time.monotonic()
    if args.memory_only:
        try:
            memory = bench.latency(args.memory_only, (args.memory_minutes or 10) * 60, "memory")
        finally:
            bench.drop_databases()
        shutil.rmtree(bench.workdir, ignore_errors=True)
        rss = memory.extra["rss_mib"]
        print(f"| {memory.name} | {memory.readings_per_s:,.0f} | {memory.detail} |")
        print("RSS samples (MiB, every 10 s):", " ".join(f"{x:.0f}" for x in rss))
        return
    try:
        raw = bench.raw_copy()
        commits = bench.commit_reference()
        naive1 = bench.naive(1, max(200.0, commits.readings_per_s * 3))
        naive50 = bench.naive(50, 400)
        results = [raw, commits, naive1, naive50]
        one_drain, one_live, one_sustained = bench.fleetcare(1)
        results += [one_drain, one_live, one_sustained]
        if not args.skip_two_workers:
            for subscription in args.two_workers.split(","):
                results += list(bench.fleetcare(2, subscription.strip()))
        half = bench.latency(one_live.readings_per_s / 2, args.duration, "latency")
        results.append(half)
        if args.memory_minutes:
            results.append(
                bench.latency(one_live.readings_per_s / 2, args.memory_minutes * 60, "memory")
            )
    finally:
        bench.drop_databases()
    shutil.rmtree(bench.workdir, ignore_errors=True)  # kept when a phase failed: its logs
    cpu = f"{psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM"
    print(f"\n## Ingest benchmark ({time.strftime('%Y-%m-%d %H:%M')}, {platform.node()}, {cpu})\n")
    print(f"Command: `python -m benchmarks.ingest.bench_ingest {' '.join(sys.argv[1:])}`  ")
    print(
        f"{args.devices} devices, {args.metrics} metrics a reading, 50 readings a message "
        f"unless said; took {time.monotonic() - started:.0f} s\n"
    )
    print(table(results, raw, naive1))
    print(
        "\nlatency at half the 1-worker live rate "
        f"({one_live.readings_per_s / 2:,.0f} readings/s): "
        f"p50 <= {half.extra['p50_s'] * 1000:.0f} ms, p99 <= {half.extra['p99_s'] * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
