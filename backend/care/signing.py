"""Webhook signatures: ``X-Fleetcare-Signature: sha256=<hex HMAC-SHA256 of the body>``."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Fleetcare-Signature"
TIMESTAMP_HEADER = "X-Fleetcare-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
EVENT_HEADER = "X-Fleetcare-Event"
_PREFIX = "sha256="


def sign(secret: str, body: bytes) -> str:
    """The header value for ``body``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return _PREFIX + digest


def verify_signature(secret: str, body: bytes, header_value: str | None) -> bool:
    """Whether ``header_value`` is the signature of ``body`` (constant-time comparison)."""
    if not header_value or not header_value.startswith(_PREFIX):
        return False
    return hmac.compare_digest(sign(secret, body), header_value)
