"""Refuse a query parameter given several times when the operation declares one value.

FastAPI silently keeps the last of ``?status=a&status=b`` for a scalar parameter; the
OpenAPI document promises one value, so the API answers 422 instead of guessing.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any, Union, get_args, get_origin

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from backend.api.errors import ApiError

_SEQUENCES = (list, tuple, set, frozenset)


def _accepts_many(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin in _SEQUENCES or annotation in _SEQUENCES:
        return True
    if origin in (Union, types.UnionType):
        return any(_accepts_many(arg) for arg in get_args(annotation))
    return False


def _scalar_query_aliases(dependant: Dependant) -> Iterator[str]:
    for field in dependant.query_params:
        if not _accepts_many(field.field_info.annotation):
            yield field.alias
    for sub in dependant.dependencies:
        yield from _scalar_query_aliases(sub)


def reject_repeated_query_params(request: Request) -> None:
    """App-wide dependency: 422 when a single-valued query parameter is repeated."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    params = request.query_params
    repeated = sorted(
        {
            alias
            for alias in _scalar_query_aliases(route.dependant)
            if len(params.getlist(alias)) > 1
        }
    )
    if repeated:
        raise ApiError(
            422,
            "invalid_request",
            f"query parameter(s) given more than once: {', '.join(repeated)}",
            {"repeated": repeated},
        )
