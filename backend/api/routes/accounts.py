"""Accounts: list, customer 360, upsert of source records, health history, segments,
identity review, and (admin only) export and erasure of personal data."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from psycopg import sql
from pydantic import BaseModel, Field

from backend.api.auth import Principal, require_roles
from backend.api.deps import Connection, DbConnection
from backend.api.errors import ApiError, error_responses, not_found
from backend.api.pagination import MAX_ID, Page, PageParams, page_params
from backend.api.params import ResourceId
from backend.api.rows import fetch_page
from backend.api.scoping import account_condition
from backend.customers.errors import (
    AccountNotFoundError,
    AlreadyErasedError,
    DecisionNotFoundError,
    InvalidRecordError,
)
from backend.customers.golden import refresh_account
from backend.customers.identity import Decision, Thresholds, accept, reject, review_queue
from backend.customers.importer import upsert_record
from backend.customers.privacy import erase_account, export_account
from backend.customers.settings import CustomersSettings
from backend.customers.view import Customer360, customer_360

router = APIRouter(tags=["accounts"])

AccountReader = Annotated[Principal, Depends(require_roles("admin", "viewer", "csm", "field"))]
Admin = Annotated[Principal, Depends(require_roles("admin"))]
AccountStatus = Literal["prospect", "active", "churned", "erased"]
MAX_RECORD_FIELDS = 100


def customers_settings() -> CustomersSettings:
    """The customers settings (``FLEETCARE_CUSTOMERS_*``); overridable in tests."""
    return CustomersSettings()


Settings = Annotated[CustomersSettings, Depends(customers_settings)]


class AccountPublic(BaseModel):
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
    status: AccountStatus
    health_score: float | None
    health_band: str | None
    updated_at: datetime


class HealthPublic(BaseModel):
    id: int
    computed_at: datetime
    score: float
    band: str
    trend: float | None
    churn_risk: float | None
    components: dict[str, Any] = Field(description="measures, reasons and the weights used")
    inputs: dict[str, Any] = Field(description="the raw figures the score was computed from")
    weights_version: str


class SegmentPublic(BaseModel):
    id: int
    computed_at: datetime
    segment: str
    features: dict[str, Any]


class SourceRecordUpsert(BaseModel):
    """One record as the source system holds it (column names as in its exports)."""

    record: dict[str, str | int | float | bool | None] = Field(
        description='e.g. {"crm_id": "001…", "account_name": "Velford Process", …}'
    )


def _visible(conn: Connection, principal: Principal, account_id: int) -> None:
    scope, params = account_condition(principal, "a.id")
    query = sql.SQL("SELECT 1 FROM accounts a WHERE a.id = %(id)s AND {}").format(scope)
    if conn.execute(query, {**params, "id": account_id}).fetchone() is None:
        raise not_found("account", account_id)


@router.get(
    "/accounts",
    response_model=Page[AccountPublic],
    summary="List accounts",
    responses=error_responses(401, 403, 422),
)
def list_accounts(
    conn: DbConnection,
    principal: AccountReader,
    page: Annotated[PageParams, Depends(page_params)],
    segment: Annotated[str | None, Query(max_length=40)] = None,
    status: AccountStatus | None = None,
    band: Literal["healthy", "watch", "at_risk", "critical"] | None = None,
    csm_user_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Page[AccountPublic]:
    """Accounts the caller may see, by id, with their latest health score."""
    scope, params = account_condition(principal, "a.id")
    query = sql.SQL(
        "SELECT a.id, a.customer_key, a.name, a.domain, a.industry, a.size_band, a.region, "
        "a.country, a.csm_user_id, a.segment, a.status, a.updated_at, "
        "h.score AS health_score, h.band AS health_band FROM accounts a "
        "LEFT JOIN LATERAL (SELECT score, band FROM health_scores WHERE account_id = a.id "
        "ORDER BY computed_at DESC, id DESC LIMIT 1) h ON true "
        "WHERE a.id > %(after)s AND {}"
        " AND (%(segment)s::text IS NULL OR a.segment = %(segment)s)"
        " AND (%(status)s::text IS NULL OR a.status = %(status)s)"
        " AND (%(band)s::text IS NULL OR h.band = %(band)s)"
        " AND (%(csm)s::bigint IS NULL OR a.csm_user_id = %(csm)s)"
        " ORDER BY a.id LIMIT %(limit)s"
    ).format(scope)
    values = {
        **params,
        "after": page.after_ascending(),
        "segment": segment,
        "status": status,
        "band": band,
        "csm": csm_user_id,
        "limit": page.limit + 1,
    }
    return fetch_page(conn, query, values, AccountPublic, page)


@router.get(
    "/accounts/{account_id}",
    response_model=Customer360,
    summary="Customer 360 of an account",
    responses=error_responses(401, 403, 404, 422),
)
def get_account(
    conn: DbConnection, principal: AccountReader, account_id: ResourceId
) -> Customer360:
    """The account with its devices and risk, usage, tickets, contracts, outcomes, health."""
    _visible(conn, principal, account_id)
    try:
        return customer_360(conn, account_id)
    except AccountNotFoundError:
        raise not_found("account", account_id) from None


@router.put(
    "/accounts/records/{source}",
    response_model=Decision,
    summary="Create or update a source record and resolve it to an account",
    responses=error_responses(401, 403, 422),
)
def upsert_source_record(
    conn: DbConnection,
    principal: Admin,
    settings: Settings,
    source: Literal["crm", "erp", "service"],
    body: SourceRecordUpsert,
) -> Decision:
    """The record is stored (or replaced) and matched: to an account, or to the review queue."""
    if len(body.record) > MAX_RECORD_FIELDS:
        raise ApiError(422, "invalid_request", f"at most {MAX_RECORD_FIELDS} fields per record")
    thresholds = Thresholds(match=settings.match_threshold, review=settings.review_threshold)
    try:
        return upsert_record(
            conn,
            source,
            dict(body.record),
            thresholds=thresholds,
            actor=f"user:{principal.user_id}",
        )
    except InvalidRecordError as exc:
        raise ApiError(422, "invalid_request", exc.reason, {"source": source}) from None


@router.get(
    "/accounts/{account_id}/health",
    response_model=Page[HealthPublic],
    summary="Health history of an account, newest first",
    responses=error_responses(401, 403, 404, 422),
)
def health_history(
    conn: DbConnection,
    principal: AccountReader,
    account_id: ResourceId,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[HealthPublic]:
    """Every stored score with the inputs, components and weights version that explain it."""
    _visible(conn, principal, account_id)
    return fetch_page(
        conn,
        "SELECT id, computed_at, score, band, trend, churn_risk, components, inputs, "
        "weights_version FROM health_scores WHERE account_id = %s AND id < %s "
        "ORDER BY id DESC LIMIT %s",
        (account_id, page.before_descending(), page.limit + 1),
        HealthPublic,
        page,
    )


@router.get(
    "/accounts/{account_id}/segments",
    response_model=Page[SegmentPublic],
    summary="Segment history of an account, newest first",
    responses=error_responses(401, 403, 404, 422),
)
def segment_history(
    conn: DbConnection,
    principal: AccountReader,
    account_id: ResourceId,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[SegmentPublic]:
    _visible(conn, principal, account_id)
    return fetch_page(
        conn,
        "SELECT id, computed_at, segment, features FROM account_segments "
        "WHERE account_id = %s AND id < %s ORDER BY id DESC LIMIT %s",
        (account_id, page.before_descending(), page.limit + 1),
        SegmentPublic,
        page,
    )


@router.get(
    "/identity-reviews",
    response_model=list[Decision],
    summary="Identity matches waiting for review",
    responses=error_responses(401, 403, 422),
)
def list_review(
    conn: DbConnection, principal: Admin, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[Decision]:
    return review_queue(conn, limit)


@router.post(
    "/identity-reviews/{decision_id}/{verdict}",
    response_model=Decision,
    summary="Accept or reject a proposed identity match",
    responses=error_responses(401, 403, 404, 422),
)
def decide_review(
    conn: DbConnection,
    principal: Admin,
    decision_id: ResourceId,
    verdict: Literal["accept", "reject"],
) -> Decision:
    decide = accept if verdict == "accept" else reject
    try:
        made = decide(conn, decision_id, actor=f"user:{principal.user_id}")
    except DecisionNotFoundError:
        raise not_found("review decision", decision_id) from None
    if made.account_id is not None:
        refresh_account(conn, made.account_id)
    return made


@router.get(
    "/accounts/{account_id}/export",
    summary="Everything held about an account (admin only)",
    responses=error_responses(401, 403, 404, 422),
)
def export(conn: DbConnection, principal: Admin, account_id: ResourceId) -> dict[str, Any]:
    try:
        data = export_account(conn, account_id)
    except AccountNotFoundError:
        raise not_found("account", account_id) from None
    conn.execute(
        "INSERT INTO audit_log (actor, action, subject_kind, subject_id) "
        "VALUES (%s, 'account.export', 'account', %s)",
        (f"user:{principal.user_id}", str(account_id)),
    )
    return data


@router.post(
    "/accounts/{account_id}/erase",
    summary="Erase an account's personal data everywhere (admin only, irreversible)",
    responses=error_responses(401, 403, 404, 409, 422),
)
def erase(conn: DbConnection, principal: Admin, account_id: ResourceId) -> dict[str, int]:
    try:
        return erase_account(conn, account_id, actor=f"user:{principal.user_id}")
    except AccountNotFoundError:
        raise not_found("account", account_id) from None
    except AlreadyErasedError:
        raise ApiError(409, "already_erased", f"account {account_id} was already erased") from None
