"""The gateway's exception tree: one root, errors that carry what went wrong."""

from __future__ import annotations

__all__ = ["GatewayConfigError", "GatewayError", "RegisterMapError"]


class GatewayError(Exception):
    """Root of every error the gateway raises on purpose."""


class GatewayConfigError(GatewayError, ValueError):
    """A configuration (file or pushed from the backend) did not validate.

    Attributes:
        problems: ``(key, message)`` pairs; ``key`` is the dotted path of the offending
            setting, e.g. ``site.modbus[0].registers[2].data_type``.
    """

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = "; ".join(f"{key}: {message}" for key, message in problems)
        super().__init__(f"invalid gateway configuration ({source}): {lines}")


class RegisterMapError(GatewayConfigError):
    """A Modbus register map is inconsistent (overlaps, bad sizes, duplicate metrics)."""
