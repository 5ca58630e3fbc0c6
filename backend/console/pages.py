"""The console's pages: ticket queue and ticket page for field service, accounts for CSMs.

Mounted under ``/console`` by the API application (the same process, the same keys and
roles). Pages are rendered on the server and work without JavaScript; actions are plain
forms that redirect back (post/redirect/get) with a status message.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from backend.api.auth import Principal, authenticate
from backend.api.deps import DbConnection
from backend.api.errors import ApiError
from backend.care.errors import TransitionError
from backend.care.lifecycle import transition_alert, transition_ticket
from backend.console import queries
from backend.console.charts import sensor_with_risk_svg
from backend.console.session import (
    SignInRequiredError,
    clear_session,
    csrf_token,
    csrf_valid,
    principal_of,
    set_session,
)
from backend.console.signals import describe_contribution, signal_label, signal_name
from backend.downlink.commands import (
    IDEMPOTENCY_KEY_PATTERN,
    IdempotencyKeyReusedError,
    NewCommand,
    device_commands,
    queue_command,
)

BASE = "/console"
_HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(_HERE / "templates"))
router = APIRouter(prefix=BASE, include_in_schema=False)

HEALTH_BANDS: tuple[tuple[str, str], ...] = (
    ("critical", "Critical"),
    ("at_risk", "At risk"),
    ("watch", "Watch"),
    ("healthy", "Healthy"),
    ("unscored", "Not scored yet"),
)


def _render(
    request: Request,
    template: str,
    principal: Principal | None,
    key: str | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    flash = request.query_params.get("done")
    return templates.TemplateResponse(
        request,
        template,
        {
            "base": BASE,
            "principal": principal,
            "csrf": csrf_token(key) if key else "",
            "show_tickets": principal is not None and queries.can_see_tickets(principal),
            "show_accounts": principal is not None and queries.can_see_accounts(principal),
            "flash": flash,
            **context,
        },
        status_code=status_code,
    )


def _to_login() -> RedirectResponse:
    return RedirectResponse(f"{BASE}/login", status_code=303)


def _back(path: str, message: str) -> RedirectResponse:
    return RedirectResponse(f"{BASE}{path}?done={quote(message)}", status_code=303)


def _not_found(request: Request, principal: Principal, key: str, what: str) -> HTMLResponse:
    return _render(request, "base.html", principal, key, 404, error=f"No such {what}.")


@router.get("/static/console.css")
def stylesheet() -> FileResponse:
    return FileResponse(_HERE / "static" / "console.css", media_type="text/css")


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return _render(request, "login.html", None, None)


@router.post("/login", response_model=None)
def login(
    request: Request, conn: DbConnection, key: Annotated[str, Form()]
) -> HTMLResponse | RedirectResponse:
    try:
        authenticate(conn, key.strip())
    except ApiError as error:
        return _render(request, "login.html", None, None, 401, error=error.message)
    response = RedirectResponse(f"{BASE}/", status_code=303)
    set_session(response, request, key.strip(), BASE)
    return response


@router.post("/logout")
def logout() -> RedirectResponse:
    response = _to_login()
    clear_session(response, BASE)
    return response


@router.get("/", response_model=None)
def home(request: Request, conn: DbConnection) -> RedirectResponse:
    try:
        principal, _ = principal_of(conn, request)
    except SignInRequiredError:
        return _to_login()
    if principal.role == "csm":
        return RedirectResponse(f"{BASE}/accounts", status_code=303)
    return RedirectResponse(f"{BASE}/tickets", status_code=303)


@router.get("/tickets", response_model=None)
def ticket_queue(request: Request, conn: DbConnection) -> Response:
    try:
        principal, key = principal_of(conn, request)
    except SignInRequiredError:
        return _to_login()
    if not queries.can_see_tickets(principal):
        return _render(request, "base.html", principal, key, 403, error="Your role has no tickets.")
    active_only = request.query_params.get("all") != "1"
    rows = queries.ticket_queue(conn, principal, active_only=active_only)
    return _render(request, "tickets.html", principal, key, tickets=rows, active_only=active_only)


@router.get("/tickets/{ticket_id}", response_model=None)
def ticket_page(request: Request, conn: DbConnection, ticket_id: int) -> Response:
    try:
        principal, key = principal_of(conn, request)
    except SignInRequiredError:
        return _to_login()
    row = queries.ticket(conn, principal, ticket_id)
    if row is None:
        return _not_found(request, principal, key, "ticket")
    prediction = queries.prediction(conn, row["prediction_id"], row["device_id"])
    contributions = prediction["contributions"] if prediction else []
    signals = queries.contributing_signals(contributions)
    units = queries.metric_units(conn, signals)
    series = queries.sensor_series(conn, row["device_id"], signals, end=datetime.now(UTC))
    chart = (
        sensor_with_risk_svg(
            signal_name(series.metric, series.unit), series.unit, series.sensor, series.risk
        )
        if series is not None
        else ""
    )
    return _render(
        request,
        "ticket.html",
        principal,
        key,
        t=row,
        p=prediction,
        reasons=[describe_contribution(item, units) for item in contributions or []][:5],
        other_modes=queries.other_likely_modes(
            prediction["mode_probabilities"] if prediction else None, row["failure_mode"]
        ),
        series=series,
        series_label=signal_label(series.metric, series.unit) if series else "",
        chart=chart,
        events=queries.ticket_events(conn, ticket_id),
        commands=device_commands(conn, row["device_id"], limit=5),
        self_test_key=secrets.token_urlsafe(16),
        can_act=queries.can_act_on_tickets(principal),
        assignees=queries.assignable_field_users(conn, row["region"], row["team"])
        or [{"id": principal.user_id, "name": principal.name}],
    )


def _form_caller(
    request: Request, conn: DbConnection, csrf: str | None
) -> tuple[Principal, str] | Response:
    """The signed-in caller of a form post and their key, or the page to answer instead: the
    sign-in page without a session, 403 when the form's CSRF token is not the session's."""
    try:
        principal, key = principal_of(conn, request)
    except SignInRequiredError:
        return _to_login()
    if not csrf_valid(key, csrf):
        return _render(request, "base.html", principal, key, 403, error="The form expired.")
    return principal, key


def _ticket_action(
    request: Request,
    conn: DbConnection,
    ticket_id: int,
    csrf: str | None,
    to_status: str,
    **kwargs: Any,
) -> Response:

    caller = _form_caller(request, conn, csrf)
    if isinstance(caller, Response):
        return caller
    principal, key = caller
    if (
        not queries.can_act_on_tickets(principal)
        or queries.ticket(conn, principal, ticket_id) is None
    ):
        return _not_found(request, principal, key, "ticket")
    try:
        with conn.transaction():  # a refused transition leaves nothing half-written
            transition_ticket(
                conn, ticket_id, to_status, actor=f"user:{principal.user_id}", **kwargs
            )
    except TransitionError as error:
        return _render(request, "base.html", principal, key, 409, error=str(error))
    return _back(f"/tickets/{ticket_id}", f"Ticket {to_status.replace('_', ' ')}.")


@router.post("/tickets/{ticket_id}/assign", response_model=None)
def assign_ticket(
    request: Request,
    conn: DbConnection,
    ticket_id: int,
    assignee: Annotated[int, Form()],
    csrf: Annotated[str | None, Form()] = None,
) -> Response:
    return _ticket_action(request, conn, ticket_id, csrf, "assigned", assignee_user_id=assignee)


@router.post("/tickets/{ticket_id}/start", response_model=None)
def start_ticket(
    request: Request, conn: DbConnection, ticket_id: int, csrf: Annotated[str | None, Form()] = None
) -> Response:
    return _ticket_action(request, conn, ticket_id, csrf, "in_progress")


@router.post("/tickets/{ticket_id}/self-test", response_model=None)
def self_test_ticket_device(
    request: Request,
    conn: DbConnection,
    ticket_id: int,
    csrf: Annotated[str | None, Form()] = None,
    request_key: Annotated[str | None, Form()] = None,
) -> Response:
    """Send the ticket's device a ``self_test`` command (the downlink service delivers it);
    its answer shows on the ticket page. The page's form carries a key of its own, so a
    double click or a resent form queues one command."""
    caller = _form_caller(request, conn, csrf)
    if isinstance(caller, Response):
        return caller
    principal, key = caller
    row = queries.ticket(conn, principal, ticket_id)
    if not queries.can_act_on_tickets(principal) or row is None:
        return _not_found(request, principal, key, "ticket")
    key_ok = request_key is not None and re.fullmatch(IDEMPOTENCY_KEY_PATTERN, request_key)
    try:
        queued = queue_command(
            conn,
            row["device_id"],
            NewCommand(name="self_test"),
            requested_by=f"user:{principal.user_id}",
            default_ttl_s=request.app.state.command_ttl_s,
            idempotency_key=request_key if key_ok else None,
        )
    except IdempotencyKeyReusedError:
        return _back(f"/tickets/{ticket_id}", "That form was used for another device; reload.")
    if queued.replayed:
        return _back(f"/tickets/{ticket_id}", "Self-test already sent; its answer shows below.")
    return _back(f"/tickets/{ticket_id}", "Self-test sent; its answer shows below.")


@router.post("/tickets/{ticket_id}/resolve", response_model=None)
def resolve_ticket(
    request: Request,
    conn: DbConnection,
    ticket_id: int,
    outcome: Annotated[str, Form()],
    notes: Annotated[str | None, Form()] = None,
    csrf: Annotated[str | None, Form()] = None,
) -> Response:
    return _ticket_action(
        request, conn, ticket_id, csrf, "resolved", outcome=outcome, note=notes or None
    )


@router.get("/accounts", response_model=None)
def accounts(request: Request, conn: DbConnection) -> Response:
    try:
        principal, key = principal_of(conn, request)
    except SignInRequiredError:
        return _to_login()
    if not queries.can_see_accounts(principal):
        return _render(
            request, "base.html", principal, key, 403, error="Your role has no accounts."
        )
    rows = queries.accounts_by_health(conn, principal)
    by_band: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_band.setdefault(row["band"] or "unscored", []).append(row)
    return _render(
        request,
        "accounts.html",
        principal,
        key,
        bands=HEALTH_BANDS,
        by_band=by_band,
        total=len(rows),
    )


@router.get("/accounts/{account_id}", response_model=None)
def account_page(request: Request, conn: DbConnection, account_id: int) -> Response:
    from backend.customers.view import customer_360

    try:
        principal, key = principal_of(conn, request)
    except SignInRequiredError:
        return _to_login()
    if not queries.can_see_accounts(principal) or not queries.account_visible(
        conn, principal, account_id
    ):
        return _not_found(request, principal, key, "account")
    view = customer_360(conn, account_id)
    return _render(
        request,
        "account.html",
        principal,
        key,
        a=view,
        alerts=queries.account_alerts(conn, account_id),
        tickets=queries.account_tickets(conn, principal, account_id),
        can_act=queries.can_act_on_alerts(principal),
    )


def _alert_action(
    request: Request, conn: DbConnection, alert_id: int, csrf: str | None, to_status: str
) -> Response:

    caller = _form_caller(request, conn, csrf)
    if isinstance(caller, Response):
        return caller
    principal, key = caller
    account_id = queries.alert_account(conn, alert_id)
    if (
        account_id is None
        or not queries.can_act_on_alerts(principal)
        or not queries.account_visible(conn, principal, account_id)
    ):
        return _not_found(request, principal, key, "alert")
    try:
        with conn.transaction():
            transition_alert(conn, alert_id, to_status, actor=f"user:{principal.user_id}")
    except TransitionError as error:
        return _render(request, "base.html", principal, key, 409, error=str(error))
    return _back(f"/accounts/{account_id}", f"Alert {to_status}.")


@router.post("/alerts/{alert_id}/acknowledge", response_model=None)
def acknowledge_alert(
    request: Request, conn: DbConnection, alert_id: int, csrf: Annotated[str | None, Form()] = None
) -> Response:
    return _alert_action(request, conn, alert_id, csrf, "acknowledged")


@router.post("/alerts/{alert_id}/resolve", response_model=None)
def resolve_alert(
    request: Request, conn: DbConnection, alert_id: int, csrf: Annotated[str | None, Form()] = None
) -> Response:
    return _alert_action(request, conn, alert_id, csrf, "resolved")
