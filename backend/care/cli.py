"""``fleetcare care``: run the engine and the notification delivery, report, tune, manage rules.

Mounted by the root CLI as ``app.add_typer(care_cli.app, name="care")``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import psycopg
import typer
from rich.table import Table

from backend.care.settings import CareSettings
from fleetcare.cli.service_options import log_to_stderr
from fleetcare.cli.state import backend_settings, cli_state, say, stderr_console, stdout_console
from fleetcare.cli.waiting import stop_signals_interrupt
from fleetcare.config import load_settings

if TYPE_CHECKING:
    from backend.care.delivery import DeliveryWorker
    from backend.care.engine import CareEngine
    from backend.care.report import OutcomeStats

app = typer.Typer(
    help="Care: tickets for field service, alerts for CSMs, notifications, the closed loop.",
    no_args_is_help=True,
)
rules_app = typer.Typer(help="Versioned care rules (YAML or API).", no_args_is_help=True)
app.add_typer(rules_app, name="rules")

ACTOR = "cli"
Migrate = Annotated[
    bool, typer.Option("--migrate/--no-migrate", help="apply pending migrations first")
]


def care_settings(ctx: typer.Context) -> CareSettings:
    """Build and validate the care settings (``FLEETCARE_CARE_*``, TOML ``[care]``)."""
    return load_settings(CareSettings, cli_state(ctx).config_file)


@contextmanager
def _connection(ctx: typer.Context, *, migrate: bool = False) -> Iterator[psycopg.Connection[Any]]:
    """A connection to the configured database (or an embedded one started for the command)."""
    from backend.storage.connect import connect
    from backend.storage.migrator import apply_migrations
    from fleetcare.embedded.stack import ServiceStack

    settings = backend_settings(ctx)
    if settings.database_url is not None:
        if migrate:
            apply_migrations(settings.database_url, dialect=settings.storage_dialect)
        with connect(settings.database_url, settings.connect_timeout_s) as conn:
            yield conn
        return
    with ServiceStack(
        settings,
        services=("database",),
        announce=lambda line: say(stderr_console(), f"started {line}"),
    ) as stack:
        apply_migrations(stack.database_url, dialect=settings.storage_dialect)
        with connect(stack.database_url, settings.connect_timeout_s) as conn:
            yield conn


@app.command("run")
def run(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="one pass, then exit")] = False,
    duration: Annotated[
        float | None, typer.Option("--duration", min=0, help="seconds to run (default: forever)")
    ] = None,
    deliver: Annotated[
        bool, typer.Option("--deliver/--no-deliver", help="also send due notifications")
    ] = True,
    migrate: Migrate = False,
) -> None:
    """Evaluate new predictions and health scores: tickets, alerts, incidents, auto-closes."""
    from backend.care.delivery import DeliveryWorker
    from backend.care.engine import CareEngine, PassReport
    from backend.care.rule_definitions import load_rules_file
    from backend.care.rule_store import ensure_rules

    settings = care_settings(ctx)
    log_to_stderr(backend_settings(ctx).log_level)
    engine = CareEngine(settings)
    with _connection(ctx, migrate=migrate) as conn, DeliveryWorker(settings) as worker:
        loaded = ensure_rules(conn, load_rules_file(settings.rules_file), actor=ACTOR)
        conn.commit()
        if loaded:
            say(
                stderr_console(), f"loaded {len(loaded)} rules: {', '.join(r.name for r in loaded)}"
            )
        if once:
            report: PassReport = engine.run_once(conn)
            delivered = worker.deliver_due(conn) if deliver else None
            _print_pass(report, delivered.delivered if delivered else None)
            return
        deadline = None if duration is None else time.monotonic() + duration
        reconnect = _Reconnector(conn)
        try:
            with stop_signals_interrupt():  # SIGTERM (``fleetcare up``, the demo) as Ctrl-C
                _loop(engine, worker, reconnect, deliver, deadline, settings.poll_interval_s)
        except KeyboardInterrupt:
            say(
                stderr_console(),
                "care engine stopped (an interrupted pass is rolled back, never half kept)",
            )
        finally:
            reconnect.close()


def _loop(
    engine: CareEngine,
    worker: DeliveryWorker,
    reconnect: _Reconnector,
    deliver: bool,
    deadline: float | None,
    interval_s: float,
) -> None:
    """Care passes (and deliveries) every ``interval_s`` until ``deadline``."""
    while deadline is None or time.monotonic() < deadline:
        try:
            report = engine.run_once(reconnect.conn)
            delivered = worker.deliver_due(reconnect.conn) if deliver else None
        except psycopg.OperationalError as error:
            # The database went away (restart, failover): nothing of the failed pass was
            # committed, so wait for it and run the pass again.
            reconnect.recover(error, deadline)
            continue
        if report.predictions or report.health_scores or (delivered and delivered.delivered):
            _print_pass(report, delivered.delivered if delivered else None)
        time.sleep(interval_s)


class _Reconnector:
    """Keeps a working connection to the same database, reconnecting with back-off."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self._original = conn
        self._dsn = conn.info.dsn
        self._password = conn.info.password

    def recover(self, error: Exception, deadline: float | None) -> None:
        log = logging.getLogger("fleetcare.care")
        log.warning("database unavailable (%s); reconnecting", str(error).strip())
        if self.conn is not self._original:
            self.conn.close()
        delay = 0.5
        while deadline is None or time.monotonic() < deadline:
            time.sleep(delay)
            try:
                self.conn = psycopg.connect(self._dsn, password=self._password, connect_timeout=5)
            except psycopg.OperationalError:
                delay = min(delay * 2, 10.0)
                continue
            log.info("database reachable again")
            return

    def close(self) -> None:
        if self.conn is not self._original:
            self.conn.close()


