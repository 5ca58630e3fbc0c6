"""Passwords in mosquitto's PBKDF2-SHA512 format, as ``mosquitto_passwd`` writes them.

``$7$<iterations>$<base64 salt>$<base64 hash>``: 12 random salt bytes, a 64-byte SHA-512
PBKDF2 digest, standard base64 with padding. Device credentials are stored in this form in
``devices.credential_hash``, so the broker's password file is generated without ever
keeping a plaintext password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

DEFAULT_ITERATIONS = 101  # mosquitto_passwd's default
SALT_BYTES = 12
_FORMAT = re.compile(r"^\$7\$([0-9]{1,7})\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$")


def hash_password(
    password: str, *, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None
) -> str:
    """The mosquitto ``$7$`` hash of ``password`` with a fresh (or the given) salt."""
    if iterations < 1:
        raise ValueError("iterations must be positive")
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    salt_b64 = base64.b64encode(salt).decode()
    digest_b64 = base64.b64encode(digest).decode()
    return f"$7${iterations}${salt_b64}${digest_b64}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a ``$7$`` hash (constant-time comparison)."""
    match = _FORMAT.match(stored)
    if match is None:
        return False
    iterations = int(match.group(1))
    salt = base64.b64decode(match.group(2))
    expected = base64.b64decode(match.group(3))
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return hmac.compare_digest(digest, expected)


def new_password() -> str:
    """A random device password (256 bits, URL-safe characters)."""
    return secrets.token_urlsafe(32)
