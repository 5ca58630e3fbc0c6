"""Stopping long-running commands: SIGTERM and SIGINT raise ``KeyboardInterrupt`` inside
``stop_signals_interrupt``, even in a process started with SIGINT ignored (a background job
of a script, or the demo's children), and the demo's children stop at once, not at the kill
deadline."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fleetcare.demo.child import ChildProcess

_REPO_ROOT = Path(__file__).resolve().parents[2]

# Starts with SIGINT ignored, as a child of a non-interactive shell's background job does.
_WAITER = textwrap.dedent(
    """
    import signal, sys, time
    from fleetcare.cli.waiting import stop_signals_interrupt

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with stop_signals_interrupt():
            print("ready", flush=True)
            time.sleep(60)
    except KeyboardInterrupt:
        restored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        print("interrupted; SIGINT ignored again:", restored, flush=True)
        sys.exit(130)
    """
)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_process_with_sigint_ignored_stops_on_either_signal(signum: int) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", _WAITER], cwd=_REPO_ROOT, stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        started = time.monotonic()
        process.send_signal(signum)
        rest, _ = process.communicate(timeout=10)
    assert process.returncode == 130
    assert time.monotonic() - started < 5
    assert rest.strip() == "interrupted; SIGINT ignored again: True"


def test_outside_the_main_thread_the_handlers_are_left_alone() -> None:
    import threading

    from fleetcare.cli.waiting import stop_signals_interrupt

    before = signal.getsignal(signal.SIGTERM)
    seen: list[object] = []

    def inside() -> None:
        with stop_signals_interrupt():
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=inside)
    thread.start()
    thread.join(5)
    assert seen == [before]


def test_the_demo_stops_a_child_at_once_even_with_sigint_ignored(tmp_path: Path) -> None:
    import os

    log = tmp_path / "child.log"
    child = ChildProcess("waiter", ["-c", _WAITER], dict(os.environ), log)
    child.start()
    deadline = time.monotonic() + 20
    while "ready" not in (log.read_text() if log.is_file() else ""):
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.05)
    started = time.monotonic()
    child.stop(timeout_s=15)
    assert child.exit_code == 130, child.tail()  # stopped by its signal, not killed
    assert time.monotonic() - started < 5
    assert "interrupted" in child.tail()
