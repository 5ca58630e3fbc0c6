"""What PostgreSQL's ``jsonb`` refuses that JSON allows."""

from __future__ import annotations

from typing import Any


def has_nul(value: Any) -> bool:
    """Whether a string anywhere in ``value`` (keys included) holds a NUL character, which
    ``jsonb`` cannot store (``\\u0000``)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_nul(v) for v in value)
    return False
