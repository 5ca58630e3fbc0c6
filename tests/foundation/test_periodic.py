"""The periodic-pass loop of the backend services: cadence, expected and unexpected errors."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from fleetcare.periodic import every_interval


def test_passes_run_at_the_interval_and_stop_when_asked() -> None:
    stop = threading.Event()
    started: list[float] = []

    def one_pass() -> int:
        started.append(time.monotonic())
        if len(started) == 3:
            stop.set()
        return len(started)

    reported: list[int] = []
    every_interval(0.2, stop, one_pass, on_pass=reported.append, expected=(), on_failure=print)
    assert reported == [1, 2, 3]
    gaps = [b - a for a, b in itertools.pairwise(started)]
    assert all(0.18 <= gap < 1.0 for gap in gaps), gaps


def test_an_expected_error_is_reported_and_the_next_pass_runs() -> None:
    stop = threading.Event()
    calls: list[int] = []
    failures: list[Exception] = []

    def one_pass() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("database restarting")
        stop.set()

    every_interval(0.01, stop, one_pass, expected=(OSError,), on_failure=failures.append)
    assert len(calls) == 2 and [str(f) for f in failures] == ["database restarting"]


def test_an_unexpected_error_ends_the_loop() -> None:
    def one_pass() -> None:
        raise ZeroDivisionError("a bug")

    with pytest.raises(ZeroDivisionError):
        every_interval(0.01, threading.Event(), one_pass, expected=(OSError,), on_failure=print)


def test_a_service_that_fails_ends_its_command_with_the_error() -> None:
    """Not a process idling with nothing running: ``fleetcare up`` restarts one that exits."""
    from fleetcare.cli.waiting import run_until_stopped

    def broken(stop: threading.Event) -> None:
        stop.wait(0.2)
        raise RuntimeError("poisoned")

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="poisoned"):
        run_until_stopped("broken", broken, None)
    assert time.monotonic() - started < 5


def test_a_service_runs_until_its_duration() -> None:
    from fleetcare.cli.waiting import run_until_stopped

    seen: list[bool] = []
    started = time.monotonic()
    run_until_stopped("idle", lambda stop: seen.append(stop.wait(30)), 0.5)
    assert seen == [True] and 0.4 < time.monotonic() - started < 5
