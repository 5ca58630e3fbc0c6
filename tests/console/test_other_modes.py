"""The other likely failure modes shown on a ticket, from its prediction's probabilities."""

from __future__ import annotations

from backend.console.queries import other_likely_modes


def test_most_probable_first_without_the_tickets_own_mode() -> None:
    stored = {"bearing_wear": 0.7, "seal_leak": 0.12, "strainer_clog": 0.3, "winding": 0.06}
    assert other_likely_modes(stored, "bearing_wear") == [
        ("strainer_clog", 0.3), ("seal_leak", 0.12), ("winding", 0.06),
    ]  # fmt: skip
    assert other_likely_modes(stored, "bearing_wear", shown=1) == [("strainer_clog", 0.3)]


def test_nothing_under_the_floor_and_nothing_malformed() -> None:
    stored = {"a": 0.9, "b": 0.04, "c": "high", "d": True, "e": float("nan"), "f": None}
    assert other_likely_modes(stored, "a") == []
    assert other_likely_modes(None, "a") == []
    assert other_likely_modes(["a", 0.5], "a") == []
