"""Care over HTTP: tickets, alerts, incidents, rules, webhooks and the care report.

Scoping: field users see and work only tickets of their region or team; CSMs see tickets and
alerts of the accounts they own; viewers read everything; admins do everything. A resource
outside the caller's scope answers 404, as if it did not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from psycopg import sql
from pydantic import BaseModel, ConfigDict, Field

from backend.api.auth import Principal, require_roles
from backend.api.deps import Connection, DbConnection
from backend.api.errors import ApiError, error_responses, not_found
from backend.api.pagination import MAX_ID, Page, PageParams, page_params
from backend.api.params import ResourceId, aware
from backend.api.rows import fetch_one, fetch_page
from backend.api.scoping import account_condition, ticket_condition
from backend.care.errors import AssignmentError, NotFoundError, RuleError, TransitionError
from backend.care.lifecycle import record_outcome, transition_alert, transition_ticket
from backend.care.report import CareReport, care_report
from backend.care.rule_definitions import RuleDefinition, RuleSpec
from backend.care.rule_store import create_rule_version, get_rule, list_rules, set_rule_enabled
from backend.care.settings import CareSettings
from backend.care.views import (
    AlertView,
    IncidentView,
    TicketEventView,
    TicketView,
    ticket_events,
)
from backend.care.webhooks import (
    WebhookCreate,
    WebhookCreated,
    WebhookView,
    create_webhook,
    delete_webhook,
    list_webhooks,
)
from fleetcare.config import load_settings

router = APIRouter(tags=["care"])

TicketReader = Annotated[Principal, Depends(require_roles("admin", "viewer", "csm", "field"))]
TicketWorker = Annotated[Principal, Depends(require_roles("admin", "field"))]
AlertReader = Annotated[Principal, Depends(require_roles("admin", "viewer", "csm"))]
AlertWorker = Annotated[Principal, Depends(require_roles("admin", "csm"))]
CareReader = Annotated[Principal, Depends(require_roles("admin", "viewer"))]
Admin = Annotated[Principal, Depends(require_roles("admin"))]
Page_ = Annotated[PageParams, Depends(page_params)]

TicketStatus = Literal["open", "assigned", "in_progress", "resolved", "closed"]
ResolvedOutcome = Literal["failure_confirmed", "failure_prevented", "no_fault_found"]
Note = Annotated[str | None, Field(default=None, max_length=2000)]


def _actor(principal: Principal) -> str:
    return f"user:{principal.user_id}:{principal.name}"


def _care_settings(request: Request) -> CareSettings:
    """The care settings, read once per application (teams and regions for assignment)."""
    settings = getattr(request.app.state, "care_settings", None)
    if not isinstance(settings, CareSettings):
        settings = load_settings(CareSettings)
        request.app.state.care_settings = settings
    return settings


CareConfig = Annotated[CareSettings, Depends(_care_settings)]


def _translate(exc: Exception) -> ApiError:
    if isinstance(exc, NotFoundError):
        return not_found(exc.kind, exc.subject_id)
    if isinstance(exc, TransitionError):
        return ApiError(
            409,
            "illegal_transition",
            str(exc),
            {"from": exc.from_status, "to": exc.to_status},
        )
    if isinstance(exc, AssignmentError):
        return ApiError(409, "no_team", str(exc))
    if isinstance(exc, RuleError):
        return ApiError(422, "invalid_rule", str(exc), {"problems": exc.problems})
    raise exc


# -- tickets ---------------------------------------------------------------------------


class TicketDetail(TicketView):
    """A ticket with its history."""

    events: list[TicketEventView]


class TicketAssign(BaseModel):
    """Assign to a field user (their team is used) or a team; neither picks a team by
    region and skill."""

    model_config = ConfigDict(extra="forbid")

    assignee_user_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    team: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    note: Note = None


class TicketTransition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to_status: TicketStatus
    outcome: ResolvedOutcome | None = None
    note: Note = None


class TicketOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: ResolvedOutcome
    note: Note = None


def _scoped_ticket(conn: Connection, principal: Principal, ticket_id: int) -> TicketView:
    scope, params = ticket_condition(principal)
    query = sql.SQL("SELECT t.* FROM tickets t WHERE t.id = %(id)s AND {}").format(scope)
    return fetch_one(conn, query, {**params, "id": ticket_id}, TicketView, "ticket", ticket_id)


@router.get(
    "/tickets",
    response_model=Page[TicketView],
    summary="List care tickets",
    responses=error_responses(401, 403, 422),
)
def list_tickets(
    conn: DbConnection,
    principal: TicketReader,
    page: Page_,
    status: TicketStatus | None = None,
    region: Annotated[str | None, Query(max_length=64)] = None,
    team: Annotated[str | None, Query(max_length=64)] = None,
    device_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    account_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    incident_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    failure_mode: Annotated[str | None, Query(max_length=100)] = None,
    max_priority: Annotated[
        int | None, Query(ge=1, le=5, description="priority <= this (1 is most urgent)")
    ] = None,
) -> Page[TicketView]:
    """Newest first; filter by status, region, team, device, account, incident, mode, priority."""
    scope, params = ticket_condition(principal)
    query = sql.SQL(
        "SELECT t.* FROM tickets t WHERE t.id < %(before)s AND {}"
        " AND (%(status)s::text IS NULL OR t.status = %(status)s)"
        " AND (%(region)s::text IS NULL OR t.region = %(region)s)"
        " AND (%(team)s::text IS NULL OR t.team = %(team)s)"
        " AND (%(device)s::bigint IS NULL OR t.device_id = %(device)s)"
        " AND (%(account)s::bigint IS NULL OR t.account_id = %(account)s)"
        " AND (%(incident)s::bigint IS NULL OR t.incident_id = %(incident)s)"
        " AND (%(mode)s::text IS NULL OR t.failure_mode = %(mode)s)"
        " AND (%(priority)s::int IS NULL OR t.priority <= %(priority)s)"
        " ORDER BY t.id DESC LIMIT %(limit)s"
    ).format(scope)
    values = {
        **params,
        "before": page.before_descending(),
        "status": status,
        "region": region,
        "team": team,
        "device": device_id,
        "account": account_id,
        "incident": incident_id,
        "mode": failure_mode,
        "priority": max_priority,
        "limit": page.limit + 1,
    }
    return fetch_page(conn, query, values, TicketView, page)


@router.get(
    "/tickets/{ticket_id}",
    response_model=TicketDetail,
    summary="A care ticket and its history",
    responses=error_responses(401, 403, 404, 422),
)
def get_ticket_route(
    conn: DbConnection, principal: TicketReader, ticket_id: ResourceId
) -> TicketDetail:
    ticket = _scoped_ticket(conn, principal, ticket_id)
    return TicketDetail(**ticket.model_dump(), events=ticket_events(conn, ticket_id))


@router.post(
    "/tickets/{ticket_id}/assign",
    response_model=TicketView,
    summary="Assign a ticket to a field user or team",
    responses=error_responses(401, 403, 404, 409, 422),
)
def assign_ticket(
    conn: DbConnection,
    principal: TicketWorker,
    settings: CareConfig,
    ticket_id: ResourceId,
    body: TicketAssign,
) -> TicketView:
    """``open -> assigned``; a field user assigning with no assignee takes the ticket."""
    _scoped_ticket(conn, principal, ticket_id)
    assignee = body.assignee_user_id
    if assignee is None and body.team is None and principal.role == "field":
        assignee = principal.user_id
    try:
        return transition_ticket(
            conn,
            ticket_id,
            "assigned",
            actor=_actor(principal),
            assignee_user_id=assignee,
            team=body.team,
            note=body.note,
            teams=settings.teams,
        )
    except (NotFoundError, TransitionError, AssignmentError) as exc:
        raise _translate(exc) from None


@router.post(
    "/tickets/{ticket_id}/transition",
    response_model=TicketView,
    summary="Move a ticket to another status",
    responses=error_responses(401, 403, 404, 409, 422),
)
def transition_ticket_route(
    conn: DbConnection,
    principal: TicketWorker,
    settings: CareConfig,
    ticket_id: ResourceId,
    body: TicketTransition,
) -> TicketView:
    """Legal moves: open -> assigned | closed; assigned -> in_progress | open | closed;
    in_progress -> resolved (with an outcome). Others answer 409."""
    _scoped_ticket(conn, principal, ticket_id)
    try:
        return transition_ticket(
            conn,
            ticket_id,
            body.to_status,
            actor=_actor(principal),
            outcome=body.outcome,
            note=body.note,
            teams=settings.teams,
        )
    except (NotFoundError, TransitionError, AssignmentError) as exc:
        raise _translate(exc) from None


@router.post(
    "/tickets/{ticket_id}/outcome",
    response_model=TicketView,
    summary="Record what the technician found",
    responses=error_responses(401, 403, 404, 409, 422),
)
def record_ticket_outcome(
    conn: DbConnection, principal: TicketWorker, ticket_id: ResourceId, body: TicketOutcome
) -> TicketView:
    """Resolves an in-progress ticket with the outcome, or corrects a resolved one's."""
    _scoped_ticket(conn, principal, ticket_id)
    try:
        return record_outcome(
            conn, ticket_id, body.outcome, actor=_actor(principal), note=body.note
        )
    except (NotFoundError, TransitionError) as exc:
        raise _translate(exc) from None


