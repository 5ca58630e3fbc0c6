"""The device's clocks as the wire contract uses them.

* wall time: ``time.time_ns()``, sent as is (milliseconds since the Unix epoch);
* uptime: ``time.monotonic_ns()`` in milliseconds. On Linux this is ``CLOCK_MONOTONIC``,
  which counts from the operating system's boot, so it is comparable across process
  restarts within one boot;
* boot id: names the boot the uptime belongs to. On Linux, the kernel's boot id; elsewhere a
  random id per process (the monotonic clock's origin is then only valid in this process).
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

_LINUX_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def now_ms() -> int:
    """Wall-clock time in milliseconds since the Unix epoch."""
    return time.time_ns() // 1_000_000


def uptime_ms() -> int:
    """Monotonic time in milliseconds (since the OS booted, on Linux)."""
    return time.monotonic_ns() // 1_000_000


@lru_cache(maxsize=1)
def system_boot_id() -> str | None:
    """The kernel's boot id without dashes (Linux), or ``None`` where there is none."""
    try:
        raw = _LINUX_BOOT_ID.read_text().strip().replace("-", "")
    except OSError:
        return None
    return raw if raw.isalnum() and 0 < len(raw) <= 64 else None


@lru_cache(maxsize=1)
def boot_id() -> str:
    """The boot id sent on the wire: the kernel's, or a random one for this process."""
    return system_boot_id() or "p" + secrets.token_hex(12)


def datetime_to_ms(at: datetime) -> int:
    """``at`` (timezone-aware) in milliseconds since the epoch; raises ``ValueError`` if naive."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware (e.g. datetime.now(UTC))")
    return (at - _EPOCH) // _ONE_MS


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
