"""Webhook subscriptions: where notifications go and the secret that signs them."""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field, field_validator

from backend.care.audit import write_audit
from backend.care.errors import NotFoundError

EVENT_PATTERN = re.compile(r"^(ticket|alert|incident)\.(\*|[a-z_]{1,32})$")
SECRET_BYTES = 32


class WebhookCreate(BaseModel):
    """A new subscription; ``events`` empty means every event (``ticket.*`` a family)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=10, max_length=2000, pattern=r"^https?://[^\s]+$")
    events: list[str] = Field(default_factory=list, max_length=50)
    secret: str | None = Field(default=None, min_length=16, max_length=256)

    @field_validator("events")
    @classmethod
    def _known_events(cls, events: list[str]) -> list[str]:
        bad = [event for event in events if not EVENT_PATTERN.match(event)]
        if bad:
            raise ValueError(
                "events look like ticket.opened, alert.* or incident.opened; not: " + ", ".join(bad)
            )
        return sorted(set(events))


class WebhookView(BaseModel):
    """A subscription as listed (the secret is shown only once, at creation)."""

    model_config = ConfigDict(frozen=True)

    id: int
    url: str
    events: list[str]
    enabled: bool
    created_at: datetime


class WebhookCreated(WebhookView):
    secret: str


def create_webhook(
    conn: psycopg.Connection[Any], spec: WebhookCreate, *, actor: str
) -> WebhookCreated:
    """Store a subscription; a secret is generated unless given. Returns it once."""
    secret = spec.secret or secrets.token_urlsafe(SECRET_BYTES)
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "INSERT INTO webhooks (url, secret, events) VALUES (%s, %s, %s)"
            " RETURNING id, url, events, enabled, created_at",
            (spec.url, secret, spec.events),
        )
        row = cur.fetchone()
        assert row is not None
        write_audit(conn, actor, "webhook.created", "webhook", row["id"], {"url": spec.url})
    return WebhookCreated(**row, secret=secret)


def list_webhooks(conn: psycopg.Connection[Any]) -> list[WebhookView]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT id, url, events, enabled, created_at FROM webhooks ORDER BY id")
        return [WebhookView.model_validate(row) for row in cur.fetchall()]


def delete_webhook(conn: psycopg.Connection[Any], webhook_id: int, *, actor: str) -> None:
    """Delete a subscription and its undelivered notifications.

    Raises:
        NotFoundError: no such webhook.
    """
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("DELETE FROM webhooks WHERE id = %s", (webhook_id,))
        if cur.rowcount == 0:
            raise NotFoundError("webhook", webhook_id)
        write_audit(conn, actor, "webhook.deleted", "webhook", webhook_id, {})
