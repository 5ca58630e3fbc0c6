"""Which known account a source record belongs to: exact keys first, then fuzzy evidence.

Pure and in memory: :class:`AccountIndex` holds what every account is known as (names,
domains, VAT ids, phones, countries, regions, industries) and scores a new record against
it. Exact keys (website/e-mail domain, VAT id, phone) that point at one account decide with
confidence 1; so does an identical name (legal form aside) that only one account has.
Otherwise the closest names are scored on name similarity (weight 0.6), location (country,
else region: 0.15), contract (renewal date and value: 0.15), industry (0.1) and keys (0.3:
a domain, VAT id or phone that both sides know but that differ says "another customer");
a measure that one side does not know is left out and the others are re-weighted.

Name similarity weighs each word by its rarity among known names (a shared "Packaging" says
little, a shared "Velford" a lot); words match exactly, through one edit or transposition
(scaled), or as an abbreviation ("P." for "Process").
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from backend.customers.normalise import domain_key, name_key, phone_key, vat_key
from backend.customers.records import SourceAccount

WEIGHTS = {"name": 0.6, "location": 0.15, "contract": 0.15, "industry": 0.1, "keys": 0.3}
NAME_SHORTLIST = 8


@dataclass(frozen=True)
class Candidate:
    """A possible account for a record, with how sure and why."""

    account_id: int
    confidence: float
    method: Literal["exact", "fuzzy"]
    evidence: dict[str, Any]


@dataclass
class _Profile:
    names: set[str] = field(default_factory=set)
    countries: set[str] = field(default_factory=set)
    regions: set[str] = field(default_factory=set)
    industries: set[str] = field(default_factory=set)
    renewals: set[str] = field(default_factory=set)
    keys: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    term_values: list[float] = field(default_factory=list)


def _word_similarity(word: str, other: str) -> float:
    if word == other:
        return 1.0
    short, long_ = sorted((word, other), key=len)
    if len(short) <= 3 and long_.startswith(short[0]):
        return 0.8
    similarity = OSA.normalized_similarity(word, other)
    return max(0.0, (similarity - 0.5) / 0.5)


def _directed(words: list[str], others: list[str], weight: dict[str, float]) -> float:
    total = sum(weight[w] for w in words)
    if total == 0:
        return 0.0
    return sum(weight[w] * max(_word_similarity(w, o) for o in others) for w in words) / total


def name_similarity(left: str, right: str, rarity: dict[str, float] | None = None) -> float:
    """0..1 similarity of two name keys, each word weighted by ``rarity`` (default 1)."""
    a, b = left.split(), right.split()
    if not a or not b:
        return 0.0
    weight = {w: (rarity or {}).get(w, 1.0) for w in a + b}
    there, back = _directed(a, b, weight), _directed(b, a, weight)
    return 0.7 * max(there, back) + 0.3 * min(there, back)


def _agreement(value: str, known: set[str]) -> float | None:
    if not value or not known:
        return None
    return 1.0 if value.casefold() in known else 0.0


class AccountIndex:
    """What each account is known as, for scoring new records against."""

    def __init__(self) -> None:
        self._exact: dict[str, dict[str, set[int]]] = {
            "domain": defaultdict(set),
            "vat_id": defaultdict(set),
            "phone": defaultdict(set),
            "name": defaultdict(set),
        }
        self._profiles: dict[int, _Profile] = defaultdict(_Profile)
        self._name_choices: list[str] = []
        self._name_owner: list[int] = []
        self._word_counts: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._profiles)

    def add(self, account_id: int, record: SourceAccount) -> None:
        """Remember that ``record`` belongs to ``account_id``."""
        profile = self._profiles[account_id]
        for key_name, value in self._keys(record).items():
            if value:
                self._exact[key_name][value].add(account_id)
                profile.keys[key_name].add(value)
        key = name_key(record.name)
        if key and key not in profile.names:
            profile.names.add(key)
            self._name_choices.append(key)
            self._name_owner.append(account_id)
            self._word_counts.update(set(key.split()))
        if record.renewal_date is not None:
            profile.renewals.add(record.renewal_date.isoformat())
        term_value = _term_value(record)
        if term_value is not None:
            profile.term_values.append(term_value)
        for target, value in (
            (profile.countries, record.country),
            (profile.regions, record.region),
            (profile.industries, record.industry),
        ):
            if value:
                target.add(value.casefold())

    @staticmethod
    def _keys(record: SourceAccount) -> dict[str, str]:
        return {
            "domain": domain_key(record.domain),
            "vat_id": vat_key(record.vat_id),
            "phone": phone_key(record.phone),
            "name": name_key(record.name),
        }

    def best(self, record: SourceAccount) -> Candidate | None:
        """The most likely account for ``record``, or ``None`` when nothing resembles it."""
        for key_name, value in self._keys(record).items():
            owners = self._exact[key_name].get(value) if value else None
            if owners is not None and len(owners) == 1:
                (owner,) = owners
                return Candidate(owner, 1.0, "exact", {"key": key_name, "value": value})
        scored = [self._score(record, account_id) for account_id in self._shortlist(record)]
        if not scored:
            return None
        return max(scored, key=lambda c: (c.confidence, -c.account_id))

    def _shortlist(self, record: SourceAccount) -> set[int]:
        key = name_key(record.name)
        if not key or not self._name_choices:
            return set()
        found = process.extract(
            key, self._name_choices, scorer=fuzz.WRatio, limit=NAME_SHORTLIST, score_cutoff=50
        )
        return {self._name_owner[index] for _, _, index in found}

    def _key_agreement(self, record: SourceAccount, profile: _Profile) -> float | None:
        """Domain, VAT id and phone that both sides know: 1 if one agrees, 0 if all differ."""
        compared = [
            value in profile.keys[name]
            for name, value in self._keys(record).items()
            if name != "name" and value and profile.keys.get(name)
        ]
        if not compared:
            return None
        return 1.0 if any(compared) else 0.0

    def _rarity(self) -> dict[str, float]:
        total = max(1, len(self._name_choices))
        return {w: math.log(1 + total / n) for w, n in self._word_counts.items()}

    def _score(self, record: SourceAccount, account_id: int) -> Candidate:
        profile = self._profiles[account_id]
        key = name_key(record.name)
        rarity = self._rarity()
        similarity = max(
            (name_similarity(key, known, rarity) for known in profile.names), default=0.0
        )
        if record.country and profile.countries:
            location = _agreement(record.country, profile.countries)
        else:
            location = _agreement(record.region, profile.regions)
        measures: dict[str, float | None] = {
            "name": similarity,
            "location": location,
            "contract": _contract_agreement(record, profile),
            "keys": self._key_agreement(record, profile),
            "industry": _agreement(record.industry, profile.industries),
        }
        known = {k: v for k, v in measures.items() if v is not None}
        confidence = sum(WEIGHTS[k] * v for k, v in known.items()) / sum(WEIGHTS[k] for k in known)
        evidence = {k: (round(v, 3) if v is not None else None) for k, v in measures.items()}
        return Candidate(account_id, round(min(confidence, 0.99), 3), "fuzzy", evidence)


def _term_value(record: SourceAccount) -> float | None:
    if record.term_value is not None:
        return record.term_value
    if record.annual_value is not None and record.term_months:
        return record.annual_value * record.term_months / 12
    return None


def _contract_agreement(record: SourceAccount, profile: _Profile) -> float | None:
    """Same renewal date and same contract value (within 1 %): 1; one of the two: 0.5."""
    parts: list[float] = []
    if record.renewal_date is not None and profile.renewals:
        parts.append(1.0 if record.renewal_date.isoformat() in profile.renewals else 0.0)
    value = _term_value(record)
    if value is not None and profile.term_values:
        close = any(abs(value - v) <= 0.01 * max(v, 1.0) for v in profile.term_values)
        parts.append(1.0 if close else 0.0)
    return sum(parts) / len(parts) if parts else None
