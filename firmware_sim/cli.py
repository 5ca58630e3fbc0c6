"""``fleetcare sim``: run a simulated fleet live through the device SDK, or generate history.

Mount in the root CLI with ``app.add_typer(firmware_sim.cli.app, name="sim")``; also
runs as ``python -m firmware_sim``.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from firmware_sim.config import SimConfig
from firmware_sim.durations import parse_duration
from firmware_sim.errors import SimError
from fleetcare.cli.days import day_option

if TYPE_CHECKING:
    from firmware_sim.faults import FaultSpec

app = typer.Typer(
    name="sim",
    help="Simulated fleet: live through the device SDK, or history straight to Parquet.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

Devices = Annotated[int, typer.Option("--devices", "-n", min=1, help="number of devices")]
Accounts = Annotated[
    int | None, typer.Option("--accounts", "-a", min=1, help="customer accounts (default N/8)")
]
Seed = Annotated[int, typer.Option("--seed", min=0, help="random seed: same seed, same output")]
Start = Annotated[str | None, typer.Option("--start", help="first simulated day, YYYY-MM-DD (UTC)")]


def _config(**values: object) -> SimConfig:
    try:
        return SimConfig.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        raise typer.BadParameter("\n" + _validation_lines(exc)) from None


def _validation_lines(exc: ValidationError) -> str:
    """One indented line per error: ``  field: message``."""
    return "\n".join(
        f"  {'.'.join(str(p) for p in e['loc']) or '(whole input)'}: {e['msg']}"
        for e in exc.errors()
    )


def _span(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except SimError as exc:
        raise typer.BadParameter(str(exc), param_hint="--duration") from None


def _fault_plan(path: Path | None) -> FaultSpec:
    from firmware_sim.faults import FaultSpec

    if path is None:
        return FaultSpec()
    try:
        return FaultSpec.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot read {path}: {exc.strerror}", param_hint="--faults"
        ) from None
    except ValidationError as exc:
        raise typer.BadParameter(
            f"{path} is not a fault plan:\n{_validation_lines(exc)}", param_hint="--faults"
        ) from None


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


@app.command("generate")
def generate_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="output directory")],
    devices: Devices = 100,
    days: Annotated[int, typer.Option("--days", "-d", min=1, help="simulated days")] = 30,
    accounts: Accounts = None,
    seed: Seed = 42,
    start: Start = None,
    interval_s: Annotated[int, typer.Option("--interval-s", help="seconds between readings")] = 60,
    truth_dir: Annotated[
        Path | None, typer.Option("--truth-dir", help="ground truth (default OUT/ground_truth)")
    ] = None,
    compression: Annotated[
        str, typer.Option("--compression", help="none|zstd|lz4|snappy")
    ] = "none",
    writer_thread: Annotated[
        bool,
        typer.Option(
            "--writer-thread/--no-writer-thread",
            help="encode Parquet on a second thread while the next day is simulated",
        ),
    ] = True,
    wear_acceleration: Annotated[
        float, typer.Option("--wear-acceleration", help="multiply wear (more failures)")
    ] = 1.0,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace earlier output")] = False,
) -> None:
    """Simulate DEVICES for DAYS and write telemetry, usage, exports and ground truth."""
    from firmware_sim.generate import generate

    if compression not in ("none", "zstd", "lz4", "snappy"):
        raise typer.BadParameter(f"unknown compression {compression!r}")
    config = _config(
        devices=devices,
        days=days,
        accounts=accounts,
        seed=seed,
        start=day_option(start, "--start"),
        interval_s=interval_s,
        wear_acceleration=wear_acceleration,
    )
    console = Console(stderr=True)
    per_day = config.devices * config.steps_per_day
    with _progress(console) as progress:
        task = progress.add_task("simulating days", total=config.days, rate="")

        def on_day(done: int, total: int) -> None:
            elapsed = progress.tasks[task].elapsed or 1e-9
            progress.update(
                task, completed=done, rate=f"{done * per_day / elapsed / 1e6:.2f} M readings/s"
            )

        try:
            result = generate(
                config,
                out,
                truth_dir=truth_dir,
                overwrite=overwrite,
                compression=compression,  # type: ignore[arg-type]
                writer_thread=writer_thread,
                progress=on_day,
            )
        except SimError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None
    counts = result.manifest["counts"]
    console.print(
        f"wrote {result.readings:,} readings ({result.values:,} values) "
        f"in {result.files} telemetry files to {out}"
    )
    console.print(json.dumps(counts))


@app.command("run")
def run_cmd(
    broker: Annotated[
        list[str], typer.Option("--broker", "-b", help="broker URL (repeat for failover)")
    ] = ["mqtt://127.0.0.1:1883"],  # noqa: B006 - typer reads the default, never mutates it
    devices: Devices = 10,
    accounts: Accounts = None,
    speed: Annotated[
        float,
        typer.Option(
            "--speed",
            "-x",
            min=0.0,
            help="simulated seconds per wall second (0: as fast as possible)",
        ),
    ] = 1.0,
    duration: Annotated[
        str, typer.Option("--duration", "-t", help="simulated span: 90s, 15m, 2h, 7d")
    ] = "10m",
    seed: Seed = 42,
    start: Start = None,
    interval_s: Annotated[int, typer.Option("--interval-s", help="seconds between readings")] = 60,
    queue_dir: Annotated[
        Path, typer.Option("--queue-dir", help="durable SDK queues, one folder per device")
    ] = Path(".fleetcare-sim/queues"),
    truth_dir: Annotated[
        Path, typer.Option("--truth-dir", help="ground truth and fault log")
    ] = Path(".fleetcare-sim/ground_truth"),
    topic_root: Annotated[str, typer.Option("--topic-root")] = "fleetcare",
    faults: Annotated[
        Path | None, typer.Option("--faults", help="fault plan (JSON, see docs/simulator.md)")
    ] = None,
    wear_acceleration: Annotated[float, typer.Option("--wear-acceleration")] = 1.0,
    shard: Annotated[
        str,
        typer.Option(
            "--shard",
            help="INDEX/COUNT: publish only devices with index % COUNT == "
            "INDEX (one process per shard for fleets above ~180 devices)",
        ),
    ] = "0/1",
    flush_timeout_s: Annotated[
        float,
        typer.Option(
            "--flush-timeout",
            min=0.0,
            help="seconds to wait at the end for the broker to take what the devices "
            "still hold; the rest stays in --queue-dir for the next run",
        ),
    ] = 60.0,
) -> None:
    """Drive DEVICES through the device SDK in real or accelerated time."""
    from device_sdk import SdkError
    from firmware_sim.live import LiveOptions, run_live
    from fleetcare.cli.waiting import stop_signals_interrupt

    span = _span(duration)
    try:
        index, count = (int(x) for x in shard.split("/"))
    except ValueError:
        raise typer.BadParameter(f"--shard must be INDEX/COUNT, got {shard!r}") from None
    if not 0 <= index < count:
        raise typer.BadParameter(f"--shard {shard}: need 0 <= INDEX < COUNT")
    days = max(1, -(-int(span.total_seconds()) // 86_400))
    config = _config(
        devices=devices,
        days=days,
        accounts=accounts,
        seed=seed,
        start=day_option(start, "--start"),
        interval_s=interval_s,
        wear_acceleration=wear_acceleration,
    )
    spec = _fault_plan(faults)
    options = LiveOptions(
        broker_urls=tuple(broker),
        queue_dir=queue_dir,
        truth_dir=truth_dir,
        topic_root=topic_root,
        speed=speed,
        duration_s=span.total_seconds(),
        faults=spec,
        real_start=start is None,
        shard=(index, count),
        flush_timeout_s=flush_timeout_s,
    )
    console = Console(stderr=True)
    total_steps = int(span.total_seconds() // interval_s)
    with _progress(console) as progress:
        task = progress.add_task("simulated steps", total=total_steps, rate="")

        def on_step(done: int, readings: int) -> None:
            elapsed = progress.tasks[task].elapsed or 1e-9
            progress.update(task, completed=done, rate=f"{readings / elapsed:,.0f} readings/s")

        try:
            with stop_signals_interrupt():
                report = run_live(config, options, progress=on_step)
        except (SimError, SdkError) as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            console.print(
                f"stopped before the end of the span; what the devices had not sent stays "
                f"queued in {queue_dir} and goes out on the next run with the same --queue-dir"
            )
            raise typer.Exit(130) from None
    if report.undelivered:
        console.print(
            f"[yellow]{report.undelivered:,} messages were not taken by the broker within "
            f"{flush_timeout_s:g} s[/yellow] (no subscriber on {topic_root}/v1/#, or the broker "
            f"unreachable); they stay queued in {queue_dir} and go out on the next run "
            "with the same --queue-dir"
        )
    console.print(json.dumps(report.summary()))
