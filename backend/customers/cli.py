"""``fleetcare accounts``: import, identity review, quality, health, segments, privacy.

Mounted by the root CLI as ``app.add_typer(customers_cli.app, name="accounts")``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from psycopg import Connection
from rich.table import Table

from backend.customers.errors import CustomersError
from backend.customers.identity import Thresholds
from backend.customers.records import SOURCES, Source
from backend.customers.settings import CustomersSettings
from fleetcare.cli.service_options import DurationOption, IntervalOption, log_to_stderr
from fleetcare.cli.state import backend_settings, cli_state, say, stderr_console, stdout_console
from fleetcare.config import load_settings

app = typer.Typer(
    help="Customer accounts: import, identity, quality, health, segments, export, erasure.",
    no_args_is_help=True,
)
review_app = typer.Typer(help="The identity review queue.", no_args_is_help=True)
app.add_typer(review_app, name="review")

Actor = Annotated[str, typer.Option("--actor", help="who decides (recorded with the decision)")]


def _settings(ctx: typer.Context) -> CustomersSettings:
    return load_settings(CustomersSettings, cli_state(ctx).config_file)


def _thresholds(ctx: typer.Context) -> Thresholds:
    settings = _settings(ctx)
    return Thresholds(match=settings.match_threshold, review=settings.review_threshold)


@contextmanager
def _connection(ctx: typer.Context) -> Iterator[Connection[Any]]:
    """A connection in one transaction: committed when the command succeeds."""
    from backend.storage.connect import connect
    from fleetcare.embedded.stack import ServiceStack

    settings = backend_settings(ctx)
    with (
        ServiceStack(settings, services=("database",)) as stack,
        connect(stack.database_url, settings.connect_timeout_s) as conn,
    ):
        try:
            yield conn
        except CustomersError as exc:
            conn.rollback()
            say(stderr_console(), f"error: {exc}", style="bold red")
            raise typer.Exit(1) from None
        conn.commit()


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"not an ISO date or time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _source(value: str) -> Source:
    for source in SOURCES:
        if source == value:
            return source
    raise typer.BadParameter(f"--source must be one of {', '.join(SOURCES)}")


@app.command("import")
def import_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="a CSV or JSON export")],
    source: Annotated[str, typer.Option("--source", "-s", help="crm, erp or service")],
) -> None:
    """Import a source-system export; refused rows are listed with their row number."""
    from backend.customers.importer import import_file

    console = stdout_console()
    with _connection(ctx) as conn:
        report = import_file(conn, file, _source(source), thresholds=_thresholds(ctx))
    say(
        console,
        f"{report.imported} of {report.rows} rows imported from {file.name} ({source}): "
        f"{report.new_accounts} new accounts, {report.matched_existing} matched to existing, "
        f"{report.in_review} waiting for review",
    )
    for rejected in report.rejected:
        say(console, f"  row {rejected.row}: {rejected.reason}", style="yellow")
    if report.rejected:
        raise typer.Exit(3)


@review_app.command("list")
def review_list(
    ctx: typer.Context, limit: Annotated[int, typer.Option(min=1, max=1000)] = 50
) -> None:
    """Matches waiting for a person, oldest first."""
    from backend.customers.identity import review_queue

    with _connection(ctx) as conn:
        pending = review_queue(conn, limit)
    table = Table(title=f"{len(pending)} match(es) to review")
    for column in ("decision", "record", "proposed account", "confidence", "evidence"):
        table.add_column(column)
    for d in pending:
        table.add_row(
            str(d.id),
            f"{d.source}:{d.source_id}",
            str(d.account_id),
            f"{d.confidence:.2f}",
            json.dumps(d.evidence),
        )
    stdout_console().print(table)


@review_app.command("accept")
def review_accept(ctx: typer.Context, decision: int, actor: Actor = "cli") -> None:
    """Confirm a proposed match."""
    from backend.customers.golden import refresh_account
    from backend.customers.identity import accept

    with _connection(ctx) as conn:
        made = accept(conn, decision, actor=actor)
        if made.account_id is not None:
            refresh_account(conn, made.account_id)
    say(stdout_console(), f"{made.source}:{made.source_id} belongs to account {made.account_id}")


@review_app.command("reject")
def review_reject(ctx: typer.Context, decision: int, actor: Actor = "cli") -> None:
    """Refuse a proposed match: the record gets an account of its own."""
    from backend.customers.golden import refresh_account
    from backend.customers.identity import reject

    with _connection(ctx) as conn:
        made = reject(conn, decision, actor=actor)
        if made.account_id is not None:
            refresh_account(conn, made.account_id)
    say(stdout_console(), f"{made.source}:{made.source_id} now has account {made.account_id}")


@review_app.command("revert")
def review_revert(ctx: typer.Context, decision: int, actor: Actor = "cli") -> None:
    """Undo a current decision: the one before it applies again."""
    from backend.customers.golden import refresh_account
    from backend.customers.identity import revert

    with _connection(ctx) as conn:
        made = revert(conn, decision, actor=actor)
        if made.account_id is not None:
            refresh_account(conn, made.account_id)
    say(
        stdout_console(), f"{made.source}:{made.source_id}: {made.status} account {made.account_id}"
    )


@app.command()
def quality(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Conflicts, missing values and duplicates; the counts are kept over time."""
    from backend.customers.quality import take_snapshot

    with _connection(ctx) as conn:
        report = take_snapshot(conn)
    console = stdout_console()
    if as_json:
        say(console, report.model_dump_json(indent=1, exclude={"conflicts"}))
        return
    table = Table(title=f"data quality at {report.taken_at:%Y-%m-%d %H:%M}")
    table.add_column("measure")
    table.add_column("count", justify="right")
    table.add_column("change", justify="right")
    rows: list[tuple[str, int, str]] = [("records " + s, n, "") for s, n in report.records.items()]
    rows += [
        ("accounts", report.accounts, _delta(report.change, "accounts")),
        (
            "conflicting accounts",
            report.conflicting_accounts,
            _delta(report.change, "conflicting_accounts"),
        ),
    ]
    rows += [(f"conflicts: {f}", n, "") for f, n in report.conflicts_by_field.items()]
    rows += [(f"duplicates: {s}", n, "") for s, n in report.duplicates_by_source.items() if n]
    rows += [(f"missing: {f}", n, "") for f, n in report.missing_by_field.items()]
    rows.append(("waiting for review", report.in_review, _delta(report.change, "in_review")))
    for name, count, change in rows:
        table.add_row(name, str(count), change)
    console.print(table)


