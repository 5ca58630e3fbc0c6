"""The soak's own services and processes: PostgreSQL, mosquitto, ``fleetcare up`` and the
simulated fleet, each started here and stopped here (never the machine's shared services)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.soak.metrics_text import scrape
from benchmarks.soak.processes import up_children
from fleetcare.embedded.ports import free_tcp_port

REPO_ROOT = Path(__file__).resolve().parents[2]
TOPIC_ROOT = "soak"


def score_service_available() -> bool:
    """Whether this build has the scoring worker that ``fleetcare up`` runs."""
    result = subprocess.run(
        [sys.executable, "-m", "fleetcare.cli", "score", "--help"],
        capture_output=True,
        check=False,
        cwd=REPO_ROOT,
    )
    return result.returncode == 0


def postmaster_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class UpPorts:
    metrics: int
    api: int

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics}/metrics"


class UpProcess:
    """``fleetcare up`` as a child process, its environment pinned to the soak's services."""

    def __init__(
        self, database_url: str, broker_url: str, data_dir: Path, log_path: Path, skip: list[str]
    ) -> None:
        self.ports = UpPorts(free_tcp_port(), free_tcp_port())
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("FLEETCARE_")},
            "FLEETCARE_DATABASE_URL": database_url,
            "FLEETCARE_BROKER_URL": broker_url,
            "FLEETCARE_TOPIC_ROOT": TOPIC_ROOT,
            "FLEETCARE_DATA_DIR": str(data_dir),
            "FLEETCARE_INGEST_METRICS_PORT": str(self.ports.metrics),
            "FLEETCARE_INGEST_CLIENT_ID_PREFIX": f"soak-{self.ports.metrics}",
            "FLEETCARE_API_PORT": str(self.ports.api),
            "FLEETCARE_CARE_POLL_INTERVAL_S": "2",
            "FLEETCARE_CARE_DELIVERY_BACKOFF_BASE_S": "2",
            "FLEETCARE_CARE_DELIVERY_BACKOFF_MAX_S": "20",
            "FLEETCARE_LOG_LEVEL": "WARNING",
        }
        self.skip = skip
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [sys.executable, "-m", "fleetcare.cli", "up"]
        for name in self.skip:
            argv += ["--skip", name]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                argv,
                env=self.env,
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def wait_ingest_ready(self, timeout_s: float = 90.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                return False
            try:
                if scrape(self.ports.metrics_url).get("fleetcare_ingest_mqtt_connected") == 1.0:
                    return True
            except OSError:
                pass
            time.sleep(0.5)
        return False

    def kill_ingest(self) -> int | None:
        """SIGKILL the ingest child (``fleetcare up`` restarts it); returns its pid."""
        if self.pid is None:
            return None
        child = up_children(self.pid).get("ingest")
        if child is None:
            return None
        pid = int(child.pid)
        os.kill(pid, signal.SIGKILL)
        return pid

    def stop(self, timeout_s: float = 60.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@dataclass(frozen=True)
class FleetPlan:
    devices: int
    accounts: int
    seed: int
    speed: float
    interval_s: int
    wear_acceleration: float
    shards: int


class SimulatedFleet:
    """``python -m firmware_sim run`` in one process per shard, with a fault plan."""

    def __init__(
        self, plan: FleetPlan, broker_url: str, run_s: float, workdir: Path, logs: Path
    ) -> None:
        self.plan = plan
        self.broker_url = broker_url
        self.run_s = run_s
        self.workdir = workdir
        self.logs = logs
        self.processes: list[subprocess.Popen[bytes]] = []

    def fault_plan(self) -> dict[str, object]:
        """Device link outages (proxy cuts), duplicates, reboots, spread over the run."""
        steps_per_s = self.plan.speed / self.plan.interval_s
        short = max(2, int(10 * steps_per_s))
        long = max(short + 1, int(min(40.0, self.run_s / 8) * steps_per_s))
        return {
            "device_outage": max(4, self.plan.devices // 40),
            "site_outage": 1,
            "duplicate": 6,
            "reboot": 2,
            "out_of_order": 3,
            "outage_steps": [short, long],
        }

    def start(self) -> None:
        plan = self.plan
        for shard in range(plan.shards):
            job = {
                "fleet": {
                    "devices": plan.devices,
                    "accounts": plan.accounts,
                    "seed": plan.seed,
                    "speed": plan.speed,
                    "interval_s": plan.interval_s,
                    "wear_acceleration": plan.wear_acceleration,
                },
                "broker_url": self.broker_url,
                "topic_root": TOPIC_ROOT,
                "span_s": int(self.run_s * plan.speed),
                "faults": self.fault_plan(),
                "workdir": str(self.workdir),
                "shard": shard,
                "shards": plan.shards,
                "flush_timeout_s": 300,
            }
            argv = [sys.executable, "-m", "benchmarks.soak.fleet_shard", json.dumps(job)]
            with (self.logs / f"sim-{shard}.out").open("wb") as out:
                self.processes.append(
                    subprocess.Popen(
                        argv,
                        cwd=REPO_ROOT,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                    )
                )

    @property
    def pids(self) -> dict[str, int]:
        return {f"sim-{i}": p.pid for i, p in enumerate(self.processes) if p.poll() is None}

    @property
    def running(self) -> bool:
        return any(p.poll() is None for p in self.processes)

    def stop(self, timeout_s: float = 60.0) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in self.processes:
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def summaries(self) -> list[dict[str, object]]:
        """The JSON summary each shard printed at its end (readings handed to the SDK...)."""
        out: list[dict[str, object]] = []
        for shard in range(len(self.processes)):
            text = (self.logs / f"sim-{shard}.out").read_text(errors="replace")
            for line in reversed(text.splitlines()):
                try:
                    doc = json.loads(line)
                except ValueError:
                    continue
                if isinstance(doc, dict) and "readings" in doc:
                    out.append(doc)
                    break
        return out

    def fault_log(self) -> list[dict[str, object]]:
        records: list[dict[str, object]] = []
        for shard in range(len(self.processes)):
            path = self.workdir / f"truth-{shard}" / "faults.jsonl"
            if path.exists():
                records += [json.loads(line) for line in path.read_text().splitlines() if line]
        return records
