"""``fleetcare demo``: the whole product on one machine, as a sequence of steps.

Each step does one thing and records what it set up in :class:`DemoRun` (resources to
close, facts for the summary). Later work adds steps (simulated fleet, ingest, scoring,
care tickets) to :func:`default_steps`.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Protocol

import typer
from rich.console import Console
from rich.table import Table

from fleetcare.cli.state import backend_settings, say, stdout_console
from fleetcare.cli.waiting import wait_until_stopped
from fleetcare.embedded.stack import ServiceStack
from fleetcare.redact import redact_url

if TYPE_CHECKING:
    from backend.settings import BackendSettings


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


class WaitForDuration:
    title = "run"

    def run(self, demo: DemoRun) -> None:
        until = "Ctrl-C" if demo.duration_s is None else f"{demo.duration_s:g} s or Ctrl-C"
        demo.interrupted = wait_until_stopped(
            demo.duration_s, on_waiting=lambda: say(demo.console, f"  running until {until}")
        )


def default_steps() -> list[DemoStep]:
    from backend.ingest.demo import SimulatedFleetStep

    return [StartServices(), ApplyMigrations(), SimulatedFleetStep(), WaitForDuration()]


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
        typer.Option("--duration", min=0, help="seconds to run (default: until Ctrl-C)"),
    ] = None,
) -> None:
    """Run fleetcare end to end on this machine (embedded services unless configured)."""
    settings = backend_settings(ctx)
    console = stdout_console()
    started = time.monotonic()
    done: list[str] = []
    with ExitStack() as resources:
        run = DemoRun(settings=settings, console=console, duration_s=duration, resources=resources)
        steps = default_steps()
        for number, step in enumerate(steps, start=1):
            say(console, f"[{number}/{len(steps)}] {step.title}", style="bold")
            step.run(run)
            done.append(step.title)
        say(console, "stopping services")
    console.print(render_summary(run, done, time.monotonic() - started))
