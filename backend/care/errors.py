"""The care package's errors: one root, each carrying what went wrong."""

from __future__ import annotations

from fleetcare.errors import FleetcareError


class CareError(FleetcareError):
    """Root of every error raised by :mod:`backend.care`."""


class TransitionError(CareError, ValueError):
    """A lifecycle transition that is not allowed from the current status."""

    def __init__(self, kind: str, subject_id: int, from_status: str, to_status: str, why: str):
        self.kind = kind
        self.subject_id = subject_id
        self.from_status = from_status
        self.to_status = to_status
        super().__init__(
            f"{kind} {subject_id}: cannot go from {from_status!r} to {to_status!r}: {why}"
        )


class NotFoundError(CareError, LookupError):
    """A ticket, alert, rule or webhook that does not exist."""

    def __init__(self, kind: str, subject_id: int | str):
        self.kind = kind
        self.subject_id = subject_id
        super().__init__(f"{kind} {subject_id} not found")


class RuleError(CareError, ValueError):
    """A rule definition that does not validate; ``problems`` lists each bad field."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"invalid care rules in {source}: " + "; ".join(problems))


class AssignmentError(CareError, ValueError):
    """No field team can take a ticket (no team in its region with the needed skill)."""
