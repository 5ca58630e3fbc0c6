"""Free-port discovery and readiness checks for locally started services."""

from __future__ import annotations

import random
import socket
import time
from contextlib import ExitStack
from pathlib import Path

_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def free_tcp_port_run(count: int, host: str = "127.0.0.1", attempts: int = 200) -> int:
    """Return the first of ``count`` consecutive TCP ports on ``host`` that are all free.

    For services that listen on ``base + index`` (one port per worker). The run is drawn
    below the kernel's ephemeral range, so outgoing connections made by other processes
    cannot take one of its ports between this check and the bind; every port of the run
    is bound at once to check it.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    low, high = 10_000, _ephemeral_start() - count
    if high <= low:
        raise RuntimeError(f"no room for {count} ports below the ephemeral range")
    for _ in range(attempts):
        base = random.randrange(low, high)  # noqa: S311 (a port, not a secret)
        try:
            with ExitStack() as held:
                for port in range(base, base + count):
                    sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                    sock.bind((host, port))
        except OSError:
            continue
        return base
    raise RuntimeError(f"found no {count} consecutive free ports on {host} in {attempts} tries")


def _ephemeral_start() -> int:
    """The first port of the kernel's ephemeral range (32768, Linux's default, elsewhere)."""
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def wait_for_port(host: str, port: int, timeout_s: float) -> bool:
    """Poll until ``host:port`` accepts a TCP connection; ``False`` on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False
