"""Block a command until a duration passes or the user stops it (Ctrl-C or SIGTERM)."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """Inside the block, SIGTERM and SIGINT raise ``KeyboardInterrupt`` (main thread only).

    SIGINT too: a process started with SIGINT ignored (a background job of a
    non-interactive shell, or a child of one) would otherwise not react to it at all.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {
        signum: signal.signal(signum, _interrupt) for signum in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def wait_until_stopped(
    duration_s: float | None,
    on_waiting: Callable[[], None] | None = None,
    *,
    while_: Callable[[], bool] | None = None,
) -> bool:
    """Sleep for ``duration_s`` seconds (forever when ``None``).

    SIGTERM is treated like Ctrl-C while waiting, so that ``kill`` and container stops also
    shut down what the command started (:func:`stop_signals_interrupt`). ``on_waiting`` runs
    once the wait has begun (print "press Ctrl-C" there: a Ctrl-C after it counts as a
    stop, not as an abort). With ``while_``, the wait also ends as soon as it is false.

    Returns:
        ``True`` when stopped by Ctrl-C or SIGTERM, ``False`` when the duration elapsed.
    """
    deadline = None if duration_s is None else time.monotonic() + duration_s
    try:
        with stop_signals_interrupt():
            if on_waiting is not None:
                on_waiting()
            while deadline is None or time.monotonic() < deadline:
                if while_ is not None and not while_():
                    break
                remaining = 0.5 if deadline is None else deadline - time.monotonic()
                time.sleep(max(0.0, min(0.5, remaining)))
    except KeyboardInterrupt:
        return True
    return False


def run_until_stopped(
    name: str, target: Callable[[threading.Event], None], duration_s: float | None
) -> None:
    """Run ``target(stop)`` in a thread until ``duration_s`` passes or the user stops it.

    ``stop`` is set when the wait ends; the thread is joined before returning. If ``target``
    raises, the wait ends and its exception is raised here: the command exits with an error
    (and ``fleetcare up`` restarts the service) instead of idling with nothing running.
    """
    stop = threading.Event()
    failure: list[BaseException] = []

    def guarded(stop: threading.Event) -> None:
        try:
            target(stop)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=guarded, args=(stop,), name=name, daemon=True)
    thread.start()
    try:
        wait_until_stopped(duration_s, while_=thread.is_alive)
    finally:
        stop.set()
        thread.join()
    if failure:
        raise failure[0]