def _print_pass(report: Any, delivered: int | None) -> None:
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(report.outcomes.items())) or "none"
    line = (
        f"predictions {report.predictions}, health scores {report.health_scores},"
        f" failed {report.failed}, incidents closed {report.incidents_closed}; {outcomes}"
    )
    if delivered is not None:
        line += f"; notifications delivered {delivered}"
    say(stdout_console(), line)


@app.command("deliver")
def deliver_command(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="one pass, then exit")] = False,
    requeue_dead: Annotated[
        bool, typer.Option("--requeue-dead", help="give dead-lettered notifications new attempts")
    ] = False,
) -> None:
    """Send due notifications (webhooks, e-mail) with retries; dead-letter after N attempts."""
    from backend.care.delivery import DeliveryWorker, requeue_dead_letters

    settings = care_settings(ctx)
    log_to_stderr(backend_settings(ctx).log_level)
    with _connection(ctx) as conn, DeliveryWorker(settings) as worker:
        if requeue_dead:
            count = requeue_dead_letters(conn, datetime.now(UTC))
            conn.commit()
            say(stdout_console(), f"requeued {count} dead-lettered notifications")
        if once:
            report = worker.deliver_due(conn)
        else:
            report = worker.run_forever(conn, interval_s=settings.poll_interval_s)
        say(
            stdout_console(),
            f"delivered {report.delivered}, retried {report.retried},"
            f" dead-lettered {report.dead_lettered}",
        )


def _stats_table(title: str, rows: list[OutcomeStats]) -> Table:
    table = Table(title=title)
    for column in (
        "group",
        "tickets",
        "resolved",
        "confirmed",
        "prevented",
        "no fault",
        "auto-closed",
        "open",
        "precision",
        "lead h (median)",
        "missed",
    ):
        table.add_column(column, overflow="fold")
    for s in rows:
        table.add_row(
            s.group,
            str(s.tickets),
            str(s.resolved),
            str(s.failure_confirmed),
            str(s.failure_prevented),
            str(s.no_fault_found),
            str(s.auto_closed),
            str(s.still_open),
            "-" if s.precision is None else f"{s.precision:.2f}",
            "-" if s.lead_time_hours_median is None else f"{s.lead_time_hours_median:.1f}",
            "-" if s.missed_failures is None else str(s.missed_failures),
        )
    return table


