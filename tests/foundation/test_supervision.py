"""The process group behind ``fleetcare up``: restarts with back-off, stops everything."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from fleetcare.supervision import ProcessGroup, ProcessSpec, RestartPolicy


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _wait_for(predicate: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_a_crashing_member_is_restarted_and_a_healthy_one_left_alone(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    crasher = _python(
        f"open({str(starts)!r}, 'a').write('x'); import sys; sys.exit(3)",
    )
    sleeper = _python("import time; time.sleep(60)")
    group = ProcessGroup(
        [ProcessSpec("crasher", crasher), ProcessSpec("sleeper", sleeper)],
        env={},
        policy=RestartPolicy(first_delay_s=0.05, max_delay_s=0.2, healthy_after_s=30),
        stop_timeout_s=5,
    )
    group.start()
    try:
        sleeper_pid = next(s.pid for s in group.status() if s.name == "sleeper")

        def started_three_times() -> bool:
            group.check()
            return starts.exists() and len(starts.read_text()) >= 3

        _wait_for(started_three_times)
        status = {s.name: s for s in group.status()}
        assert status["crasher"].restarts >= 2
        assert status["crasher"].last_exit_code == 3
        assert status["sleeper"].pid == sleeper_pid
        assert status["sleeper"].restarts == 0
    finally:
        group.stop()
    assert all(not s.running and s.pid is None for s in group.status())


def test_back_off_doubles_on_quick_crashes_up_to_the_cap() -> None:
    policy = RestartPolicy(first_delay_s=1, max_delay_s=8)
    assert [policy.delay(n) for n in range(1, 7)] == [1, 2, 4, 8, 8, 8]


def test_stop_kills_a_member_that_ignores_sigterm() -> None:
    stubborn = _python(
        "import signal, time, sys\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)"
    )
    group = ProcessGroup([ProcessSpec("stubborn", stubborn)], env={}, stop_timeout_s=0.5)
    group.start()
    time.sleep(0.5)
    started = time.monotonic()
    group.stop()
    assert time.monotonic() - started < 5
    assert group.status()[0].pid is None


def test_names_must_be_unique() -> None:
    with pytest.raises(ValueError, match="repeated: api"):
        ProcessGroup([ProcessSpec("api", ["true"]), ProcessSpec("api", ["true"])], env={})


@pytest.mark.skipif(sys.platform != "linux", reason="parent-death signal is Linux-only")
def test_members_stop_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    """A supervisor killed with SIGKILL leaves no service running behind it."""
    import os
    import signal
    import subprocess

    pid_file = tmp_path / "member.pid"
    supervisor = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from fleetcare.supervision import ProcessGroup, ProcessSpec\n"
            f"member = [sys.executable, '-c', \"import os, time; open({str(pid_file)!r}, 'w')"
            '.write(str(os.getpid())); time.sleep(60)"]\n'
            "group = ProcessGroup([ProcessSpec('member', member)], env={})\n"
            "group.start()\n"
            "time.sleep(60)\n",
        ]
    )
    _wait_for(lambda: pid_file.exists() and pid_file.read_text() != "")
    member_pid = int(pid_file.read_text())
    supervisor.send_signal(signal.SIGKILL)
    supervisor.wait()

    def member_gone() -> bool:
        try:
            os.kill(member_pid, 0)
        except ProcessLookupError:
            return True
        # A zombie (re-parented, not yet reaped) counts as gone.
        with open(f"/proc/{member_pid}/stat") as stat:
            return stat.read().split(") ", 1)[1].startswith("Z")

    _wait_for(member_gone)
