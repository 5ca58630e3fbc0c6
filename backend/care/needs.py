"""Service needs: the one record a ticket and an alert about the same problem share.

A need is keyed by a deduplication key (``device:{id}:{failure_mode}`` for a predicted device
failure, ``account:{id}:{kind}`` for an account-level alert). At most one need per key is open
(a partial unique index); concurrent workers that raise the same need serialise on an
advisory lock of the key and meet the index as a backstop, so they all get the same need.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg


def device_need_key(device_id: int, failure_mode: str) -> str:
    return f"device:{device_id}:{failure_mode}"


def account_need_key(account_id: int, kind: str) -> str:
    return f"account:{account_id}:{kind}"


def lock_key(conn: psycopg.Connection[Any], key: str) -> None:
    """Hold a transaction-scoped advisory lock on ``key`` (released at commit or rollback)."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))


def open_need(
    conn: psycopg.Connection[Any],
    dedup_key: str,
    *,
    device_id: int | None,
    account_id: int | None,
    failure_mode: str | None,
    at: datetime,
) -> int:
    """The id of the open need of ``dedup_key``, created when there is none."""
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO service_needs (dedup_key, device_id, account_id, failure_mode, opened_at)"
            " VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (dedup_key) WHERE status = 'open' DO NOTHING RETURNING id",
            (dedup_key, device_id, account_id, failure_mode, at),
        )
        row = cur.fetchone()
        if row is None:
            cur.execute(
                "SELECT id FROM service_needs WHERE dedup_key = %s AND status = 'open'",
                (dedup_key,),
            )
            row = cur.fetchone()
    assert row is not None, f"open need {dedup_key} vanished"
    return int(row[0])


def close_need(conn: psycopg.Connection[Any], need_id: int, outcome: str, at: datetime) -> None:
    """Close a need with the outcome of its ticket (or the reason it went away)."""
    conn.execute(
        "UPDATE service_needs SET status = 'closed', closed_at = %s, outcome = %s"
        " WHERE id = %s AND status = 'open'",
        (at, outcome, need_id),
    )


def close_need_when_settled(
    conn: psycopg.Connection[Any], need_id: int, outcome: str, at: datetime
) -> None:
    """Close the need once neither its ticket nor its alert is still open."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT EXISTS (SELECT 1 FROM tickets WHERE need_id = %(n)s"
            "   AND status IN ('open', 'assigned', 'in_progress'))"
            " OR EXISTS (SELECT 1 FROM alerts WHERE need_id = %(n)s AND status <> 'resolved')",
            {"n": need_id},
        )
        row = cur.fetchone()
    if row is not None and not row[0]:
        close_need(conn, need_id, outcome, at)
