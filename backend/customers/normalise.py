"""Normal forms of the values identity resolution compares: names, domains, phones, VAT ids."""

from __future__ import annotations

import re
import unicodedata

# Legal-form suffixes, longest first so that "S.A. de C.V." wins over "S.A.".
LEGAL_SUFFIXES: tuple[str, ...] = tuple(
    sorted(
        (
            "S.A. de C.V.",
            "Sp. z o.o.",
            "Co., Ltd.",
            "(Pty) Ltd",
            "Pte. Ltd.",
            "Pty Ltd",
            "GmbH",
            "B.V.",
            "AB",
            "S.L.",
            "S.r.l.",
            "Lda.",
            "S.A.",
            "Inc.",
            "Ltd.",
            "Ltd",
            "Ltda.",
            "SpA",
            "LLC",
            "Co.",
            "K.K.",
            "plc",
            "AG",
            "Oy",
            "SAS",
            "NV",
        ),
        key=len,
        reverse=True,
    )
)
FREE_MAIL_DOMAINS = frozenset(
    {"gmail.com", "outlook.com", "hotmail.com", "yahoo.com", "icloud.com", "gmx.de", "web.de"}
)
_SPACES = re.compile(r"\s+")
_NOT_WORD = re.compile(r"[^\w ]+")


def strip_legal_suffix(name: str) -> str:
    """``name`` without a trailing legal form (case-insensitive), trailing blanks removed."""
    trimmed = name.rstrip()
    lowered = trimmed.casefold()
    for suffix in LEGAL_SUFFIXES:
        folded = suffix.casefold()
        if lowered.endswith(" " + folded):
            return trimmed[: len(trimmed) - len(suffix)].rstrip()
    return trimmed


def name_key(name: str) -> str:
    """Comparison form of a company name: no legal form, accents, punctuation or case."""
    core = strip_legal_suffix(name)
    ascii_form = unicodedata.normalize("NFKD", core).encode("ascii", "ignore").decode()
    return _SPACES.sub(" ", _NOT_WORD.sub(" ", ascii_form.casefold())).strip()


def domain_key(value: str) -> str:
    """The registrable host of a website, e-mail address or bare domain (``""`` if none)."""
    text = value.strip().casefold()
    if not text:
        return ""
    if "@" in text:
        text = text.rsplit("@", 1)[1]
    text = re.sub(r"^[a-z][a-z0-9+.-]*://", "", text)
    text = text.split("/", 1)[0].split(":", 1)[0]
    text = text.removeprefix("www.")
    if "." not in text or text in FREE_MAIL_DOMAINS:
        return ""
    return text


def phone_key(value: str) -> str:
    """Digits of a phone number; shorter than 7 digits is no key at all."""
    digits = re.sub(r"\D", "", value)
    return digits if len(digits) >= 7 else ""


def vat_key(value: str) -> str:
    """A VAT id without blanks, dots and dashes, upper case."""
    return re.sub(r"[\s.\-]", "", value).upper()
