"""The transactional outbox: notifications written in the same transaction as their cause.

A ticket or alert and its notifications commit together or not at all; the delivery worker
(:mod:`backend.care.delivery`) sends them later. Each row carries a stable idempotency key
(event, subject, the change that caused it, the receiver), so enqueuing the same change
twice stores it once and a receiver can drop a redelivery.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import psycopg
from pydantic import BaseModel


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"cannot serialise {type(value).__name__}")


def enqueue(
    conn: psycopg.Connection[Any],
    event: str,
    subject: str,
    subject_id: int,
    change_ref: str,
    data: BaseModel | dict[str, Any],
    *,
    occurred_at: datetime,
    email_to: str | None = None,
) -> int:
    """Write one notification per subscribed webhook (and one e-mail when ``email_to``).

    ``event`` is e.g. ``ticket.opened``; a webhook receives it when its ``events`` list is
    empty (everything), holds the event, or holds its prefix with ``*`` (``ticket.*``).
    Returns how many rows were written (0 when the same change was enqueued before).
    """
    prefix = event.split(".", 1)[0] + ".*"
    body = {
        "event": event,
        "subject": subject,
        "subject_id": subject_id,
        "occurred_at": occurred_at,
        "data": data,
    }
    written = 0
    with conn.cursor() as cur:
        cur.execute(
            "SELECT id FROM webhooks WHERE enabled"
            " AND (cardinality(events) = 0 OR %s = ANY(events) OR %s = ANY(events))"
            " ORDER BY id",
            (event, prefix),
        )
        targets: list[tuple[str, int | None]] = [("webhook", row[0]) for row in cur.fetchall()]
        if email_to:
            targets.append(("email", None))
        for channel, webhook_id in targets:
            receiver = f"webhook-{webhook_id}" if channel == "webhook" else f"email-{email_to}"
            key = f"{event}:{subject}-{subject_id}:{change_ref}:{receiver}"
            payload = dict(body, id=key)
            if channel == "email":
                payload["to"] = email_to
            cur.execute(
                "INSERT INTO notification_outbox"
                " (channel, webhook_id, event, payload, idempotency_key, next_attempt_at)"
                " VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (idempotency_key) DO NOTHING",
                (
                    channel,
                    webhook_id,
                    event,
                    json.dumps(payload, default=_json_default),
                    key,
                    occurred_at,
                ),
            )
            written += cur.rowcount
    return written
