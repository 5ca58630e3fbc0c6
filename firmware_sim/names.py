"""Synthetic company, person and place names (deterministic for a generator)."""

from __future__ import annotations

import numpy as np

_FIRST = (
    "Nor",
    "Vel",
    "Astra",
    "Bren",
    "Cor",
    "Dal",
    "Ever",
    "Fjor",
    "Gal",
    "Hel",
    "Iber",
    "Kest",
    "Lum",
    "Mar",
    "Nova",
    "Orr",
    "Pax",
    "Quin",
    "Ros",
    "Sol",
    "Tor",
    "Ul",
    "Vant",
    "Wes",
    "Xen",
    "Yar",
    "Zeph",
    "Alb",
    "Bel",
    "Cas",
)
_SECOND = (
    "dal",
    "mont",
    "wick",
    "ford",
    "ton",
    "stead",
    "holm",
    "vale",
    "crest",
    "gate",
    "bridge",
    "field",
    "mark",
    "brook",
    "haven",
    "ridge",
    "well",
    "port",
)
_TRADE = (
    "Water",
    "Foods",
    "Chemicals",
    "Mining",
    "Agri",
    "Manufacturing",
    "Systems",
    "Industries",
    "Process",
    "Utilities",
    "Logistics",
    "Packaging",
    "Metals",
)
_SUFFIX = {
    "DE": "GmbH",
    "NL": "B.V.",
    "SE": "AB",
    "PL": "Sp. z o.o.",
    "ES": "S.L.",
    "IT": "S.r.l.",
    "PT": "Lda.",
    "GR": "S.A.",
    "US": "Inc.",
    "CA": "Ltd.",
    "BR": "Ltda.",
    "CL": "SpA",
    "MX": "S.A. de C.V.",
    "AE": "LLC",
    "SA": "Co.",
    "ZA": "(Pty) Ltd",
    "SG": "Pte. Ltd.",
    "AU": "Pty Ltd",
    "JP": "K.K.",
    "CN": "Co., Ltd.",
}
_GIVEN = (
    "Anna",
    "Ben",
    "Carla",
    "David",
    "Elif",
    "Farid",
    "Greta",
    "Hiro",
    "Ines",
    "Jonas",
    "Kara",
    "Luis",
    "Mei",
    "Nadia",
    "Omar",
    "Priya",
    "Rafael",
    "Sofia",
    "Tomas",
    "Yuki",
)
_FAMILY = (
    "Berg",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fischer",
    "García",
    "Haddad",
    "Ito",
    "Jansen",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Rossi",
    "Silva",
    "Tan",
    "Weber",
    "Zhang",
)


def company_stem(rng: np.random.Generator) -> str:
    """A brand-like stem, e.g. ``Velford``."""
    return str(rng.choice(_FIRST)) + str(rng.choice(_SECOND))


def company_name(rng: np.random.Generator, stem: str) -> str:
    """A trading name from a stem, e.g. ``Velford Process``."""
    return f"{stem} {rng.choice(_TRADE)}"


def legal_suffix(country: str) -> str:
    return _SUFFIX.get(country, "Ltd.")


def person_name(rng: np.random.Generator) -> str:
    return f"{rng.choice(_GIVEN)} {rng.choice(_FAMILY)}"
