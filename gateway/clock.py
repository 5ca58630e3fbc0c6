"""The gateway's clocks, as the wire contract uses them (see ``docs/protocol.md`` section 6)."""

from __future__ import annotations

import secrets
import time
from functools import lru_cache
from pathlib import Path

__all__ = ["gateway_boot_id", "now_ms", "uptime_ms"]

_LINUX_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def now_ms() -> int:
    """Wall-clock time in milliseconds since the Unix epoch."""
    return time.time_ns() // 1_000_000


def uptime_ms() -> int:
    """``CLOCK_MONOTONIC`` in milliseconds: since the OS booted, on Linux."""
    return time.monotonic_ns() // 1_000_000


@lru_cache(maxsize=1)
def gateway_boot_id() -> str:
    """The kernel's boot id without dashes (Linux), else a random id for this process."""
    try:
        raw = _LINUX_BOOT_ID.read_text().strip().replace("-", "")
    except OSError:
        raw = ""
    return raw if raw.isalnum() and 0 < len(raw) <= 64 else "p" + secrets.token_hex(12)
