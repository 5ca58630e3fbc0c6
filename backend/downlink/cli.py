"""``fleetcare downlink``: the service that sends desired configs and commands to devices,
and commands to queue one and follow it from a shell."""

from __future__ import annotations

import json
import logging
import threading
from typing import Annotated

import typer

from backend.downlink.settings import DownlinkSettings
from fleetcare.cli.service_options import DurationOption, log_to_stderr
from fleetcare.cli.state import backend_settings, cli_state
from fleetcare.config import load_settings

app = typer.Typer(no_args_is_help=True)


def _settings(ctx: typer.Context) -> DownlinkSettings:
    return load_settings(DownlinkSettings, cli_state(ctx).config_file)


@app.command()
def run(ctx: typer.Context, duration: DurationOption = None) -> None:
    """Publish desired configs and commands, record the devices' answers, until Ctrl-C
    (the `downlink` service of `fleetcare up`)."""
    from backend.downlink.link import DownlinkLink
    from backend.downlink.service import DownlinkService
    from backend.ingest.receiver import choose_protocol
    from fleetcare.cli.waiting import run_until_stopped
    from fleetcare.embedded.stack import ServiceStack
    from fleetcare.redact import redact_url

    settings = backend_settings(ctx)
    downlink = _settings(ctx)
    log_to_stderr(settings.log_level)
    log = logging.getLogger("fleetcare.downlink")
    with ServiceStack(settings, services=("database", "broker")) as stack:
        protocol = choose_protocol(stack.broker_url, timeout_s=settings.connect_timeout_s)
        wake = threading.Event()
        link = DownlinkLink(
            stack.broker_url, settings.topic_root, downlink.client_id, protocol=protocol, wake=wake
        )
        service = DownlinkService(
            stack.database_url, link, downlink, root=settings.topic_root, wake=wake
        )
        log.info(
            "downlink: database %s, broker %s (MQTT %s), topic root %s",
            redact_url(stack.database_url),
            redact_url(stack.broker_url),
            protocol,
            settings.topic_root,
        )
        link.start()
        try:
            run_until_stopped("downlink", service.run, duration)
        finally:
            link.stop()
    counts = service.counts
    typer.echo(
        f"sent {counts.desired_sent} desired config(s) and {counts.commands_sent} command(s); "
        f"stored {counts.reports_stored} report(s) and {counts.replies_stored} reply(ies); "
        f"{counts.commands_expired} expired, {counts.answers_refused} refused"
    )


@app.command()
def command(
    ctx: typer.Context,
    device: Annotated[str, typer.Argument(help="the device's external id (as on the wire)")],
    name: Annotated[str, typer.Argument(help="the command's name on the device")],
    args: Annotated[str, typer.Option("--args", help="JSON object of arguments")] = "{}",
    ttl: Annotated[
        int | None, typer.Option("--ttl", min=1, help="seconds it may wait for the device")
    ] = None,
) -> None:
    """Queue a command for a device; the `downlink` service sends it. Prints its id."""
    from pydantic import ValidationError

    from backend.downlink.commands import NewCommand, queue_command
    from backend.downlink.store import device_id_of
    from backend.storage.connect import connect
    from fleetcare.embedded.stack import ServiceStack

    try:
        parsed = json.loads(args)
        request = NewCommand(name=name, args=parsed, ttl_s=ttl)
    except (json.JSONDecodeError, ValidationError) as exc:
        raise typer.BadParameter(f"not a command: {exc}") from None
    settings = backend_settings(ctx)
    downlink = _settings(ctx)
    with (
        ServiceStack(settings, services=("database",)) as stack,
        connect(stack.database_url) as conn,
    ):
        device_id = device_id_of(conn, device)
        if device_id is None:
            raise typer.BadParameter(f"no device {device!r} is registered", param_hint="DEVICE")
        try:
            record = queue_command(
                conn,
                device_id,
                request,
                requested_by="cli",
                default_ttl_s=downlink.command_ttl_s,
            ).record
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--args") from None
        conn.commit()
    typer.echo(f"{record.id} queued for {device}, expires {record.expires_at.isoformat()}")


@app.command("list")
def list_commands(
    ctx: typer.Context,
    device: Annotated[str, typer.Argument(help="the device's external id")],
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
) -> None:
    """A device's commands, newest first, with their status and answer."""
    from backend.downlink.commands import device_commands
    from backend.downlink.store import device_id_of
    from backend.storage.connect import connect
    from fleetcare.embedded.stack import ServiceStack

    settings = backend_settings(ctx)
    with (
        ServiceStack(settings, services=("database",)) as stack,
        connect(stack.database_url, autocommit=True) as conn,
    ):
        device_id = device_id_of(conn, device)
        if device_id is None:
            raise typer.BadParameter(f"no device {device!r} is registered", param_hint="DEVICE")
        records = device_commands(conn, device_id, limit=limit)
    for record in records:
        answer = record.result if record.result is not None else record.error or ""
        typer.echo(
            f"{record.created_at:%Y-%m-%d %H:%M:%S} {record.id} {record.name} "
            f"{record.status} {json.dumps(answer) if isinstance(answer, dict) else answer}"
        )
