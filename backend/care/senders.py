"""Channels a notification leaves by: a signed webhook POST (httpx) or an e-mail (smtplib)."""

from __future__ import annotations

import json
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Protocol

import httpx

from backend.care.signing import (
    EVENT_HEADER,
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)

USER_AGENT = "fleetcare-care/1"


class DeliveryError(Exception):
    """One attempt failed; ``error`` says why (kept in ``notification_outbox.last_error``)."""

    def __init__(self, error: str) -> None:
        self.error = error
        super().__init__(error)


@dataclass(frozen=True)
class Notification:
    """One outbox row, ready to send."""

    id: int
    channel: str
    event: str
    idempotency_key: str
    payload: dict[str, Any]
    attempts: int
    url: str | None
    secret: str | None

    def body(self) -> bytes:
        """The exact bytes sent and signed; the same on every attempt."""
        return json.dumps(self.payload, sort_keys=True, separators=(",", ":")).encode()


class Sender(Protocol):
    def send(self, notification: Notification, timestamp: int) -> None:
        """Deliver or raise :class:`DeliveryError`."""


class WebhookSender:
    """POSTs the JSON body with its signature, timestamp and idempotency key."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def send(self, notification: Notification, timestamp: int) -> None:
        if notification.url is None or notification.secret is None:
            raise DeliveryError("webhook no longer exists")
        body = notification.body()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: sign(notification.secret, body),
            TIMESTAMP_HEADER: str(timestamp),
            IDEMPOTENCY_HEADER: notification.idempotency_key,
            EVENT_HEADER: notification.event,
        }
        try:
            response = self.client.post(notification.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"HTTP {response.status_code}")


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    sender: str
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout_s: float = 10.0


class EmailSender:
    """Sends one plain-text e-mail per notification over SMTP."""

    def __init__(self, target: SmtpTarget) -> None:
        self.target = target

    def send(self, notification: Notification, timestamp: int) -> None:
        recipient = notification.payload.get("to")
        if not isinstance(recipient, str) or "@" not in recipient:
            raise DeliveryError("no recipient address")
        data = notification.payload.get("data", {})
        message = EmailMessage()
        message["From"] = self.target.sender
        message["To"] = recipient
        message["Subject"] = _subject(notification.event, data)
        message["Message-ID"] = f"<{notification.idempotency_key.replace(':', '.')}@fleetcare>"
        message[IDEMPOTENCY_HEADER] = notification.idempotency_key
        message.set_content(json.dumps(notification.payload, indent=2, sort_keys=True))
        try:
            with smtplib.SMTP(
                self.target.host, self.target.port, timeout=self.target.timeout_s
            ) as smtp:
                if self.target.starttls:
                    smtp.starttls()
                if self.target.username and self.target.password:
                    smtp.login(self.target.username, self.target.password)
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"SMTP: {exc}") from None


def _subject(event: str, data: Any) -> str:
    if isinstance(data, dict) and "kind" in data and "account_id" in data:
        return f"[fleetcare] {event}: {data['kind']} on account {data['account_id']}"
    if isinstance(data, dict) and "failure_mode" in data:
        return f"[fleetcare] {event}: {data['failure_mode']} on device {data.get('device_id')}"
    return f"[fleetcare] {event}"
