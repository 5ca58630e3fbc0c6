"""The soak's verdicts, as pure functions of what was sampled and counted.

Each check returns a :class:`CheckResult` (name, pass/fail, the numbers behind it), so the
report can show why a check failed and the tests can feed synthetic samples.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str
    numbers: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredCounts:
    """What the telemetry table holds for the soak's fleet."""

    rows: int
    distinct_readings: int
    """Distinct ``(device_id, seq)`` pairs."""


def reconcile_readings(sent: int, stored: StoredCounts) -> CheckResult:
    """Readings handed to the device SDK == distinct readings stored == rows stored."""
    lost = sent - stored.distinct_readings
    duplicated = stored.rows - stored.distinct_readings
    passed = lost == 0 and duplicated == 0 and sent > 0
    detail = (
        f"sent {sent:,}, stored {stored.rows:,} rows, {stored.distinct_readings:,} distinct; "
        f"lost {lost:,}, duplicated {duplicated:,}"
    )
    if sent == 0:
        detail += " (nothing was sent: the soak did not run)"
    return CheckResult(
        "readings: none lost, none duplicated",
        passed,
        detail,
        {"sent": sent, "stored_rows": stored.rows, "lost": lost, "duplicated": duplicated},
    )


@dataclass(frozen=True)
class FlatnessRule:
    """When a process's memory counts as flat.

    Over the judged window (after warm-up and after the process's last start), both the
    least-squares rise across the window and the change between the medians of its first
    and last quarters must stay within ``max(abs_tolerance_mib, rel_tolerance × median)``.
    """

    abs_tolerance_mib: float = 8.0
    rel_tolerance: float = 0.10
    min_samples: int = 8


@dataclass(frozen=True)
class Flatness:
    role: str
    samples: int
    median_mib: float
    fitted_rise_mib: float
    quarter_change_mib: float
    tolerance_mib: float
    passed: bool
    judged: bool


def fitted_rise(times: Sequence[float], values: Sequence[float]) -> float:
    """Least-squares slope × the span of ``times`` (what the trend adds across the window)."""
    n = len(times)
    if n < 2:
        return 0.0
    mean_t = sum(times) / n
    mean_v = sum(values) / n
    var_t = sum((t - mean_t) ** 2 for t in times)
    if var_t == 0:
        return 0.0
    slope = sum((t - mean_t) * (v - mean_v) for t, v in zip(times, values, strict=True)) / var_t
    return slope * (times[-1] - times[0])


