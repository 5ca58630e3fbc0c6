"""Choosing the field team for a ticket: by region and skill, least loaded first."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from backend.care.errors import AssignmentError
from backend.care.settings import FieldTeam


def _load(conn: psycopg.Connection[Any], teams: Sequence[str]) -> dict[str, int]:
    """Open tickets per team (assigned or in progress)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT team, count(*) FROM tickets WHERE team = ANY(%s)"
            " AND status IN ('assigned', 'in_progress') GROUP BY team",
            (list(teams),),
        )
        counts = {str(row[0]): int(row[1]) for row in cur.fetchall()}
    return {team: counts.get(team, 0) for team in teams}


def _least_loaded(conn: psycopg.Connection[Any], names: list[str]) -> str:
    load = _load(conn, names)
    return min(names, key=lambda name: (load[name], name))


def pick_team(
    conn: psycopg.Connection[Any],
    region: str | None,
    skill: str,
    teams: Sequence[FieldTeam],
) -> str:
    """The team that should take a ticket in ``region`` needing ``skill``.

    Order of preference: configured teams of the region with the skill; configured teams of
    the region; teams of the region's field users. Ties go to the least loaded team.

    Raises:
        AssignmentError: no team works in the region.
    """
    in_region = [team for team in teams if region is not None and team.region == region]
    skilled = [team.name for team in in_region if skill in team.skills]
    if skilled:
        return _least_loaded(conn, skilled)
    if in_region:
        return _least_loaded(conn, [team.name for team in in_region])
    with conn.cursor() as cur:
        cur.execute(
            "SELECT DISTINCT team FROM users WHERE role = 'field' AND team IS NOT NULL"
            " AND disabled_at IS NULL AND region IS NOT DISTINCT FROM %s ORDER BY team",
            (region,),
        )
        user_teams = [str(row[0]) for row in cur.fetchall()]
    if user_teams:
        return _least_loaded(conn, user_teams)
    raise AssignmentError(
        f"no field team works in region {region!r} (configure FLEETCARE_CARE_TEAMS or give"
        " field users a team)"
    )
