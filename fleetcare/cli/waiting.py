"""Block a command until a duration passes or the user stops it (Ctrl-C or SIGTERM)."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from types import FrameType


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def wait_until_stopped(
    duration_s: float | None, on_waiting: Callable[[], None] | None = None
) -> bool:
    """Sleep for ``duration_s`` seconds (forever when ``None``).

    SIGTERM is treated like Ctrl-C while waiting, so that ``kill`` and container stops also
    shut down what the command started. ``on_waiting`` runs once the wait has begun (print
    "press Ctrl-C" there: a Ctrl-C after it counts as a stop, not as an abort).

    Returns:
        ``True`` when stopped by Ctrl-C or SIGTERM, ``False`` when the duration elapsed.
    """
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if in_main_thread else None
    deadline = None if duration_s is None else time.monotonic() + duration_s
    try:
        if on_waiting is not None:
            on_waiting()
        while deadline is None or time.monotonic() < deadline:
            remaining = 0.5 if deadline is None else deadline - time.monotonic()
            time.sleep(max(0.0, min(0.5, remaining)))
    except KeyboardInterrupt:
        return True
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    return False
