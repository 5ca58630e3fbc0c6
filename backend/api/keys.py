"""API key format and hashing: ``fc_<prefix>_<secret>``, stored as a SHA-256 of the secret.

The secret is 256 bits from :mod:`secrets`, so a fast hash is enough (no dictionary to
attack); the prefix is stored in clear to find the row, the comparison is constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

KEY_PATTERN = re.compile(r"^fc_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_HASH_SCHEME = "sha256"


@dataclass(frozen=True)
class ParsedKey:
    """A key split into the part looked up (prefix) and the part verified (secret)."""

    prefix: str
    secret: str


def new_key() -> tuple[str, str, str]:
    """A fresh key: ``(plaintext, prefix, stored_hash)``."""
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return f"fc_{prefix}_{secret}", prefix, hash_secret(prefix, secret)


def parse_key(key: str) -> ParsedKey | None:
    """Split a presented key, or ``None`` when it does not have the key format."""
    match = KEY_PATTERN.match(key)
    if match is None:
        return None
    return ParsedKey(prefix=match.group(1), secret=match.group(2))


def hash_secret(prefix: str, secret: str) -> str:
    """The stored form: ``sha256$<hex digest of prefix:secret>``."""
    digest = hashlib.sha256(f"{prefix}:{secret}".encode()).hexdigest()
    return f"{_HASH_SCHEME}${digest}"


def verify_secret(parsed: ParsedKey, stored_hash: str) -> bool:
    """Whether the presented key matches the stored hash (constant-time comparison)."""
    return hmac.compare_digest(hash_secret(parsed.prefix, parsed.secret), stored_hash)
