"""Console sign-in: the user's API key in an HttpOnly, SameSite=Strict cookie, checked per request.

The console uses the API's keys and roles, nothing of its own: signing in checks the key the
same way the API does, and every page resolves the caller again from the cookie, so revoking
a key or disabling a user ends their console session at once. Forms carry a CSRF token derived
from the key (HMAC), on top of the SameSite cookie.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import psycopg
from fastapi import Request, Response

from backend.api.auth import Principal, authenticate
from backend.api.errors import ApiError

COOKIE = "fleetcare_console"
_CSRF_CONTEXT = b"fleetcare-console-csrf"


class SignInRequiredError(Exception):
    """The request has no valid console session; the page redirects to the sign-in form."""


def principal_of(conn: psycopg.Connection[Any], request: Request) -> tuple[Principal, str]:
    """The signed-in caller and their key, or :class:`SignInRequiredError`."""
    key = request.cookies.get(COOKIE)
    if not key:
        raise SignInRequiredError
    try:
        return authenticate(conn, key), key
    except ApiError as error:
        raise SignInRequiredError from error


def csrf_token(key: str) -> str:
    return hmac.new(key.encode(), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


def csrf_valid(key: str, token: str | None) -> bool:
    return token is not None and hmac.compare_digest(csrf_token(key), token)


def set_session(response: Response, request: Request, key: str, path: str) -> None:
    response.set_cookie(
        COOKIE,
        key,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=path,
        max_age=12 * 3600,
    )


def clear_session(response: Response, path: str) -> None:
    response.delete_cookie(COOKIE, path=path)
