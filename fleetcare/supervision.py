"""Run a group of long-lived processes, restart the ones that die, stop them all together.

Used by ``fleetcare up`` (one process per backend service). A process that exits while the
group is running is started again after a back-off that doubles on each quick crash (a process
that ran for ``healthy_after_s`` starts again at the first delay), so a service that cannot
start does not spin. Stopping sends SIGTERM to every process (they drain and disconnect) and
SIGKILL to those still running after ``stop_timeout_s``.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

log = logging.getLogger("fleetcare.supervision")

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM me when the supervisor dies, even by SIGKILL (Linux)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


@dataclass(frozen=True)
class ProcessSpec:
    """One member of a group: a name for logs and the command that runs it."""

    name: str
    argv: Sequence[str]


@dataclass(frozen=True)
class RestartPolicy:
    first_delay_s: float = 1.0
    max_delay_s: float = 30.0
    healthy_after_s: float = 30.0

    def delay(self, quick_crashes: int) -> float:
        """The wait before the next start after ``quick_crashes`` crashes in a row."""
        return float(min(self.max_delay_s, self.first_delay_s * 2 ** max(0, quick_crashes - 1)))


@dataclass
class _Member:
    spec: ProcessSpec
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    quick_crashes: int = 0
    restart_at: float | None = None
    exit_codes: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class MemberStatus:
    name: str
    pid: int | None
    running: bool
    restarts: int
    last_exit_code: int | None


class ProcessGroup:
    """Start, watch and stop a set of processes sharing one environment.

    Args:
        specs: the members; names must be unique.
        env: the environment every member gets.
        policy: restart back-off.
        clock: monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        specs: Sequence[ProcessSpec],
        env: Mapping[str, str],
        policy: RestartPolicy | None = None,
        stop_timeout_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        names = [spec.name for spec in specs]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"process names must be unique; repeated: {', '.join(duplicates)}")
        self._members = {spec.name: _Member(spec) for spec in specs}
        self._env = dict(env)
        self._policy = policy or RestartPolicy()
        self._stop_timeout_s = stop_timeout_s
        self._clock = clock

    def _spawn(self, member: _Member) -> None:
        member.process = subprocess.Popen(
            list(member.spec.argv),
            env=self._env,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        member.started_at = self._clock()
        member.restart_at = None
        log.info("%s started (pid %d)", member.spec.name, member.process.pid)

    def start(self) -> None:
        for member in self._members.values():
            self._spawn(member)

    def check(self) -> None:
        """Notice exits and restart what is due; call it periodically."""
        now = self._clock()
        for member in self._members.values():
            if member.process is not None:
                code = member.process.poll()
                if code is None:
                    continue
                member.exit_codes.append(code)
                ran_s = now - member.started_at
                member.quick_crashes = (
                    1 if ran_s >= self._policy.healthy_after_s else member.quick_crashes + 1
                )
                wait_s = self._policy.delay(member.quick_crashes)
                log.warning(
                    "%s (pid %d) exited with %s after %.1f s; restarting in %.1f s",
                    member.spec.name,
                    member.process.pid,
                    code,
                    ran_s,
                    wait_s,
                )
                member.process = None
                member.restart_at = now + wait_s
            if member.restart_at is not None and now >= member.restart_at:
                member.restarts += 1
                self._spawn(member)

    def status(self) -> list[MemberStatus]:
        return [
            MemberStatus(
                name=name,
                pid=member.process.pid if member.process is not None else None,
                running=member.process is not None and member.process.poll() is None,
                restarts=member.restarts,
                last_exit_code=member.exit_codes[-1] if member.exit_codes else None,
            )
            for name, member in self._members.items()
        ]

    def stop(self) -> None:
        running = [m for m in self._members.values() if m.process is not None]
        for member in running:
            assert member.process is not None
            if member.process.poll() is None:
                member.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self._stop_timeout_s
        for member in running:
            assert member.process is not None
            try:
                member.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("%s did not stop in time; killing it", member.spec.name)
                member.process.kill()
                member.process.wait()
            member.process = None
        for member in self._members.values():
            member.restart_at = None
