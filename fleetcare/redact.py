"""Redaction of secrets in connection URLs before they reach logs or error messages."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def redact_url(url: str) -> str:
    """Return ``url`` with its password replaced by ``***``.

    >>> redact_url("postgresql://app:s3cret@db:5432/fleetcare")
    'postgresql://app:***@db:5432/fleetcare'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
