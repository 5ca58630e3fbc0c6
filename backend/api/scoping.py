"""Which rows a principal may see, as SQL conditions (the scoping rules of every endpoint).

- admin, viewer: everything;
- csm: accounts whose ``csm_user_id`` is theirs, and those accounts' devices;
- field: tickets of their region or team, and the devices those tickets are on;
- provisioner: no reads of fleet data (registration and credentials only).
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from backend.api.auth import Principal

_ALL = sql.SQL("TRUE")
_NOTHING = sql.SQL("FALSE")


def account_condition(
    principal: Principal, column: str = "a.id"
) -> tuple[sql.Composable, dict[str, Any]]:
    """A condition on an account id column that keeps only the accounts the caller may see."""
    col = sql.SQL(column)
    if principal.role in ("admin", "viewer"):
        return _ALL, {}
    if principal.role == "csm":
        return (
            sql.SQL("{} IN (SELECT id FROM accounts WHERE csm_user_id = %(scope_user_id)s)").format(
                col
            ),
            {"scope_user_id": principal.user_id},
        )
    if principal.role == "field":
        return (
            sql.SQL(
                "{} IN (SELECT account_id FROM tickets WHERE region = %(scope_region)s"
                " OR team = %(scope_team)s)"
            ).format(col),
            {"scope_region": principal.region, "scope_team": principal.team},
        )
    return _NOTHING, {}


def device_condition(
    principal: Principal, device_col: str = "d.id", account_col: str = "d.account_id"
) -> tuple[sql.Composable, dict[str, Any]]:
    """A condition on a device row that keeps only the devices the caller may see."""
    if principal.role in ("admin", "viewer"):
        return _ALL, {}
    if principal.role == "csm":
        return (
            sql.SQL("{} IN (SELECT id FROM accounts WHERE csm_user_id = %(scope_user_id)s)").format(
                sql.SQL(account_col)
            ),
            {"scope_user_id": principal.user_id},
        )
    if principal.role == "field":
        return (
            sql.SQL(
                "{} IN (SELECT device_id FROM tickets WHERE region = %(scope_region)s"
                " OR team = %(scope_team)s)"
            ).format(sql.SQL(device_col)),
            {"scope_region": principal.region, "scope_team": principal.team},
        )
    return _NOTHING, {}


def ticket_condition(
    principal: Principal, alias: str = "t"
) -> tuple[sql.Composable, dict[str, Any]]:
    """A condition on a ticket row that keeps only the tickets the caller may see."""
    if principal.role in ("admin", "viewer"):
        return _ALL, {}
    if principal.role == "csm":
        return (
            sql.SQL(
                "{}.account_id IN (SELECT id FROM accounts WHERE csm_user_id = %(scope_user_id)s)"
            ).format(sql.Identifier(alias)),
            {"scope_user_id": principal.user_id},
        )
    if principal.role == "field":
        return (
            sql.SQL("({0}.region = %(scope_region)s OR {0}.team = %(scope_team)s)").format(
                sql.Identifier(alias)
            ),
            {"scope_region": principal.region, "scope_team": principal.team},
        )
    return _NOTHING, {}