def _delta(change: dict[str, int], key: str) -> str:
    return f"{change[key]:+d}" if key in change else ""


@app.command()
def health(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option(help="only accounts with new data since (ISO time)")
    ] = None,
    at: Annotated[str | None, typer.Option(help="score as of (ISO time; default now)")] = None,
    continuous: Annotated[
        bool,
        typer.Option(
            "--continuous",
            help="a pass every interval until Ctrl-C: changed and stale accounts "
            "(the `health` service of `fleetcare up`)",
        ),
    ] = False,
    interval: IntervalOption = None,
    duration: DurationOption = None,
) -> None:
    """Recompute health scores (incrementally with --since) and keep them with their inputs."""
    from backend.customers.churn_model import LinearChurnModel
    from backend.customers.health_job import recompute
    from backend.customers.health_weights import load_weights

    settings = _settings(ctx)
    if continuous:
        if since is not None or at is not None:
            raise typer.BadParameter("--continuous scores as of each pass: drop --since/--at")
        _health_forever(ctx, settings, interval or settings.health_interval_s, duration)
        return
    weights = load_weights(settings.health_weights)
    model = LinearChurnModel.load(settings.churn_model) if settings.churn_model else None
    moment = _parse_time(at) or datetime.now(UTC)
    with _connection(ctx) as conn:
        scores = recompute(conn, weights, at=moment, since=_parse_time(since), churn_model=model)
    bands: dict[str, int] = {}
    for score in scores:
        bands[score.band] = bands.get(score.band, 0) + 1
    summary = ", ".join(f"{n} {b}" for b, n in sorted(bands.items())) or "nothing changed"
    say(stdout_console(), f"scored {len(scores)} account(s) (weights {weights.version}): {summary}")


