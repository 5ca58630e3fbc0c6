"""Users and their API keys (admin), and ``/me`` for every caller."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

from backend.api.auth import (
    CurrentPrincipal,
    Principal,
    Role,
    create_api_key,
    create_user,
    require_roles,
)
from backend.api.deps import Connection, DbConnection
from backend.api.errors import ApiError, error_responses, not_found
from backend.api.pagination import Page, PageParams, page_params
from backend.api.params import ResourceId
from backend.api.rows import fetch_one, fetch_page

router = APIRouter(tags=["users"])

Admin = Annotated[Principal, Depends(require_roles("admin"))]

_TEXT = r"^[^\x00]*$"


class UserCreate(BaseModel):
    """A new user; give a csm their accounts via ``accounts.csm_user_id``."""

    name: str = Field(min_length=1, max_length=200, pattern=_TEXT)
    role: Role
    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s\x00]+@[^@\s\x00]+$")
    region: str | None = Field(default=None, max_length=100, pattern=_TEXT)
    team: str | None = Field(default=None, max_length=100, pattern=_TEXT)


class UserPublic(BaseModel):
    id: int
    name: str
    role: Role
    email: str | None
    region: str | None
    team: str | None
    created_at: datetime
    disabled_at: datetime | None


class ApiKeyCreate(BaseModel):
    label: str | None = Field(default=None, max_length=200, pattern=_TEXT)


class ApiKeyPublic(BaseModel):
    """A key without its secret (only the prefix, to recognise it)."""

    id: int
    user_id: int
    prefix: str
    label: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyIssued(ApiKeyPublic):
    """A new key: ``key`` is shown this once and cannot be retrieved again."""

    key: str = Field(description="the plaintext key, shown once")


_USER_SELECT = "SELECT id, name, role, email, region, team, created_at, disabled_at FROM users"
_KEY_SELECT = (
    "SELECT id, user_id, prefix, label, created_at, last_used_at, revoked_at FROM api_keys"
)


def _user(conn: Connection, user_id: int) -> UserPublic:
    return fetch_one(conn, _USER_SELECT + " WHERE id = %s", (user_id,), UserPublic, "user", user_id)


def _audit(conn: Connection, actor: Principal, action: str, kind: str, subject: int) -> None:
    conn.execute(
        "INSERT INTO audit_log (actor, action, subject_kind, subject_id) VALUES (%s, %s, %s, %s)",
        (f"user:{actor.user_id}", action, kind, str(subject)),
    )


@router.get("/me", response_model=Principal, summary="Who am I", responses=error_responses(401))
def me(principal: CurrentPrincipal) -> Principal:
    """The caller's user, role, region and team."""
    return principal


@router.get(
    "/users",
    response_model=Page[UserPublic],
    summary="List users",
    responses=error_responses(401, 403, 422),
)
def list_users(
    conn: DbConnection,
    _: Admin,
    page: Annotated[PageParams, Depends(page_params)],
    role: Role | None = None,
    include_disabled: Annotated[bool, Query()] = False,
) -> Page[UserPublic]:
    """Users by id, optionally of one role."""
    query = (
        _USER_SELECT + " WHERE id > %(after)s AND (%(role)s::text IS NULL OR role = %(role)s)"
        " AND (%(all)s OR disabled_at IS NULL) ORDER BY id LIMIT %(limit)s"
    )
    values = {
        "after": page.after_ascending(),
        "role": role,
        "all": include_disabled,
        "limit": page.limit + 1,
    }
    return fetch_page(conn, query, values, UserPublic, page)


@router.post(
    "/users",
    response_model=UserPublic,
    status_code=201,
    summary="Create a user",
    responses=error_responses(401, 403, 409, 422),
)
def create_user_route(conn: DbConnection, principal: Admin, body: UserCreate) -> UserPublic:
    """A new user (409 when the e-mail is taken)."""
    if body.email is not None:
        taken = conn.execute("SELECT 1 FROM users WHERE email = %s", (body.email,)).fetchone()
        if taken is not None:
            raise ApiError(409, "conflict", "a user with this e-mail exists", {"email": body.email})
    user_id = create_user(
        conn, body.name, body.role, email=body.email, region=body.region, team=body.team
    )
    _audit(conn, principal, "user.create", "user", user_id)
    return _user(conn, user_id)


@router.get(
    "/users/{user_id}",
    response_model=UserPublic,
    summary="Get a user",
    responses=error_responses(401, 403, 404, 422),
)
def get_user(conn: DbConnection, _: Admin, user_id: ResourceId) -> UserPublic:
    return _user(conn, user_id)


@router.post(
    "/users/{user_id}/disable",
    response_model=UserPublic,
    summary="Disable a user",
    responses=error_responses(401, 403, 404, 409, 422),
)
def disable_user(conn: DbConnection, principal: Admin, user_id: ResourceId) -> UserPublic:
    """Disable a user: every key of theirs stops working at once (idempotent)."""
    if user_id == principal.user_id:
        raise ApiError(409, "conflict", "an admin cannot disable themselves")
    _user(conn, user_id)
    conn.execute(
        "UPDATE users SET disabled_at = coalesce(disabled_at, now()) WHERE id = %s", (user_id,)
    )
    _audit(conn, principal, "user.disable", "user", user_id)
    return _user(conn, user_id)


@router.get(
    "/users/{user_id}/keys",
    response_model=list[ApiKeyPublic],
    summary="List a user's API keys",
    responses=error_responses(401, 403, 404, 422),
)
def list_keys(conn: DbConnection, _: Admin, user_id: ResourceId) -> list[ApiKeyPublic]:
    """Every key of the user, revoked ones included, without secrets."""
    _user(conn, user_id)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_KEY_SELECT + " WHERE user_id = %s ORDER BY id", (user_id,))
        return [ApiKeyPublic.model_validate(r) for r in rows]


@router.post(
    "/users/{user_id}/keys",
    response_model=ApiKeyIssued,
    status_code=201,
    summary="Issue an API key",
    responses=error_responses(401, 403, 404, 422),
)
def issue_key(
    conn: DbConnection, principal: Admin, user_id: ResourceId, body: ApiKeyCreate
) -> ApiKeyIssued:
    """A new key for the user; the plaintext is in this response only."""
    _user(conn, user_id)
    key = create_api_key(conn, user_id, body.label)
    prefix = key.split("_")[1]
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_KEY_SELECT + " WHERE prefix = %s", (prefix,)).fetchone()
    assert row is not None
    _audit(conn, principal, "api_key.create", "user", user_id)
    return ApiKeyIssued.model_validate({**row, "key": key})


@router.delete(
    "/users/{user_id}/keys/{key_id}",
    response_model=ApiKeyPublic,
    summary="Revoke an API key",
    responses=error_responses(401, 403, 404, 422),
)
def revoke_key(
    conn: DbConnection, principal: Admin, user_id: ResourceId, key_id: ResourceId
) -> ApiKeyPublic:
    """Revoke a key (idempotent): it answers 401 from now on."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())"
            " WHERE id = %s AND user_id = %s"
            " RETURNING id, user_id, prefix, label, created_at, last_used_at, revoked_at",
            (key_id, user_id),
        ).fetchone()
    if row is None:
        raise not_found("API key", key_id)
    _audit(conn, principal, "api_key.revoke", "api_key", key_id)
    return ApiKeyPublic.model_validate(row)
