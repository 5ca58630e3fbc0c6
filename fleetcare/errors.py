"""The root of fleetcare's exception tree for the shared layer (CLI, config, embedded services)."""

from __future__ import annotations


class FleetcareError(Exception):
    """Base class of every error raised by the shared fleetcare layer."""


class ConfigError(FleetcareError):
    """A setting is malformed or missing.

    Attributes:
        problems: one ``(key, message)`` pair per bad setting; ``key`` is the
            environment variable (or TOML key) the user has to fix.
    """

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        lines = [f"  {key}: {message}" for key, message in problems]
        super().__init__("invalid configuration:\n" + "\n".join(lines))


class ServiceUnavailableError(FleetcareError):
    """A configured service (database, broker) could not be reached.

    Attributes:
        service: what was being reached ("database", "mqtt broker").
        target: the address that was tried, with any password redacted.
        attempts: what was tried, in order, each with the error it gave.
    """

    def __init__(self, service: str, target: str, attempts: list[str], hint: str = "") -> None:
        self.service = service
        self.target = target
        self.attempts = attempts
        self.hint = hint
        tried = "\n".join(f"  - {attempt}" for attempt in attempts)
        message = f"{service} unreachable at {target}\ntried:\n{tried}"
        if hint:
            message += f"\nhint: {hint}"
        super().__init__(message)


class EmbeddedServiceError(FleetcareError):
    """An embedded service (PostgreSQL, MQTT broker) failed to start or stop."""
