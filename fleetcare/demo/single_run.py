"""One demo at a time per data directory.

Two demos on one data directory share its embedded PostgreSQL and simulate the same fleet:
the second would delete what the first is storing (it forgets earlier runs of its devices)
and race it training the models. The demo holds an exclusive lock on
``DATA_DIR/demo/demo.lock`` for its whole run; a second demo is refused at once, naming the
first one's process id. The lock goes with the process, however it ends.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class DemoAlreadyRunningError(RuntimeError):
    """Another demo holds the data directory."""

    def __init__(self, data_dir: Path, holder: str) -> None:
        who = f"pid {holder}" if holder else "another process"
        super().__init__(
            f"another fleetcare demo ({who}) is running on the data directory {data_dir}; "
            "stop it first, or give this one another FLEETCARE_DATA_DIR"
        )


@contextmanager
def only_demo_in(data_dir: Path) -> Iterator[None]:
    """Hold the data directory's demo lock while the block runs.

    Raises:
        DemoAlreadyRunningError: another process holds it.
    """
    path = data_dir / "demo" / "demo.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            raise DemoAlreadyRunningError(data_dir, holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
