"""The demo's downlink: ``fleetcare downlink run`` as a child process, and an operator who
uses it through the API.

Some seconds into the run the operator sets every device's desired configuration: a
bearing temperature alarm at the 99th percentile of the fleet's hourly maxima in the
history (per device model), which the simulated firmware applies and then raises
``limit_exceeded`` events with. Every new ticket gets a remote ``self_test`` of its device,
as a technician would run before driving out. The summary counts what the devices applied
and answered, and how long each took.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psycopg

from fleetcare.demo.child import ChildProcess

if TYPE_CHECKING:
    from fleetcare.cli.demo import DemoRun
    from fleetcare.demo.api_step import ApiStep
    from fleetcare.demo.outcome import BaselineStep

#: The metric the demo's alarm limits watch (every simulated machine type reports it).
ALARM_METRIC = "bearing_temp_c"

_LIMITS = """
SELECT d.model_id, percentile_cont(0.99) WITHIN GROUP (ORDER BY h.max)
FROM telemetry_hourly h
JOIN devices d ON d.id = h.device_id
JOIN device_model_metrics dm ON dm.model_id = d.model_id AND dm.position = h.position
JOIN metrics m ON m.id = dm.metric_id AND m.name = %s
WHERE d.external_id = ANY(%s) AND h.max IS NOT NULL
GROUP BY d.model_id
"""


def alarm_limits(conn: psycopg.Connection[Any], devices: list[str]) -> dict[str, float]:
    """Each device's bearing temperature limit: the 99th percentile of its model's hourly
    maxima in what is stored (devices of a model without history get none)."""
    by_model = {
        int(str(model)): round(float(str(value)), 1)
        for model, value in conn.execute(_LIMITS, (ALARM_METRIC, devices)).fetchall()
    }
    rows = conn.execute(
        "SELECT external_id, model_id FROM devices WHERE external_id = ANY(%s)", (devices,)
    ).fetchall()
    return {str(ref): by_model[int(str(m))] for ref, m in rows if int(str(m)) in by_model}


@dataclass
class DownlinkOutcome:
    """What the devices did with the operator's requests."""

    configs_set: int = 0
    configs_applied: int = 0
    configs_rejected: int = 0
    config_seconds: list[float] = field(default_factory=list)
    commands_sent: int = 0
    commands_by_status: dict[str, int] = field(default_factory=dict)
    command_seconds: list[float] = field(default_factory=list)
    self_tests_failed: int = 0
    limit_alarms: int = 0

    @staticmethod
    def _spread(values: list[float]) -> str:
        if not values:
            return ""
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        return f"; median {statistics.median(ordered):.2f} s, p95 {p95:.2f} s"

    @property
    def config_text(self) -> str:
        if not self.configs_set:
            return "none set"
        return (
            f"{self.configs_applied} of {self.configs_set} devices applied their alarm limits"
            + (f", {self.configs_rejected} rejected" if self.configs_rejected else "")
            + self._spread(self.config_seconds)
            + " from the API call to the device's report"
        )

    @property
    def command_text(self) -> str:
        if not self.commands_sent:
            return "none sent (no new ticket)"
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(self.commands_by_status.items()))
        return (
            f"{self.commands_sent} sent, one per new ticket: {statuses}"
            + self._spread(self.command_seconds)
            + " to the answer"
            + (
                f"; {self.self_tests_failed} found a reading beyond its limit or missing"
                if self.self_tests_failed
                else ""
            )
        )