# -- alerts ----------------------------------------------------------------------------


class AlertAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Note = None
    action: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9_.-]{1,64}$",
        description="the playbook step taken, e.g. call, onsite_visit, discount",
    )


def _scoped_alert(conn: Connection, principal: Principal, alert_id: int) -> AlertView:
    scope, params = account_condition(principal, "al.account_id")
    query = sql.SQL("SELECT al.* FROM alerts al WHERE al.id = %(id)s AND {}").format(scope)
    return fetch_one(conn, query, {**params, "id": alert_id}, AlertView, "alert", alert_id)


@router.get(
    "/alerts",
    response_model=Page[AlertView],
    summary="List CSM alerts",
    responses=error_responses(401, 403, 422),
)
def list_alerts(
    conn: DbConnection,
    principal: AlertReader,
    page: Page_,
    status: Literal["open", "acknowledged", "resolved"] | None = None,
    kind: Literal[
        "health_drop", "health_band", "churn_risk", "fleet_risk", "renewal_risk", "device_risk"
    ]
    | None = None,
    account_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Page[AlertView]:
    """Newest first; a CSM sees the alerts of their accounts only."""
    scope, params = account_condition(principal, "al.account_id")
    query = sql.SQL(
        "SELECT al.* FROM alerts al WHERE al.id < %(before)s AND {}"
        " AND (%(status)s::text IS NULL OR al.status = %(status)s)"
        " AND (%(kind)s::text IS NULL OR al.kind = %(kind)s)"
        " AND (%(account)s::bigint IS NULL OR al.account_id = %(account)s)"
        " ORDER BY al.id DESC LIMIT %(limit)s"
    ).format(scope)
    values = {
        **params,
        "before": page.before_descending(),
        "status": status,
        "kind": kind,
        "account": account_id,
        "limit": page.limit + 1,
    }
    return fetch_page(conn, query, values, AlertView, page)


@router.get(
    "/alerts/{alert_id}",
    response_model=AlertView,
    summary="A CSM alert",
    responses=error_responses(401, 403, 404, 422),
)
def get_alert_route(conn: DbConnection, principal: AlertReader, alert_id: ResourceId) -> AlertView:
    return _scoped_alert(conn, principal, alert_id)


def _move_alert(
    conn: Connection, principal: Principal, alert_id: int, to_status: str, body: AlertAction
) -> AlertView:
    _scoped_alert(conn, principal, alert_id)
    try:
        return transition_alert(
            conn, alert_id, to_status, actor=_actor(principal), note=body.note, action=body.action
        )
    except (NotFoundError, TransitionError) as exc:
        raise _translate(exc) from None


@router.post(
    "/alerts/{alert_id}/acknowledge",
    response_model=AlertView,
    summary="Acknowledge an alert",
    responses=error_responses(401, 403, 404, 409, 422),
)
def acknowledge_alert(
    conn: DbConnection, principal: AlertWorker, alert_id: ResourceId, body: AlertAction
) -> AlertView:
    return _move_alert(conn, principal, alert_id, "acknowledged", body)


@router.post(
    "/alerts/{alert_id}/resolve",
    response_model=AlertView,
    summary="Resolve an alert, naming the action taken",
    responses=error_responses(401, 403, 404, 409, 422),
)
def resolve_alert(
    conn: DbConnection, principal: AlertWorker, alert_id: ResourceId, body: AlertAction
) -> AlertView:
    return _move_alert(conn, principal, alert_id, "resolved", body)


# -- incidents -------------------------------------------------------------------------


@router.get(
    "/incidents",
    response_model=Page[IncidentView],
    summary="List site- and account-wide incidents",
    responses=error_responses(401, 403, 422),
)
def list_incidents(
    conn: DbConnection,
    principal: TicketReader,
    page: Page_,
    open_only: Annotated[bool, Query(description="only incidents not closed")] = False,
) -> Page[IncidentView]:
    """Newest first; a CSM sees their accounts' incidents, a field user those of its region."""
    scope: sql.Composable
    if principal.role == "field":
        scope = sql.SQL(
            "i.id IN (SELECT incident_id FROM tickets t WHERE t.incident_id IS NOT NULL"
            " AND (t.region = %(scope_region)s OR t.team = %(scope_team)s))"
            " OR i.site_id IN (SELECT id FROM sites WHERE region = %(scope_region)s)"
        )
        params: dict[str, Any] = {"scope_region": principal.region, "scope_team": principal.team}
    else:
        scope, params = account_condition(principal, "i.account_id")
    query = sql.SQL(
        "SELECT i.* FROM incidents i WHERE i.id < %(before)s AND ({})"
        " AND (NOT %(open_only)s OR i.closed_at IS NULL) ORDER BY i.id DESC LIMIT %(limit)s"
    ).format(scope)
    values = {
        **params,
        "before": page.before_descending(),
        "open_only": open_only,
        "limit": page.limit + 1,
    }
    return fetch_page(conn, query, values, IncidentView, page)


# -- rules -----------------------------------------------------------------------------


class RulePublic(BaseModel):
    id: int
    name: str
    version: int
    target: Literal["ticket", "alert"]
    definition: RuleDefinition
    enabled: bool
    created_by: str
    created_at: datetime


class RuleEnabled(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool


@router.get(
    "/care/rules",
    response_model=list[RulePublic],
    summary="List care rules",
    responses=error_responses(401, 403, 422),
)
def list_rules_route(
    conn: DbConnection,
    _: CareReader,
    name: Annotated[str | None, Query(max_length=64)] = None,
    all_versions: Annotated[bool, Query(description="every version, not just the newest")] = False,
) -> list[RulePublic]:
    rules = list_rules(conn, name=name, all_versions=all_versions)
    return [RulePublic.model_validate(rule.as_dict()) for rule in rules]


@router.post(
    "/care/rules",
    response_model=RulePublic,
    status_code=201,
    summary="Create a rule or a new version of it",
    responses=error_responses(401, 403, 422),
)
def create_rule_route(conn: DbConnection, principal: Admin, body: RuleSpec) -> RulePublic:
    """A new name starts at version 1; an existing name gets the next version."""
    try:
        stored = create_rule_version(conn, body, actor=_actor(principal))
    except RuleError as exc:
        raise _translate(exc) from None
    return RulePublic.model_validate(stored.as_dict())


@router.post(
    "/care/rules/{rule_id}/enabled",
    response_model=RulePublic,
    summary="Enable or disable a rule version",
    responses=error_responses(401, 403, 404, 422),
)
def set_rule_enabled_route(
    conn: DbConnection, principal: Admin, rule_id: ResourceId, body: RuleEnabled
) -> RulePublic:
    try:
        get_rule(conn, rule_id)
        stored = set_rule_enabled(conn, rule_id, body.enabled, actor=_actor(principal))
    except NotFoundError as exc:
        raise _translate(exc) from None
    return RulePublic.model_validate(stored.as_dict())


# -- webhooks --------------------------------------------------------------------------


@router.get(
    "/webhooks",
    response_model=list[WebhookView],
    summary="List webhook subscriptions",
    responses=error_responses(401, 403),
)
def list_webhooks_route(conn: DbConnection, _: Admin) -> list[WebhookView]:
    return list_webhooks(conn)


@router.post(
    "/webhooks",
    response_model=WebhookCreated,
    status_code=201,
    summary="Subscribe a webhook (its signing secret is shown once)",
    responses=error_responses(401, 403, 422),
)
def create_webhook_route(
    conn: DbConnection, principal: Admin, body: WebhookCreate
) -> WebhookCreated:
    """Deliveries are signed: ``X-Fleetcare-Signature: sha256=<HMAC-SHA256 of the body>``."""
    return create_webhook(conn, body, actor=_actor(principal))


@router.delete(
    "/webhooks/{webhook_id}",
    status_code=204,
    summary="Remove a webhook subscription",
    responses=error_responses(401, 403, 404, 422),
)
def delete_webhook_route(conn: DbConnection, principal: Admin, webhook_id: ResourceId) -> Response:
    try:
        delete_webhook(conn, webhook_id, actor=_actor(principal))
    except NotFoundError as exc:
        raise _translate(exc) from None
    return Response(status_code=204)


# -- report ----------------------------------------------------------------------------


@router.get(
    "/care/report",
    response_model=CareReport,
    summary="Closed-loop report: precision, lead time, missed failures, playbook",
    responses=error_responses(401, 403, 422),
)
def care_report_route(
    conn: DbConnection,
    _: CareReader,
    settings: CareConfig,
    days: Annotated[int, Query(ge=1, le=3650, description="tickets of the last N days")] = 90,
    since: Annotated[datetime | None, Query(description="start (default: now - days)")] = None,
    until: Annotated[datetime | None, Query(description="end (default: now)")] = None,
) -> CareReport:
    """Figures of the tickets and alerts created in ``[since, until)``."""
    end = aware(until, "until") if until is not None else datetime.now(UTC)
    start = aware(since, "since") if since is not None else end - timedelta(days=days)
    if start >= end:
        raise ApiError(422, "invalid_request", "since must be before until")
    return care_report(
        conn,
        since=start,
        until=end,
        failure_event_kinds=settings.failure_event_kinds,
        missed_lookback=timedelta(days=settings.missed_failure_lookback_days),
    )
