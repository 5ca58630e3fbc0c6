"""Customer 360: one account with its devices and their risk, usage, tickets, outcomes,
contract and renewal, segment and health history, in one call."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from psycopg import Connection
from psycopg.rows import dict_row
from pydantic import BaseModel

from backend.customers.errors import AccountNotFoundError


class AccountSummary(BaseModel):
    id: int
    customer_key: str
    name: str
    domain: str | None
    industry: str | None
    size_band: str | None
    region: str | None
    country: str | None
    csm_user_id: int | None
    segment: str | None
    status: str
    updated_at: datetime


class DeviceRisk(BaseModel):
    id: int
    external_id: str
    model: str
    site: str | None
    status: str
    online: bool
    last_seen_at: datetime | None
    failure_risk: float | None
    failure_mode: str | None
    predicted_at: datetime | None


class UsageWeek(BaseModel):
    week: date
    running_device_days: int
    sessions: float
    operating_hours: float


class TicketSummary(BaseModel):
    open: int
    last_90_days: int
    mean_resolution_h_365d: float | None
    open_care_tickets: int


class ContractView(BaseModel):
    id: int
    annual_value: float
    currency: str
    start_date: date
    end_date: date
    renewal_date: date | None
    status: str
    days_to_renewal: int | None


class OutcomeView(BaseModel):
    decided_at: datetime
    outcome: str
    notes: str | None


class HealthPoint(BaseModel):
    computed_at: datetime
    score: float
    band: str
    trend: float | None
    churn_risk: float | None
    reasons: list[dict[str, Any]]


class SourceLink(BaseModel):
    source: str
    source_id: str
    method: str
    confidence: float
    status: str


class Customer360(BaseModel):
    account: AccountSummary
    sources: list[SourceLink]
    devices: list[DeviceRisk]
    usage_weeks: list[UsageWeek]
    tickets: TicketSummary
    contracts: list[ContractView]
    outcomes: list[OutcomeView]
    segment: str | None
    health: list[HealthPoint]


def _all(conn: Connection[Any], query: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return list(cur.fetchall())


def customer_360(conn: Connection[Any], account_id: int, *, health_points: int = 30) -> Customer360:
    """Everything the customer-success view needs about one account.

    Raises:
        AccountNotFoundError: no such account.
    """
    accounts = _all(
        conn,
        "SELECT id, customer_key, name, domain, industry, size_band, region, country, "
        "csm_user_id, segment, status, updated_at FROM accounts WHERE id = %s",
        (account_id,),
    )
    if not accounts:
        raise AccountNotFoundError(account_id)
    account = AccountSummary.model_validate(accounts[0])
    sources = _all(
        conn,
        "SELECT source, source_id, method, confidence, status FROM account_identities "
        "WHERE account_id = %s AND superseded_at IS NULL ORDER BY source, source_id",
        (account_id,),
    )
    devices = _all(
        conn,
        "SELECT d.id, d.external_id, m.name AS model, s.name AS site, d.status, d.online, "
        "d.last_seen_at, p.failure_risk, p.failure_mode, p.predicted_at FROM devices d "
        "JOIN device_models m ON m.id = d.model_id LEFT JOIN sites s ON s.id = d.site_id "
        "LEFT JOIN LATERAL (SELECT failure_risk, failure_mode, predicted_at FROM predictions "
        "WHERE device_id = d.id ORDER BY predicted_at DESC LIMIT 1) p ON true "
        "WHERE d.account_id = %s ORDER BY p.failure_risk DESC NULLS LAST, d.external_id",
        (account_id,),
    )
    usage = _all(
        conn,
        "SELECT date_trunc('week', u.time)::date AS week, "
        "count(*) FILTER (WHERE u.name = 'operating_hours' AND u.value > 0) "
        "AS running_device_days, "
        "COALESCE(sum(u.value) FILTER (WHERE u.name = 'sessions'), 0) AS sessions, "
        "COALESCE(sum(u.value) FILTER (WHERE u.name = 'operating_hours'), 0) AS operating_hours "
        "FROM usage_records u JOIN devices d ON d.id = u.device_id WHERE d.account_id = %s "
        "AND u.time > (SELECT max(time) FROM usage_records u2 JOIN devices d2 "
        "ON d2.id = u2.device_id WHERE d2.account_id = %s) - interval '26 weeks' "
        "GROUP BY 1 ORDER BY 1",
        (account_id, account_id),
    )
    tickets = _all(
        conn,
        "SELECT count(*) FILTER (WHERE resolved_at IS NULL) AS open, "
        "count(*) FILTER (WHERE opened_at > now() - interval '90 days') AS last_90_days, "
        "avg(extract(epoch FROM resolved_at - opened_at) / 3600) FILTER "
        "(WHERE resolved_at > now() - interval '365 days') AS mean_resolution_h_365d, "
        "(SELECT count(*) FROM tickets t WHERE t.account_id = %s "
        " AND t.status IN ('open', 'assigned', 'in_progress')) AS open_care_tickets "
        "FROM service_tickets WHERE account_id = %s",
        (account_id, account_id),
    )
    contracts = _all(
        conn,
        "SELECT id, annual_value::float8 AS annual_value, currency, start_date, end_date, "
        "renewal_date, status, (renewal_date - current_date) AS days_to_renewal "
        "FROM contracts WHERE account_id = %s ORDER BY end_date DESC",
        (account_id,),
    )
    outcomes = _all(
        conn,
        "SELECT decided_at, outcome, notes FROM account_outcomes WHERE account_id = %s "
        "ORDER BY decided_at DESC",
        (account_id,),
    )
    health = _all(
        conn,
        "SELECT computed_at, score, band, trend, churn_risk, "
        "COALESCE(components->'reasons', '[]') AS reasons FROM health_scores "
        "WHERE account_id = %s ORDER BY computed_at DESC, id DESC LIMIT %s",
        (account_id, health_points),
    )
    return Customer360(
        account=account,
        sources=[SourceLink.model_validate(r) for r in sources],
        devices=[DeviceRisk.model_validate(r) for r in devices],
        usage_weeks=[UsageWeek.model_validate(r) for r in usage],
        tickets=TicketSummary.model_validate(tickets[0]),
        contracts=[ContractView.model_validate(r) for r in contracts],
        outcomes=[OutcomeView.model_validate(r) for r in outcomes],
        segment=account.segment,
        health=[HealthPoint.model_validate(r) for r in health],
    )
