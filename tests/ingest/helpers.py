"""Helpers shared by the ingest tests: counting what arrived, building payloads, waiting."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit, urlunsplit

import orjson
import psycopg

from backend.ingest.loadgen import FleetSpec
from backend.ingest.pending import Inbound
from device_sdk.wire import Channel, build_topic

REPO_ROOT = Path(__file__).resolve().parents[2]


def with_database(url: str, dbname: str) -> str:
    """``url`` (a ``postgresql://`` URL, as the settings require) with another database."""
    parts = urlsplit(url)
    if parts.scheme.startswith("postgres"):
        return urlunsplit(parts._replace(path="/" + dbname))
    conninfo = psycopg.conninfo.conninfo_to_dict(url)
    conninfo["dbname"] = dbname
    return psycopg.conninfo.make_conninfo(**conninfo)  # type: ignore[arg-type]


def as_url(conninfo: str) -> str:
    """A ``postgresql://`` URL for ``conninfo`` (the settings accept URLs only)."""
    if conninfo.startswith("postgres"):
        return conninfo
    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    user = params.get("user") or "postgres"
    host = str(params.get("host") or "")
    dbname = params.get("dbname") or ""
    if host.startswith("/"):
        return f"postgresql://{user}@/{dbname}?host={host}"
    return f"postgresql://{user}@{host}:{params.get('port') or 5432}/{dbname}"


class Stored(NamedTuple):
    """What the database holds for a fleet."""

    rows: int
    distinct_rows: int
    readings: int

    @property
    def duplicates(self) -> int:
        return self.rows - self.distinct_rows


def stored(database_url: str, spec: FleetSpec) -> Stored:
    """Telemetry rows, distinct rows and distinct readings (device, seq) of ``spec``'s devices."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT (t.device_id, t.time, t.seq)), "
            "count(DISTINCT (t.device_id, t.seq)) FROM telemetry t "
            "JOIN devices d ON d.id = t.device_id WHERE d.external_id LIKE %s",
            (spec.prefix + "-%",),
        ).fetchone()
    assert row is not None
    return Stored(int(row[0]), int(row[1]), int(row[2]))


def dead_letters(database_url: str, root: str) -> list[tuple[str, str, str | None]]:
    """``(reason, topic, device_ref)`` of the dead letters under topic root ``root``."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT reason, topic, device_ref FROM dead_letters WHERE topic LIKE %s ORDER BY id",
            (root + "/%",),
        ).fetchall()
    return [(str(r), str(t), d) for r, t, d in rows]


def wait_until(check: Callable[[], bool], timeout_s: float, interval_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval_s)
    return check()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def telemetry_payload(
    device: str,
    seqs: Iterable[int],
    metrics: dict[str, float | None],
    *,
    t: int | None = None,
    **envelope: object,
) -> bytes:
    """A telemetry batch: one reading per seq, each with ``metrics``."""
    at = t if t is not None else now_ms()
    doc: dict[str, object] = {
        "v": 1,
        "device": device,
        "kind": "telemetry",
        "boot": "b1",
        "sent": now_ms(),
        "entries": [{"seq": s, "t": at, "m": metrics} for s in seqs],
    }
    doc.update(envelope)
    return orjson.dumps(doc)


def inbound(
    root: str, device: str, channel: Channel | str, payload: bytes, **fields: object
) -> Inbound:
    """A message as the receiver would hand it over."""
    topic = build_topic(device, Channel(channel), root)
    return Inbound(topic, payload, **fields)  # type: ignore[arg-type]


def scrape(port: int) -> dict[str, float]:
    """``/metrics`` of a worker as ``{"name{labels}": value}``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def ingest_process(
    env: dict[str, str], *args: str, log_path: Path | None = None
) -> subprocess.Popen[bytes]:
    """``python -m backend.ingest run …`` as a child process (logs to ``log_path``)."""
    full_env = {**os.environ, **env}
    out = log_path.open("ab") if log_path is not None else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "backend.ingest", "run", *args],
            cwd=REPO_ROOT,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    finally:
        if log_path is not None and not isinstance(out, int):
            out.close()