def _health_forever(
    ctx: typer.Context, customers: CustomersSettings, interval_s: float, duration: float | None
) -> None:
    from backend.customers.health_service import HealthPass, HealthRefresher
    from fleetcare.cli.waiting import run_until_stopped
    from fleetcare.embedded.stack import ServiceStack
    from fleetcare.redact import redact_url

    settings = backend_settings(ctx)
    log_to_stderr(settings.log_level)
    log = logging.getLogger("fleetcare.health")

    def report(done: HealthPass) -> None:
        bands = ", ".join(f"{n} {b}" for b, n in sorted(done.bands.items())) or "none"
        log.info(
            "pass: %d account(s) scored (%d changed, %d stale): %s; %.2f s",
            done.scored, done.changed, done.stale, bands, done.seconds,
        )  # fmt: skip

    with ServiceStack(settings, services=("database",)) as stack:
        refresher = HealthRefresher.from_settings(
            stack.database_url, customers, connect_timeout_s=settings.connect_timeout_s
        )
        log.info(
            "health: database %s, a pass every %.0f s, weights %s, rescored after %s",
            redact_url(stack.database_url), interval_s, refresher.weights.version,
            refresher.rescore_after,
        )  # fmt: skip
        run_until_stopped("health", lambda stop: refresher.run(interval_s, stop, report), duration)
    say(stdout_console(), f"{refresher.passes} pass(es), {refresher.failures} failed")


@app.command("churn-train")
def churn_train(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="where to write the model (JSON)")],
    version: Annotated[str, typer.Option(help="model version")] = "churn-1",
) -> None:
    """Train the churn model on the recorded renewal outcomes (needs the train extra)."""
    from backend.customers.churn_training import NotEnoughHistoryError, train

    with _connection(ctx) as conn:
        try:
            model, result = train(conn, version=version)
        except NotEnoughHistoryError as exc:
            say(stderr_console(), f"error: {exc}", style="bold red")
            raise typer.Exit(1) from None
    model.save(out)
    say(
        stdout_console(),
        f"trained on {model.metrics['examples']:.0f} outcomes: CV ROC AUC logistic "
        f"{result.mean('logistic'):.3f} ± {result.std('logistic'):.3f}, blend "
        f"{result.mean('blend'):.3f} ± {result.std('blend'):.3f}; wrote {out}",
    )


@app.command()
def segments(
    ctx: typer.Context,
    at: Annotated[str | None, typer.Option(help="as of (ISO time; default now)")] = None,
) -> None:
    """Cluster accounts into the five named RFM + usage segments."""
    from backend.customers.segments import segment_accounts

    with _connection(ctx) as conn:
        assigned = segment_accounts(conn, _parse_time(at) or datetime.now(UTC))
    counts: dict[str, int] = {}
    for item in assigned:
        counts[item.segment] = counts.get(item.segment, 0) + 1
    say(
        stdout_console(),
        ", ".join(f"{s}: {n}" for s, n in sorted(counts.items())) or "too few accounts",
    )


@app.command()
def show(ctx: typer.Context, account: int) -> None:
    """The customer 360 of one account, as JSON."""
    from backend.customers.view import customer_360

    with _connection(ctx) as conn:
        view = customer_360(conn, account)
    say(stdout_console(), view.model_dump_json(indent=1))


@app.command()
def export(
    ctx: typer.Context,
    account: int,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="write to this file")] = None,
) -> None:
    """Everything held about one account, as JSON."""
    from backend.customers.privacy import export_account

    with _connection(ctx) as conn:
        data = export_account(conn, account)
    text = json.dumps(data, indent=1, ensure_ascii=False)
    if out is None:
        say(stdout_console(), text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        say(stdout_console(), f"wrote {out}")


@app.command()
def erase(
    ctx: typer.Context,
    account: int,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
    actor: Actor = "cli",
) -> None:
    """Erase one account's personal data everywhere (irreversible; logged)."""
    from backend.customers.privacy import erase_account

    if not yes:
        typer.confirm(
            f"erase the personal data of account {account}? This cannot be undone", abort=True
        )
    with _connection(ctx) as conn:
        counts = erase_account(conn, account, actor=actor)
    say(stdout_console(), "erased: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


@app.command("load-sim")
def load_sim(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="a sim output")],
    outcomes: Annotated[bool, typer.Option(help="also load the renewal outcomes")] = False,
) -> None:
    """Load a simulator output (exports, usage, events) for demos and evaluation."""
    from backend.customers.simload import load_simulation

    with _connection(ctx) as conn:
        result = load_simulation(conn, directory, thresholds=_thresholds(ctx), outcomes=outcomes)
    say(
        stdout_console(),
        f"{sum(r.imported for r in result.imports)} source records, {result.devices} devices, "
        f"{result.service_tickets} tickets, {result.usage_rows} usage rows, "
        f"{result.events} events, {result.outcomes} outcomes",
    )