class DownlinkStep:
    """Run the downlink service; act as the operator through the API."""

    title = "downlink"

    def __init__(
        self,
        api: ApiStep,
        baseline: BaselineStep,
        devices: Callable[[], list[str]],
        *,
        config_after_s: float = 15.0,
    ) -> None:
        self.api = api
        self.baseline = baseline
        self._devices = devices
        self.config_after_s = config_after_s
        self.child: ChildProcess | None = None
        self.outcome = DownlinkOutcome()
        self._database_url = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._commanded: set[int] = set()
        self._config_version: dict[int, int] = {}
        self.errors: list[str] = []

    def run(self, demo: DemoRun) -> None:
        services = demo.services()
        self._database_url = services.database_url
        env = dict(os.environ)
        env["FLEETCARE_DATABASE_URL"] = services.database_url
        env["FLEETCARE_BROKER_URL"] = services.broker_url
        env["FLEETCARE_TOPIC_ROOT"] = demo.settings.topic_root
        log_dir = Path(tempfile.mkdtemp(prefix="fleetcare-demo-downlink-"))
        self.child = ChildProcess(
            "downlink", ["-m", "fleetcare.cli", "downlink", "run"], env, log_dir / "downlink.log"
        )
        self.child.start()
        demo.resources.callback(self.child.stop)
        self._thread = threading.Thread(target=self._operate, name="demo-operator", daemon=True)
        self._thread.start()
        demo.resources.callback(self._stop.set)
        demo.note(
            "downlink",
            f"fleetcare downlink run; bearing temperature alarm limits set on every device "
            f"after {self.config_after_s:g} s, a remote self_test for every new ticket",
        )

    # ------------------------------------------------------------------ the operator

    def _admin(self) -> dict[str, str]:
        admin = next(u for u in self.api.users if u.role == "admin")
        return {"X-API-Key": admin.key}

    def _operate(self) -> None:
        started = time.monotonic()
        with httpx.Client(base_url=self.api.base_url, headers=self._admin(), timeout=10) as web:
            while not self._stop.wait(2.0):
                try:
                    if (
                        not self._config_version
                        and time.monotonic() - started >= self.config_after_s
                    ):
                        self._set_limits(web)
                    self._self_test_new_tickets(web)
                except (httpx.HTTPError, psycopg.Error) as exc:
                    self.errors.append(str(exc))

    def _set_limits(self, web: httpx.Client) -> None:
        devices = list(self._devices())
        with psycopg.connect(self._database_url) as conn:
            limits = alarm_limits(conn, devices)
            rows = conn.execute(
                "SELECT external_id, id FROM devices WHERE external_id = ANY(%s)", (devices,)
            ).fetchall()
        ids: dict[str, int] = {str(ref): int(str(dev)) for ref, dev in rows}
        for ref, limit in limits.items():
            body = {"desired": {"alarm_limits": {ALARM_METRIC: {"max": limit}}}}
            response = web.put(f"/devices/{ids[ref]}/twin/desired", json=body)
            response.raise_for_status()
            self._config_version[ids[ref]] = int(response.json()["desired_version"])
        self.outcome.configs_set = len(self._config_version)

    def _self_test_new_tickets(self, web: httpx.Client) -> None:
        with psycopg.connect(self._database_url) as conn:
            rows = conn.execute(
                "SELECT DISTINCT device_id FROM tickets WHERE id > %s",
                (self.baseline.baseline.ticket,),
            ).fetchall()
        for (device_id,) in rows:
            if int(device_id) in self._commanded:
                continue
            response = web.post(
                f"/devices/{device_id}/commands", json={"name": "self_test", "ttl_s": 120}
            )
            response.raise_for_status()
            self._commanded.add(int(device_id))

    # ------------------------------------------------------------------ the end

    def finish(self, settle_s: float = 10.0) -> None:
        """Stop the operator; give outstanding answers ``settle_s``; count; stop the child."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15)
        if self.child is None:
            return
        deadline = time.monotonic() + settle_s
        with psycopg.connect(self._database_url, autocommit=True) as conn:
            while time.monotonic() < deadline and self._outstanding(conn):
                time.sleep(0.5)
            self._count(conn)
        self.child.stop()

    def _outstanding(self, conn: psycopg.Connection[Any]) -> bool:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM device_commands WHERE device_id = ANY(%s)"
            " AND status IN ('queued', 'sent')),"
            " (SELECT count(*) FROM device_twins WHERE device_id = ANY(%s)"
            " AND reported_version < desired_version)",
            (list(self._commanded), list(self._config_version)),
        ).fetchone()
        return row is not None and (int(str(row[0])) > 0 or int(str(row[1])) > 0)

    def _count(self, conn: psycopg.Connection[Any]) -> None:
        outcome = self.outcome
        outcome.commands_sent = len(self._commanded)
        for status, seconds, passed in conn.execute(
            "SELECT status, extract(epoch FROM answered_at - created_at),"
            " (result ->> 'passed')::boolean FROM device_commands"
            " WHERE device_id = ANY(%s) AND name = 'self_test'",
            (list(self._commanded),),
        ).fetchall():
            outcome.commands_by_status[str(status)] = (
                outcome.commands_by_status.get(str(status), 0) + 1
            )
            if seconds is not None:
                outcome.command_seconds.append(float(str(seconds)))
            if passed is False:
                outcome.self_tests_failed += 1
        for device_id, status, reported, seconds in conn.execute(
            "SELECT device_id, reported_status, reported_version,"
            " extract(epoch FROM reported_at - desired_at) FROM device_twins"
            " WHERE device_id = ANY(%s)",
            (list(self._config_version),),
        ).fetchall():
            if int(str(reported)) != self._config_version.get(int(str(device_id))):
                continue
            if status == "applied":
                outcome.configs_applied += 1
                if seconds is not None:
                    outcome.config_seconds.append(float(str(seconds)))
            elif status == "rejected":
                outcome.configs_rejected += 1

    def count_alarms(self, conn: psycopg.Connection[Any]) -> int:
        """``limit_exceeded`` events the configured devices raised (after ingest drained)."""
        row = conn.execute(
            "SELECT count(*) FROM device_events WHERE kind = 'limit_exceeded'"
            " AND device_id = ANY(%s)",
            (list(self._config_version),),
        ).fetchone()
        self.outcome.limit_alarms = 0 if row is None else int(str(row[0]))
        return self.outcome.limit_alarms
