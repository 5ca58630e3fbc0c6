"""Authentication (API keys) and authorisation (roles) of API requests."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any, Literal, get_args

import psycopg
from fastapi import Depends, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from backend.api.deps import DbConnection
from backend.api.errors import ApiError
from backend.api.keys import new_key, parse_key, verify_secret

Role = Literal["admin", "csm", "field", "viewer", "provisioner"]
ROLES: tuple[Role, ...] = get_args(Role)

_log = logging.getLogger(__name__)

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer fc_<prefix>_<secret>`")
_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="the same key in an `X-API-Key` header"
)


class Principal(BaseModel):
    """The authenticated caller: a user with one role and an optional region and team."""

    user_id: int
    name: str
    role: Role
    region: str | None
    team: str | None


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message)


def authenticate(conn: psycopg.Connection[Any], key: str) -> Principal:
    """The principal owning ``key``; raise :class:`ApiError` 401 when it is not valid."""
    parsed = parse_key(key)
    if parsed is None:
        raise _unauthorized("invalid API key")
    row = conn.execute(
        "SELECT k.id, k.key_hash, k.revoked_at IS NOT NULL, u.disabled_at IS NOT NULL,"
        " u.id, u.name, u.role, u.region, u.team"
        " FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.prefix = %s",
        (parsed.prefix,),
    ).fetchone()
    if row is None or not verify_secret(parsed, str(row[1])):
        raise _unauthorized("invalid API key")
    key_id, _, revoked, disabled, user_id, name, role, region, team = row
    if revoked:
        raise _unauthorized("API key revoked")
    if disabled:
        raise _unauthorized("user disabled")
    # At most one write per key and minute, and none that waits: the write belongs to the
    # request's transaction, and a concurrent request with the same key skips the row.
    conn.execute(
        "UPDATE api_keys SET last_used_at = now() WHERE id = (SELECT id FROM api_keys"
        " WHERE id = %s AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')"
        " FOR UPDATE SKIP LOCKED)",
        (key_id,),
    )
    return Principal(user_id=user_id, name=name, role=role, region=region, team=team)


def current_principal(
    conn: DbConnection,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
    header_key: Annotated[str | None, Security(_api_key_header)] = None,
) -> Principal:
    """FastAPI dependency: the caller identified by ``Authorization: Bearer`` or ``X-API-Key``.

    It reads the key on the request's own connection (the one its handler gets): a request
    that held one pooled connection while waiting for a second could, with as many such
    requests as the pool has connections, wait for each other until the pool gave up.
    """
    key = bearer.credentials if bearer is not None else header_key
    if not key:
        raise ApiError(401, "unauthorized", "missing API key: send Authorization: Bearer <key>")
    return authenticate(conn, key)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: Role) -> Callable[..., Principal]:
    """Dependency factory: the caller when their role is one of ``roles``, else 403."""
    allowed = frozenset(roles)

    def check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in allowed:
            raise ApiError(
                403,
                "forbidden",
                f"role {principal.role} may not do this",
                {"allowed_roles": sorted(allowed)},
            )
        return principal

    return check


def create_user(
    conn: psycopg.Connection[Any],
    name: str,
    role: Role,
    *,
    email: str | None = None,
    region: str | None = None,
    team: str | None = None,
) -> int:
    """Insert a user and return their id."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    row = conn.execute(
        "INSERT INTO users (name, email, role, region, team) VALUES (%s, %s, %s, %s, %s)"
        " RETURNING id",
        (name, email, role, region, team),
    ).fetchone()
    assert row is not None
    return int(row[0])


def create_api_key(conn: psycopg.Connection[Any], user_id: int, label: str | None = None) -> str:
    """Create a key for ``user_id``; the plaintext is returned once and never stored."""
    plaintext, prefix, key_hash = new_key()
    row = conn.execute(
        "INSERT INTO api_keys (user_id, prefix, key_hash, label)"
        " SELECT id, %s, %s, %s FROM users WHERE id = %s RETURNING id",
        (prefix, key_hash, label, user_id),
    ).fetchone()
    if row is None:
        raise LookupError(f"user {user_id} does not exist")
    return plaintext