@app.command("report")
def report_command(
    ctx: typer.Context,
    days: Annotated[int, typer.Option("--days", min=1, help="tickets of the last N days")] = 90,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Precision, lead time and missed failures per model version and rule; the CSM playbook."""
    from backend.care.report import care_report

    settings = care_settings(ctx)
    until = datetime.now(UTC)
    with _connection(ctx) as conn:
        report = care_report(
            conn,
            since=until - timedelta(days=days),
            until=until,
            failure_event_kinds=settings.failure_event_kinds,
            missed_lookback=timedelta(days=settings.missed_failure_lookback_days),
        )
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
        return
    console = stdout_console()
    console.print(_stats_table("tickets: all", [report.overall]))
    console.print(_stats_table("per model version", report.by_model_version))
    console.print(_stats_table("per rule version", report.by_rule))
    say(console, f"failures observed {report.failures}, missed {report.missed_failures}")
    playbook = Table(title="playbook: alert -> CSM action -> account outcome")
    for column in (
        "alert",
        "action",
        "alerts",
        "renewed",
        "expanded",
        "churned",
        "undecided",
        "save rate",
    ):
        playbook.add_column(column)
    for row in report.playbook:
        playbook.add_row(
            row.alert_kind,
            row.action,
            str(row.alerts),
            str(row.renewed),
            str(row.expanded),
            str(row.churned),
            str(row.undecided),
            "-" if row.save_rate is None else f"{row.save_rate:.2f}",
        )
    console.print(playbook)


@app.command("tune")
def tune_command(
    ctx: typer.Context,
    target_precision: Annotated[
        float, typer.Option("--target-precision", min=0.01, max=1.0, help="precision to reach")
    ],
    rule: Annotated[str, typer.Option("--rule", help="the failure_risk rule")] = "failure-risk",
    min_tickets: Annotated[
        int, typer.Option("--min-tickets", min=1, help="fewest tickets a suggestion rests on")
    ] = 5,
    apply: Annotated[
        bool, typer.Option("--apply", help="store the suggestion as a new rule version")
    ] = False,
) -> None:
    """Suggest a threshold that meets a target precision; applied only with --apply."""
    from backend.care.tuning import apply_suggestion, suggest_threshold

    with _connection(ctx) as conn:
        suggestion = suggest_threshold(
            conn, target_precision=target_precision, rule_name=rule, min_tickets=min_tickets
        )
        console = stdout_console()
        table = Table(title=f"{rule} v{suggestion.rule_version}: precision by threshold")
        for column in ("threshold", "tickets", "precision", "true needs kept"):
            table.add_column(column)
        for point in suggestion.curve:
            table.add_row(
                f"{point.threshold:.2f}",
                str(point.tickets),
                f"{point.precision:.2f}",
                f"{point.kept_positive_share:.0%}",
            )
        console.print(table)
        say(console, f"suggestion: {suggestion.message}")
        if apply:
            stored = apply_suggestion(conn, suggestion, actor=ACTOR)
            conn.commit()
            say(console, f"applied: {stored.name} version {stored.version}")
        elif suggestion.suggested_threshold is not None:
            say(console, "not applied; run again with --apply to store it as a new rule version")


@rules_app.command("list")
def rules_list(
    ctx: typer.Context,
    all_versions: Annotated[bool, typer.Option("--all", help="every version")] = False,
) -> None:
    """The rules (newest version of each, or every version)."""
    from backend.care.rule_store import list_rules

    with _connection(ctx) as conn:
        rules = list_rules(conn, all_versions=all_versions)
    table = Table(title="care rules")
    for column in ("id", "name", "version", "target", "kind", "enabled", "by"):
        table.add_column(column)
    for rule in rules:
        table.add_row(
            str(rule.id),
            rule.name,
            str(rule.version),
            rule.target,
            rule.definition.kind,
            "yes" if rule.enabled else "no",
            rule.created_by,
        )
    stdout_console().print(table)


@rules_app.command("validate")
def rules_validate(path: Annotated[Path, typer.Argument(help="a YAML rules file")]) -> None:
    """Check a rules file without touching the database."""
    from backend.care.rule_definitions import load_rules_file

    rules = load_rules_file(path)
    say(stdout_console(), f"{path}: {len(rules)} valid rules")


@rules_app.command("load")
def rules_load(
    ctx: typer.Context,
    path: Annotated[
        Path | None, typer.Argument(help="a YAML rules file (default: the shipped rules)")
    ] = None,
) -> None:
    """Store each rule of the file whose definition changed as a new version."""
    from backend.care.rule_definitions import load_rules_file
    from backend.care.rule_store import sync_rules

    specs = load_rules_file(path or care_settings(ctx).rules_file)
    with _connection(ctx) as conn:
        created = sync_rules(conn, specs, actor=ACTOR)
        conn.commit()
    summary = ", ".join(f"{r.name} v{r.version}" for r in created) or "nothing changed"
    say(stdout_console(), f"new versions: {summary}")


@rules_app.command("show")
def rules_show(
    ctx: typer.Context, rule_id: Annotated[int, typer.Argument(help="the rule version's id")]
) -> None:
    """One rule version as JSON."""
    from backend.care.rule_store import get_rule

    with _connection(ctx) as conn:
        rule = get_rule(conn, rule_id)
    typer.echo(json.dumps(rule.as_dict(), indent=2, default=str))
