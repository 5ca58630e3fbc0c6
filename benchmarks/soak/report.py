"""``report.md`` with the fault timeline, the checks and three plots (rate, lag, RSS)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from benchmarks.soak.driver import FaultEvent, SoakResult

_COLOURS = {
    "broker_restart": "tab:orange",
    "ingest_kill": "tab:red",
    "database_outage": "tab:purple",
}


def _mark_faults(ax: Any, faults: list[FaultEvent]) -> None:
    for fault in faults:
        if fault.kind.startswith("sim_"):
            end = fault.until_s if fault.until_s is not None else fault.at_s
            ax.axvspan(fault.at_s, end, color="grey", alpha=0.12, lw=0)
        elif fault.kind == "database_outage" and fault.until_s is not None:
            ax.axvspan(fault.at_s, fault.until_s, color=_COLOURS[fault.kind], alpha=0.2, lw=0)
        else:
            ax.axvline(fault.at_s, color=_COLOURS.get(fault.kind, "black"), ls="--", lw=1)


def _legend_handles() -> list[Any]:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    return [
        Line2D([], [], color=_COLOURS["broker_restart"], ls="--", label="broker restart"),
        Line2D([], [], color=_COLOURS["ingest_kill"], ls="--", label="ingest SIGKILL"),
        Patch(color=_COLOURS["database_outage"], alpha=0.2, label="database down"),
        Patch(color="grey", alpha=0.12, label="device links cut"),
    ]


def write_plots(result: SoakResult, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = result.samples
    names = []

    fig, ax = plt.subplots(figsize=(10, 3.6))
    points = [(s.t, s.rate) for s in samples if s.rate is not None]
    ax.plot([t for t, _ in points], [r for _, r in points], lw=1, label="stored readings/s")
    _mark_faults(ax, result.faults)
    ax.axvline(result.options.run_s, color="black", lw=0.8, label="load ends")
    ax.set_xlabel("seconds since the fleet started")
    ax.set_ylabel("readings/s stored")
    ax.legend(handles=[*ax.get_legend_handles_labels()[0], *_legend_handles()], fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "rate.png", dpi=110)
    plt.close(fig)
    names.append("rate.png")

    fig, ax = plt.subplots(figsize=(10, 3.6))
    mean = [(s.t, math.nan if s.lag_mean_s is None else s.lag_mean_s) for s in samples]
    p99 = [
        (s.t, s.lag_p99_s)
        for s in samples
        if s.lag_p99_s is not None and math.isfinite(s.lag_p99_s)
    ]
    ax.plot([t for t, _ in mean], [v for _, v in mean], lw=1, label="mean lag per interval")
    ax.step([t for t, _ in p99], [v for _, v in p99], lw=1, where="mid", label="p99 (bucket bound)")
    ax.set_yscale("log")
    _mark_faults(ax, result.faults)
    ax.set_xlabel("seconds since the fleet started")
    ax.set_ylabel("device send → commit (s)")
    ax.legend(handles=[*ax.get_legend_handles_labels()[0], *_legend_handles()], fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "lag.png", dpi=110)
    plt.close(fig)
    names.append("lag.png")

    fig, ax = plt.subplots(figsize=(10, 4.4))
    roles = sorted({role for s in samples for role in s.rss})
    for role in roles:
        # A gap (the process was down) or a new pid (restarted) breaks the line.
        ts: list[float] = []
        vs: list[float] = []
        last_pid = None
        for s in samples:
            pid = s.rss[role][0] if role in s.rss else None
            if pid is None or (last_pid is not None and pid != last_pid):
                ts.append(s.t)
                vs.append(math.nan)
            if pid is not None:
                ts.append(s.t)
                vs.append(s.rss[role][1])
            last_pid = pid
        ax.plot(ts, vs, lw=1, label=role)
    _mark_faults(ax, result.faults)
    ax.axvline(0.5 * result.options.run_s, color="black", ls=":", lw=0.8)
    ax.set_xlabel("seconds since the fleet started (dotted: memory judged from here)")
    ax.set_ylabel("MiB (RSS; PostgreSQL: private, shared)")
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(out / "rss.png", dpi=110)
    plt.close(fig)
    names.append("rss.png")
    return names


def _fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def render_markdown(result: SoakResult, plots: list[str]) -> str:
    o = result.options
    f = result.figures
    lines = [
        "# Soak report",
        "",
        f"**{'PASSED' if result.passed else 'FAILED'}** — {o.minutes:g} min of load, "
        f"{o.devices} devices ({o.accounts} accounts) at {o.speed:g}× with a reading every "
        f"{o.interval_s} s simulated: {o.devices * o.speed / o.interval_s:,.0f} readings/s "
        f"offered; services under `fleetcare up`: {', '.join(result.services)}.",
        "",
        "## Checks",
        "",
        "| check | result | numbers |",
        "|---|---|---|",
    ]
    for check in result.checks:
        lines.append(
            f"| {check.name} | {'pass' if check.passed else '**FAIL**'} | {check.detail} |"
        )
    lines += [
        "",
        "## Figures",
        "",
        f"* readings handed to the SDK: {f.get('sent', 0):,.0f}; rows stored: "
        f"{f.get('stored_rows', 0):,.0f}; mean stored rate during the load: "
        f"{f.get('mean_rate', 0):,.1f} readings/s",
        f"* end-to-end lag (device send → commit), mean per sampling interval: median "
        f"{_fmt(f.get('lag_mean_median_s'))} s, worst {_fmt(f.get('lag_mean_max_s'))} s "
        "(the worst intervals are the recoveries after the faults)",
        f"* SDK queues at the end: {f.get('undelivered_sdk', 0):.0f} undelivered, "
        f"{f.get('dropped_sdk', 0):.0f} dropped",
        f"* predictions written: {f.get('predictions_at_risk', 0):.0f} at risk, "
        f"{f.get('predictions_low_risk', 0):.0f} low risk "
        f"({f.get('predictions_failed', 0):.0f} attempts failed while the database was down)",
        f"* tickets: {f.get('tickets', 0):.0f}; webhook notifications: "
        f"{f.get('notifications', 0):.0f} ("
        + (", ".join(f"{k} {v}" for k, v in sorted(result.webhook_events.items())) or "none")
        + " received)",
        f"* downlink operator (through the API): {f.get('downlink_configs', 0):.0f} desired "
        f"configs and {f.get('downlink_commands', 0):.0f} self-tests accepted, "
        f"{f.get('downlink_refused', 0):.0f} requests not accepted and sent again "
        f"({f.get('downlink_replayed', 0):.0f} commands found queued already); API commit to "
        "the device's "
        f"answer: configs median {_fmt(f.get('downlink_config_median_s'))} s, p95 "
        f"{_fmt(f.get('downlink_config_p95_s'))} s, max {_fmt(f.get('downlink_config_max_s'))} s"
        f" ({result.slowest.get('config') or 'none'}); commands median "
        f"{_fmt(f.get('downlink_command_median_s'))} s, p95 "
        f"{_fmt(f.get('downlink_command_p95_s'))} s, max "
        f"{_fmt(f.get('downlink_command_max_s'))} s ({result.slowest.get('command') or 'none'})",
        "* simulator faults executed: "
        + (", ".join(f"{k} {v}" for k, v in sorted(result.sim_faults.items())) or "none"),
        "",
        "## Fault timeline",
        "",
        "| at (s) | until (s) | fault | detail |",
        "|---:|---:|---|---|",
    ]
    for fault in sorted(result.faults, key=lambda e: e.at_s):
        lines.append(
            f"| {fault.at_s:.0f} | {_fmt(fault.until_s, 0)} | {fault.kind} | {fault.detail} |"
        )
    lines += ["", "## Memory (judged window)", ""]
    lines += ["| process | samples | median MiB | fitted rise | quartile change | tolerance |"]
    lines += ["|---|---:|---:|---:|---:|---:|"]
    for r in result.flatness:
        lines.append(
            f"| {r.role} | {r.samples} | {r.median_mib:.1f} | {r.fitted_rise_mib:+.1f} | "
            f"{r.quarter_change_mib:+.1f} | {r.tolerance_mib:.1f}"
            + ("" if r.judged else " (not judged: too few samples)")
            + " |"
        )
    lines += ["", "## Plots", ""]
    lines += [f"![{name[:-4]}]({name})" for name in plots]
    return "\n".join(lines) + "\n"


def write_report(result: SoakResult, out: Path) -> Path:
    plots = write_plots(result, out)
    path = out / "report.md"
    path.write_text(render_markdown(result, plots))
    return path
