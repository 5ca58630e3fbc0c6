"""Several ingest workers as processes (one Python process per core), restarted when they die.

Worker ``i`` runs ``python -m backend.ingest run --workers N --worker-index i`` with the same
settings and connects as ``{client_id_prefix}-{i}``. A worker that exits unexpectedly (a
crash, SIGKILL, the OOM killer) is started again with the same index, so it resumes its
persistent session: the broker keeps queueing the worker's messages (its partition's, or its
share of a shared subscription) in that session while it is away and delivers them when it
returns.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

log = logging.getLogger("fleetcare.ingest")

_RESTART_DELAY_S = 1.0
_STOP_TIMEOUT_S = 30.0


@dataclass
class _Child:
    index: int
    process: subprocess.Popen[bytes]
    started_at: float = field(default_factory=time.monotonic)
    restarts: int = 0


class Supervisor:
    """Start ``workers`` worker processes, restart the ones that die, stop them all.

    Args:
        workers: how many.
        env: the environment of the workers (database/broker URLs and the subscription
            mode resolved).
        extra_args: more ``run`` options for every worker.
    """

    def __init__(self, workers: int, env: dict[str, str], extra_args: Sequence[str] = ()) -> None:
        self.workers = workers
        self.env = env
        self.extra_args = list(extra_args)
        self.children: dict[int, _Child] = {}
        self.restarts = 0

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        command = [
            sys.executable,
            "-m",
            "backend.ingest",
            "run",
            "--workers",
            str(self.workers),
            "--worker-index",
            str(index),
            *self.extra_args,
        ]
        return subprocess.Popen(command, env=self.env)

    def start(self) -> None:
        for index in range(self.workers):
            self.children[index] = _Child(index, self._spawn(index))
            log.info("worker %d started (pid %d)", index, self.children[index].process.pid)

    def pids(self) -> dict[int, int]:
        return {i: c.process.pid for i, c in self.children.items()}

    def check(self) -> None:
        """Restart any worker that exited (call periodically)."""
        for index, child in list(self.children.items()):
            code = child.process.poll()
            if code is None:
                continue
            log.warning(
                "worker %d (pid %d) exited with %s; restarting it", index, child.process.pid, code
            )
            time.sleep(_RESTART_DELAY_S)
            restarted = _Child(index, self._spawn(index), restarts=child.restarts + 1)
            self.children[index] = restarted
            self.restarts += 1

    def stop(self) -> None:
        """SIGTERM every worker (they drain and disconnect), SIGKILL after a timeout."""
        for child in self.children.values():
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + _STOP_TIMEOUT_S
        for child in self.children.values():
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker %d did not stop in time; killing it", child.index)
                child.process.kill()
                child.process.wait()

    def run(self, duration_s: float | None) -> bool:
        """Supervise until ``duration_s`` passes or SIGINT/SIGTERM; returns ``True`` if stopped."""
        stopped = False

        def interrupt(signum: int, frame: object) -> None:
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGTERM, interrupt)
        deadline = None if duration_s is None else time.monotonic() + duration_s
        self.start()
        try:
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.2)
                self.check()
        except KeyboardInterrupt:
            stopped = True
        finally:
            signal.signal(signal.SIGTERM, previous)
            self.stop()
        return stopped


def worker_env(database_url: str, broker_url: str, topic_root: str) -> dict[str, str]:
    """The environment of a worker process: this one's, with the services pinned."""
    env = dict(os.environ)
    env["FLEETCARE_DATABASE_URL"] = database_url
    env["FLEETCARE_BROKER_URL"] = broker_url
    env["FLEETCARE_TOPIC_ROOT"] = topic_root
    return env
