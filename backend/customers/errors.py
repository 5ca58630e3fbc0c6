"""Errors of the customers application: one root, each carrying what the caller needs."""

from __future__ import annotations


class CustomersError(Exception):
    """Root of every error raised by ``backend.customers``."""


class AccountNotFoundError(CustomersError, LookupError):
    """No account with that id (or it is outside the caller's scope)."""

    def __init__(self, account_id: int) -> None:
        super().__init__(f"account {account_id} not found")
        self.account_id = account_id


class DecisionNotFoundError(CustomersError, LookupError):
    """No current identity decision with that id."""

    def __init__(self, decision_id: int) -> None:
        super().__init__(f"identity decision {decision_id} not found or already superseded")
        self.decision_id = decision_id


class InvalidRecordError(CustomersError, ValueError):
    """A source record that cannot be imported; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ImportFileError(CustomersError, ValueError):
    """A file that cannot be read at all (unknown format, not UTF-8, not a list of records)."""


class WeightsError(CustomersError, ValueError):
    """A health-weights file that is missing, malformed or inconsistent."""


class AlreadyErasedError(CustomersError):
    """The account was erased before; there is nothing left to erase or export."""

    def __init__(self, account_id: int) -> None:
        super().__init__(f"account {account_id} was already erased")
        self.account_id = account_id
