"""An operator using the downlink through the API while the soak's faults hit.

At a steady pace it alternates between setting a device's desired configuration (a
bearing temperature alarm limit; every fifth one carries a setting the firmware does not
know, which the device must reject and report as rejected) and sending a device a
``self_test`` command, going round the fleet. A request the API does not accept (a 503
while the database is down, a timeout) is sent again, the same request, until it is:
commands carry an ``Idempotency-Key``, so a retry of one that was queued after all does
not queue a second. The operator stops well before the load ends (``stop_after_s``) so
that every device, even one whose link the simulator cut, is back before the fleet stops.
What the API accepted is what ``downlink_check`` holds the database to.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field

import httpx
import psycopg

from benchmarks.soak.checks import DownlinkLedger

log = logging.getLogger("benchmarks.soak.operator")

#: The metric whose alarm limit the operator sets (both simulated machine types report it).
ALARM_METRIC = "bearing_temp_c"
#: Every this many configurations, one the firmware must reject.
REJECTED_EVERY = 5


@dataclass(frozen=True)
class ConfigSent:
    device_id: int
    version: int
    expect: str
    """``applied`` or ``rejected``: what the device must report for this version."""


@dataclass
class OperatorCounts:
    configs: list[ConfigSent] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    """Ids of the commands the API accepted (202)."""
    refused: int = 0
    """Requests the API did not accept (an error status or no answer), each sent again."""
    replayed: int = 0
    """Retried commands the API answered as queued already (``Idempotent-Replayed``)."""


@dataclass(frozen=True)
class _Request:
    device: int
    n: int
    command_key: str | None = None
    """Set for a command; ``None`` for a desired configuration."""


class DownlinkOperator:
    """Runs in a thread from ``start`` until ``stop``, or until ``stop_after_s`` has passed
    and its last request was accepted (at most ``GIVE_UP_S`` more)."""

    GIVE_UP_S = 60.0

    def __init__(
        self,
        api_url: str,
        api_key: str,
        database_url: str,
        *,
        every_s: float,
        stop_after_s: float,
        command_ttl_s: int,
    ) -> None:
        self.api_url = api_url
        self.api_key = api_key
        self.database_url = database_url
        self.every_s = every_s
        self.stop_after_s = stop_after_s
        self.command_ttl_s = command_ttl_s
        self.counts = OperatorCounts()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="downlink-operator", daemon=True)

    def _devices(self) -> list[int]:
        with psycopg.connect(self.database_url, connect_timeout=3) as conn:
            rows = conn.execute("SELECT id FROM devices ORDER BY id").fetchall()
        return [int(str(r[0])) for r in rows]

    def _run(self) -> None:
        started = time.monotonic()
        devices: list[int] = []
        step = 0
        pending: _Request | None = None
        headers = {"X-API-Key": self.api_key}
        with httpx.Client(base_url=self.api_url, headers=headers, timeout=10.0) as web:
            while not self._stop.wait(self.every_s):
                elapsed = time.monotonic() - started
                if elapsed >= self.stop_after_s + self.GIVE_UP_S or (
                    elapsed >= self.stop_after_s and pending is None
                ):
                    break
                try:
                    if not devices:
                        devices = self._devices()
                    if pending is None:
                        device = devices[(step // 2) % len(devices)]
                        key = f"soak-{uuid.uuid4()}" if step % 2 else None
                        pending = _Request(device, step // 2, key)
                        step += 1
                    if pending.command_key is None:
                        self._configure(web, pending.device, pending.n)
                    else:
                        self._command(web, pending.device, pending.command_key)
                    pending = None
                except (httpx.HTTPError, psycopg.Error) as exc:
                    self.counts.refused += 1
                    log.info("downlink request not accepted (%s); sending it again", exc)

    def _configure(self, web: httpx.Client, device: int, n: int) -> None:
        rejected = n % REJECTED_EVERY == REJECTED_EVERY - 1
        desired: dict[str, object] = {
            "alarm_limits": {ALARM_METRIC: {"max": 110.0 + n % 20}},
        }
        if rejected:
            desired["firmware_channel"] = "beta"  # not a setting this firmware knows
        response = web.put(f"/devices/{device}/twin/desired", json={"desired": desired})
        response.raise_for_status()
        version = int(response.json()["desired_version"])
        self.counts.configs.append(
            ConfigSent(device, version, "rejected" if rejected else "applied")
        )

    def _command(self, web: httpx.Client, device: int, key: str) -> None:
        response = web.post(
            f"/devices/{device}/commands",
            json={"name": "self_test", "ttl_s": self.command_ttl_s},
            headers={"Idempotency-Key": key},
        )
        response.raise_for_status()
        if response.headers.get("Idempotent-Replayed") == "true":
            self.counts.replayed += 1
        self.counts.commands.append(str(response.json()["id"]))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)


def outstanding(database_url: str) -> int:
    """Commands not answered yet plus twins whose device has not reported the desired version."""
    with psycopg.connect(database_url, connect_timeout=3) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM device_commands WHERE status IN ('queued', 'sent'))"
            " + (SELECT count(*) FROM device_twins WHERE reported_version < desired_version)"
        ).fetchone()
    return 0 if row is None else int(str(row[0]))


def read_ledger(database_url: str, counts: OperatorCounts) -> DownlinkLedger:
    last: dict[int, tuple[int, str]] = {}
    for sent in counts.configs:
        if sent.version > last.get(sent.device_id, (0, ""))[0]:
            last[sent.device_id] = (sent.version, sent.expect)
    with psycopg.connect(database_url, connect_timeout=3) as conn:
        twins = {
            int(str(device)): (int(str(desired)), int(str(reported)), None if s is None else str(s))
            for device, desired, reported, s in conn.execute(
                "SELECT device_id, desired_version, reported_version, reported_status"
                " FROM device_twins WHERE desired_version > 0"
            ).fetchall()
        }
        commands = {
            str(command): str(status)
            for command, status in conn.execute(
                "SELECT command_id, status FROM device_commands"
            ).fetchall()
        }
    return DownlinkLedger(
        last, twins, list(counts.commands), commands, counts.refused, counts.replayed
    )


@dataclass(frozen=True)
class DownlinkTimes:
    """Seconds from the API's commit to the device's answer (the device's clock)."""

    config: list[float]
    command: list[float]
    slowest_config: str = ""
    """The device whose config took longest (to read against the fault timeline)."""
    slowest_command: str = ""


def read_times(database_url: str) -> DownlinkTimes:
    """Only the last desired version of a device is timed (the twin keeps no history)."""
    with psycopg.connect(database_url, connect_timeout=3) as conn:
        config = conn.execute(
            "SELECT extract(epoch FROM t.reported_at - t.desired_at), d.external_id"
            " FROM device_twins t JOIN devices d ON d.id = t.device_id"
            " WHERE t.desired_version > 0 AND t.reported_version = t.desired_version"
            " AND t.reported_at IS NOT NULL ORDER BY 1"
        ).fetchall()
        command = conn.execute(
            "SELECT extract(epoch FROM c.answered_at - c.created_at), d.external_id"
            " FROM device_commands c JOIN devices d ON d.id = c.device_id"
            " WHERE c.answered_at IS NOT NULL ORDER BY 1"
        ).fetchall()
    return DownlinkTimes(
        [float(str(r[0])) for r in config],
        [float(str(r[0])) for r in command],
        str(config[-1][1]) if config else "",
        str(command[-1][1]) if command else "",
    )
