"""What ``fleetcare gateway check`` verifies beyond the file's syntax and types: that the
files it names can be read, the model loads, and the data directory can be written.

A configuration can validate and still fail when the gateway starts (a CA file that is not
there, a model directory from another machine). The check finds those before a technician
leaves the site; each problem comes with the setting's dotted key, as syntax errors do.
"""

from __future__ import annotations

import os
from pathlib import Path

from gateway.config import GatewayConfig
from gateway.errors import GatewayConfigError


def preflight_problems(config: GatewayConfig) -> list[tuple[str, str]]:
    """``(key, message)`` for every setting that would stop the gateway from starting."""
    problems: list[tuple[str, str]] = []
    for name in ("ca_file", "cert_file", "key_file"):
        path = getattr(config.uplink, name)
        if path is not None and (problem := _unreadable(path)):
            problems.append((f"uplink.{name}", problem))
    if problem := _unwritable_dir(config.data_dir):
        problems.append(("data_dir", problem))
    if config.inference is not None:
        from gateway.inference import load_scorer

        try:
            load_scorer(config.inference)
        except GatewayConfigError as exc:
            problems.extend(exc.problems)
    return problems


def _unreadable(path: Path) -> str | None:
    if not path.is_file():
        return f"{path}: no such file"
    if not os.access(path, os.R_OK):
        return f"{path}: not readable by this user"
    return None


def _unwritable_dir(path: Path) -> str | None:
    """Why the gateway could not create or write ``path``, or ``None``."""
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        return f"{existing} is a file, not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "it" if existing == path else f"{existing}, where it would be created,"
        return f"{path}: {what} is not writable by this user"
    return None
