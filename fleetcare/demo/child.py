"""A child process of the demo: started with the services pinned in its environment, its
output in a log file, stopped with SIGTERM (then SIGKILL) when the demo ends. Each child
takes SIGTERM as Ctrl-C; SIGINT could be ignored in a child of a background job.

Scoring and the care engine run as children, as under ``fleetcare up``: they get a core of
their own and never compete with ingest for the demo process's interpreter lock.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[2]


class ChildProcess:
    """``python ARGV`` with ``env``, output to ``log``."""

    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.argv = [sys.executable, *argv]
        self.env = env
        self.log = log
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self._process = subprocess.Popen(
                self.argv,
                cwd=_REPO_ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C reaches the demo, which stops its children
            )

    @property
    def exit_code(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def tail(self, lines: int = 5) -> str:
        """The last lines of its output (to explain an early exit)."""
        text = self.log.read_text(errors="replace") if self.log.is_file() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout_s: float = 15.0) -> None:
        """Interrupt it and wait (idempotent); kill it if it does not stop in time."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
