"""A pass every interval until stopped: the loop of the backend's periodic services.

The scoring worker, storage maintenance and the health service each run one pass, report
it, and wait for the rest of the interval. A pass that fails with one of the errors the
service expects (the database restarting, a model file unreadable) is reported and the next
pass runs at its time; any other error ends the loop, so a bug is not retried forever.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def every_interval(
    interval_s: float,
    stop: threading.Event,
    one_pass: Callable[[], T],
    *,
    on_pass: Callable[[T], None] | None = None,
    expected: tuple[type[Exception], ...],
    on_failure: Callable[[Exception], None],
) -> None:
    """Call ``one_pass`` every ``interval_s`` seconds (start to start) until ``stop`` is set."""
    while not stop.is_set():
        begun = time.monotonic()
        try:
            done = one_pass()
            if on_pass is not None:
                on_pass(done)
        except expected as exc:
            on_failure(exc)
        stop.wait(max(0.0, interval_s - (time.monotonic() - begun)))