def judge_flatness(
    role: str,
    times: Sequence[float],
    rss_mib: Sequence[float],
    window_start: float,
    rule: FlatnessRule | None = None,
) -> Flatness:
    """Judge one process's RSS samples taken at or after ``window_start``."""
    rule = rule or FlatnessRule()
    window = [(t, v) for t, v in zip(times, rss_mib, strict=True) if t >= window_start]
    if len(window) < rule.min_samples:
        median = statistics.median(v for _, v in window) if window else 0.0
        return Flatness(role, len(window), median, 0.0, 0.0, 0.0, True, False)
    ts = [t for t, _ in window]
    vs = [v for _, v in window]
    median = statistics.median(vs)
    quarter = max(2, len(vs) // 4)
    change = statistics.median(vs[-quarter:]) - statistics.median(vs[:quarter])
    rise = fitted_rise(ts, vs)
    tolerance = max(rule.abs_tolerance_mib, rule.rel_tolerance * median)
    passed = rise <= tolerance and change <= tolerance
    return Flatness(role, len(vs), median, rise, change, tolerance, passed, True)


def memory_check(results: Sequence[Flatness]) -> CheckResult:
    judged = [r for r in results if r.judged]
    failed = [r for r in judged if not r.passed]
    parts = [
        f"{r.role}: {r.median_mib:.0f} MiB, rise {r.fitted_rise_mib:+.1f}, "
        f"quartiles {r.quarter_change_mib:+.1f} (≤ {r.tolerance_mib:.1f})"
        + ("" if r.passed else " FAIL")
        for r in judged
    ]
    unjudged = [r.role for r in results if not r.judged]
    if unjudged:
        parts.append("too few samples to judge: " + ", ".join(unjudged))
    return CheckResult(
        "memory flat in every process",
        bool(judged) and not failed,
        "; ".join(parts) or "no process sampled",
        {"processes_judged": len(judged), "processes_failed": len(failed)},
    )


def ticket_check(duplicate_open_groups: int, tickets: int, predictions_at_risk: int) -> CheckResult:
    """No two live tickets for one (device, failure mode); and tickets did appear."""
    passed = duplicate_open_groups == 0 and tickets > 0
    detail = (
        f"{tickets} tickets from {predictions_at_risk} at-risk predictions; "
        f"{duplicate_open_groups} (device, mode) pairs with more than one live ticket"
    )
    if tickets == 0:
        detail += " (no ticket was raised: nothing was tested)"
    return CheckResult(
        "no ticket duplicated",
        passed,
        detail,
        {"tickets": tickets, "duplicate_groups": duplicate_open_groups},
    )


@dataclass(frozen=True)
class WebhookLedger:
    """Outbox rows (key → delivered?) against what the receiver saw (key → receipts)."""

    outbox: Mapping[str, bool]
    received: Mapping[str, int]
    bad_signatures: int


def webhook_check(ledger: WebhookLedger) -> CheckResult:
    """Every outbox row delivered; every key received (duplicates dropped by key); every
    signature valid; nothing received that the outbox does not hold."""
    undelivered = sorted(k for k, done in ledger.outbox.items() if not done)
    missing = sorted(k for k in ledger.outbox if ledger.received.get(k, 0) == 0)
    unknown = sorted(k for k in ledger.received if k not in ledger.outbox)
    redelivered = sum(max(0, n - 1) for n in ledger.received.values())
    passed = (
        not undelivered
        and not missing
        and not unknown
        and ledger.bad_signatures == 0
        and len(ledger.outbox) > 0
    )
    detail = (
        f"{len(ledger.outbox)} notifications, {len(ledger.outbox) - len(undelivered)} delivered, "
        f"{len(ledger.outbox) - len(missing)} received; missing {len(missing)}, unknown "
        f"{len(unknown)}, bad signatures {ledger.bad_signatures}, redeliveries dropped by key "
        f"{redelivered}"
    )
    if missing:
        detail += f" (first missing: {missing[0]})"
    if not ledger.outbox:
        detail += " (no notification was queued: nothing was tested)"
    return CheckResult(
        "every webhook delivered, exactly once by key",
        passed,
        detail,
        {
            "notifications": len(ledger.outbox),
            "missing": len(missing),
            "undelivered": len(undelivered),
            "redelivered": redelivered,
        },
    )


@dataclass(frozen=True)
class DownlinkLedger:
    """What the API accepted from the operator against what the database holds at the end.

    Attributes:
        configs_sent: per device, the last desired version the API accepted and what the
            device must report for it (``applied`` or ``rejected``).
        twins: per device the operator configured, ``(desired_version, reported_version,
            reported_status)`` as stored.
        commands_accepted: ids of the commands the API accepted.
        command_status: every command row in the database, id → status.
    """

    configs_sent: Mapping[int, tuple[int, str]]
    twins: Mapping[int, tuple[int, int, str | None]]
    commands_accepted: Sequence[str]
    command_status: Mapping[str, str]
    refused: int = 0
    replayed: int = 0


def downlink_check(ledger: DownlinkLedger) -> CheckResult:
    """Every desired version the database took was reported back with the status the
    firmware owes it; every command the database holds was answered ``ok``; the commands
    stored are exactly those the API accepted (none lost, none its client never heard of,
    retries included); and both kinds were exercised."""
    missing_twins = sorted(
        d for d, (version, _) in ledger.configs_sent.items()
        if d not in ledger.twins or ledger.twins[d][0] < version
    )  # fmt: skip
    behind = sorted(d for d, (desired, reported, _) in ledger.twins.items() if reported < desired)
    wrong = sorted(
        d for d, (version, expect) in ledger.configs_sent.items()
        if d in ledger.twins and ledger.twins[d][:2] == (version, version)
        and ledger.twins[d][2] != expect
    )  # fmt: skip
    missing_commands = sorted(c for c in ledger.commands_accepted if c not in ledger.command_status)
    unheard_of = sorted(set(ledger.command_status) - set(ledger.commands_accepted))
    by_status: dict[str, int] = {}
    for status in ledger.command_status.values():
        by_status[status] = by_status.get(status, 0) + 1
    not_ok = len(ledger.command_status) - by_status.get("ok", 0)
    passed = (
        not missing_twins
        and not behind
        and not wrong
        and not missing_commands
        and not unheard_of
        and not_ok == 0
        and len(ledger.configs_sent) > 0
        and len(ledger.commands_accepted) > 0
    )
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())) or "none"
    detail = (
        f"configs: {len(ledger.configs_sent)} devices configured, {len(behind)} not reported "
        f"back, {len(wrong)} with the wrong status, {len(missing_twins)} lost; commands: "
        f"{len(ledger.commands_accepted)} accepted, {len(ledger.command_status)} stored "
        f"({statuses}), {len(missing_commands)} lost, {len(unheard_of)} queued unbeknown "
        f"to the operator; {ledger.refused} requests not accepted and sent again "
        f"({ledger.replayed} commands found queued already)"
    )
    if behind:
        detail += f" (first device behind: {behind[0]})"
    if not ledger.configs_sent or not ledger.commands_accepted:
        detail += " (the operator got nothing through: nothing was tested)"
    return CheckResult(
        "downlink: every config and command reached its device and came back",
        passed,
        detail,
        {
            "devices_configured": len(ledger.configs_sent),
            "configs_behind": len(behind),
            "configs_wrong_status": len(wrong),
            "configs_lost": len(missing_twins),
            "commands_accepted": len(ledger.commands_accepted),
            "commands_not_ok": not_ok,
            "commands_lost": len(missing_commands),
            "commands_unheard_of": len(unheard_of),
            "refused": ledger.refused,
            "replayed": ledger.replayed,
        },
    )
