"""Resident memory of every process of the soak, by role, from the process tree."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping

import psutil

from fleetcare.cli.up import BACKEND_SERVICES


def role_of_up_child(cmdline: Iterable[str]) -> str | None:
    """The service a ``fleetcare up`` child runs, from the sub-command ending its command line."""
    argv = list(cmdline)
    for service in BACKEND_SERVICES:
        width = len(service.command)
        if tuple(argv[-width:]) == service.command:
            return service.name
    return None


def up_children(up_pid: int) -> dict[str, psutil.Process]:
    """The live service processes of one ``fleetcare up``, by role."""
    try:
        children = psutil.Process(up_pid).children()
    except psutil.Error:
        return {}
    found: dict[str, psutil.Process] = {}
    for child in children:
        try:
            role = role_of_up_child(child.cmdline())
        except psutil.Error:
            continue
        if role is not None:
            found[role] = child
    return found


def tree_rss_mib(process: psutil.Process) -> float:
    """RSS of a process and its descendants (a server's workers included), in MiB."""
    total = 0
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0.0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            continue
    return total / 2**20


def private_and_shared_mib(process: psutil.Process) -> tuple[float, float]:
    """(USS, PSS − USS) of a process tree in MiB: its private memory, and its share of the
    pages it maps in common (for PostgreSQL, the shared buffers: a cache of fixed size,
    ``shared_buffers``, that fills as the tables grow)."""
    uss = pss = 0
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0.0, 0.0
    for member in members:
        try:
            info = member.memory_full_info()
        except psutil.Error:
            continue
        uss += info.uss
        pss += info.pss
    return uss / 2**20, max(0, pss - uss) / 2**20


def sample_rss(
    roots: Mapping[str, int | None], up_pid: int | None, pss_roles: frozenset[str] = frozenset()
) -> dict[str, tuple[int, float]]:
    """``{role: (pid, MiB)}`` for named root pids and for the children of ``fleetcare up``:
    RSS of each tree; for ``pss_roles`` the private memory (USS) of the tree, and its shared
    pages under ``{role}-shared``."""
    out: dict[str, tuple[int, float]] = {}
    for role, pid in roots.items():
        if pid is None:
            continue
        try:
            process = psutil.Process(pid)
        except psutil.Error:
            continue
        if role in pss_roles:
            private, shared = private_and_shared_mib(process)
            out[role] = (pid, private)
            out[f"{role}-shared"] = (pid, shared)
        else:
            out[role] = (pid, tree_rss_mib(process))
    if up_pid is not None:
        with contextlib.suppress(psutil.Error):
            out["up"] = (up_pid, psutil.Process(up_pid).memory_info().rss / 2**20)
        for role, process in up_children(up_pid).items():
            out[role] = (process.pid, tree_rss_mib(process))
    return out
