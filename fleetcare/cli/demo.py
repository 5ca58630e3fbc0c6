"""``fleetcare demo``: the whole product on one machine, as a sequence of steps.

Each step does one thing and records what it set up in :class:`DemoRun` (resources to
close, facts for the summary). :func:`default_steps` wires the whole loop: services, the
failure models, the simulated fleet through the SDK (one site's devices through an edge
gateway) into ingest, scoring, the care engine
and its webhooks to a local receiver, the API and console, a live view, and a summary
judged against the simulator's ground truth (the steps live in :mod:`fleetcare.demo`).
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Protocol

import typer
from rich.console import Console
from rich.table import Table

from fleetcare.cli.state import backend_settings, say, stderr_console, stdout_console
from fleetcare.embedded.stack import ServiceStack
from fleetcare.redact import redact_url

if TYPE_CHECKING:
    from backend.ingest.demo_fleet import SimFleetPlan
    from backend.settings import BackendSettings
    from fleetcare.demo.model_step import TrainingPlan


#: The fleet models' window of daily means (``models.fleet.training.FleetConfig``): the
#: demo loads that much of the fleet's history before the live span, so that every device
#: has a full window from the span's first day on.
FLEET_WINDOW_DAYS = 28


@dataclass
class DemoRun:
    """State shared by the steps of one demo run.

    Attributes:
        resources: closes what the steps started, in reverse order, when the demo ends.
        facts: ``(what, value)`` pairs shown in the summary, in the order steps added them.
        stack: the services, once the ``services`` step ran.
    """

    settings: BackendSettings
    console: Console
    duration_s: float | None
    resources: ExitStack
    facts: list[tuple[str, str]] = field(default_factory=list)
    stack: ServiceStack | None = None
    interrupted: bool = False

    def services(self) -> ServiceStack:
        if self.stack is None:
            raise RuntimeError("the services step has not run")
        return self.stack

    def note(self, what: str, value: str) -> None:
        """Record a fact for the summary and show it now."""
        self.facts.append((what, value))
        say(self.console, f"  {what}: {value}")


class DemoStep(Protocol):
    """One stage of the demo; ``run`` raises to abort the demo."""

    title: str

    def run(self, demo: DemoRun) -> None: ...


class StartServices:
    title = "start services"

    def run(self, demo: DemoRun) -> None:
        stack = demo.resources.enter_context(
            ServiceStack(
                demo.settings, announce=lambda line: say(demo.console, f"  started {line}")
            )
        )
        demo.stack = stack
        origin = "embedded" if stack.postgres is not None else "configured"
        demo.note("database", f"{redact_url(stack.database_url)} ({origin})")
        if stack.broker is not None:
            mqtt = "MQTT 5" if stack.broker.supports_mqtt5 else "MQTT 3.1.1"
            demo.note("broker", f"{stack.broker_url} (embedded {stack.broker.description}, {mqtt})")
        else:
            demo.note("broker", f"{redact_url(stack.broker_url)} (configured)")


class ApplyMigrations:
    title = "migrate the database"

    def run(self, demo: DemoRun) -> None:
        from backend.storage.migrator import apply_migrations

        run = apply_migrations(demo.services().database_url, dialect=demo.settings.storage_dialect)
        demo.note("dialect", run.dialect)
        applied = ", ".join(run.applied) if run.applied else "none new"
        demo.note("migrations", f"{applied} ({run.already_applied} already applied)")


def default_steps(
    fleet_plan: SimFleetPlan | None = None, training: TrainingPlan | None = None
) -> list[DemoStep]:
    from backend.ingest.demo import SimulatedFleetStep
    from fleetcare.demo.api_step import ApiStep
    from fleetcare.demo.care_step import CareStep
    from fleetcare.demo.downlink_step import DownlinkStep
    from fleetcare.demo.finish_step import FinishStep
    from fleetcare.demo.gateway_site import GatewaySite
    from fleetcare.demo.health_step import HealthStep
    from fleetcare.demo.live_view import LiveViewStep
    from fleetcare.demo.model_step import ModelStep
    from fleetcare.demo.outcome import BaselineStep
    from fleetcare.demo.scoring_step import ScoringStep, daily_interval_s
    from fleetcare.demo.webhook_receiver import WebhookReceiverStep

    models = ModelStep(training)
    baseline = BaselineStep()
    fleet = SimulatedFleetStep(fleet_plan, every_s=None, site=GatewaySite())
    scoring = ScoringStep(
        models, interval_s=daily_interval_s(fleet.plan.speed), span_s=lambda: fleet.span_s
    )
    care = CareStep(time_scale=fleet.plan.speed)
    health = HealthStep(interval_s=daily_interval_s(fleet.plan.speed))
    receiver = WebhookReceiverStep()
    api = ApiStep(lambda: fleet.devices)
    downlink = DownlinkStep(api, baseline, lambda: fleet.devices)
    return [
        StartServices(),
        ApplyMigrations(),
        models,
        baseline,
        receiver,
        care,
        fleet,
        api,
        scoring,
        health,
        downlink,
        LiveViewStep(baseline, fleet, receiver),
        FinishStep(baseline, fleet, scoring, health, care, receiver, api, downlink),
    ]


def render_summary(demo: DemoRun, done: list[str], elapsed_s: float) -> Table:
    how = "stopped by the user" if demo.interrupted else "duration elapsed"
    table = Table(title=f"fleetcare demo: {len(done)} step(s) in {elapsed_s:.1f} s, {how}")
    table.add_column("what")
    table.add_column("value", overflow="fold")
    for what, value in demo.facts:
        table.add_row(what, value)
    return table


def demo(
    ctx: typer.Context,
    duration: Annotated[
        float | None,
        typer.Option(
            "--duration", min=0, help="seconds the fleet runs, after set-up (default: Ctrl-C)"
        ),
    ] = None,
    devices: Annotated[int, typer.Option("--devices", min=1, help="simulated devices")] = 240,
    accounts: Annotated[int, typer.Option("--accounts", min=1, help="their accounts")] = 30,
    seed: Annotated[int, typer.Option("--seed", help="the simulated fleet's seed")] = 42,
    gateway_every: Annotated[
        int,
        typer.Option(
            "--gateway-every",
            min=0,
            help="one simulator shard in N is a site publishing through a gateway (0: none)",
        ),
    ] = 5,
    day_s: Annotated[
        float, typer.Option("--day-s", min=0.5, help="wall seconds per simulated day")
    ] = 5.0,
    train_devices: Annotated[
        int, typer.Option("--train-devices", min=20, help="devices of the training history")
    ] = 200,
    train_days: Annotated[
        int, typer.Option("--train-days", min=60, help="days of the training history")
    ] = 240,
    history_days: Annotated[
        int,
        typer.Option(
            "--history-days",
            min=0,
            max=90,
            help="days of the fleet's history loaded before the live span (0: none)",
        ),
    ] = FLEET_WINDOW_DAYS,
) -> None:
    """Run fleetcare end to end on this machine (embedded services unless configured)."""
    from backend.ingest.demo_fleet import SimFleetPlan
    from fleetcare.demo.model_step import MIN_SCORED_RUN_S, TrainingPlan
    from fleetcare.demo.single_run import DemoAlreadyRunningError, only_demo_in

    if accounts > devices:
        raise typer.BadParameter("at most one account per device", param_hint="--accounts")
    plan = SimFleetPlan(
        devices=devices,
        accounts=accounts,
        seed=seed,
        speed=86_400 / day_s,
        gateway_every=gateway_every,
        # A run too short to score anything has no use for the models' history.
        history_days=history_days if duration is None or duration >= MIN_SCORED_RUN_S else 0,
    )
    training = TrainingPlan(devices=train_devices, days=train_days)
    settings = backend_settings(ctx)
    console = stdout_console()
    started = time.monotonic()
    done: list[str] = []
    with ExitStack() as resources:
        try:
            resources.enter_context(only_demo_in(settings.data_dir))
        except DemoAlreadyRunningError as exc:
            say(stderr_console(), f"error: {exc}", "red")
            raise typer.Exit(1) from None
        run = DemoRun(settings=settings, console=console, duration_s=duration, resources=resources)
        steps = default_steps(plan, training)
        try:
            for number, step in enumerate(steps, start=1):
                say(console, f"[{number}/{len(steps)}] {step.title}", style="bold")
                step.run(run)
                done.append(step.title)
        except KeyboardInterrupt:
            run.interrupted = True
            say(console, f"interrupted during: {steps[len(done)].title}", style="yellow")
        say(console, "stopping services")
    console.print(render_summary(run, done, time.monotonic() - started))
