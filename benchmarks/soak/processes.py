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


def _smaps_private_and_shared_kib(pid: int) -> tuple[int, int] | None:
    """(private, shared) KiB of one process from ``/proc/PID/smaps``, split by mapping.

    *private*: pages of its private mappings (heap, stack, copy-on-write data) that no other
    process maps. *shared*: its proportional share (PSS) of its shared mappings (``sh`` in
    ``VmFlags``): for PostgreSQL the shared buffers and WAL buffers. A page of a shared
    mapping that only this process has touched counts as "private" in the kernel's USS, so a
    backend's USS grows as it touches buffers no other process has mapped yet (a fixed-size
    cache filling), which is not the process's own memory growing. ``None`` where smaps is not
    readable.
    """
    private = shared = 0
    block_private = block_pss = 0
    try:
        with open(f"/proc/{pid}/smaps", encoding="ascii", errors="replace") as smaps:
            for line in smaps:
                key, _, rest = line.partition(":")
                if key in ("Private_Clean", "Private_Dirty"):
                    block_private += int(rest.split()[0])
                elif key == "Pss":
                    block_pss = int(rest.split()[0])
                elif key == "VmFlags":  # the last line of each mapping's block
                    if "sh" in rest.split():
                        shared += block_pss
                    else:
                        private += block_private
                    block_private = block_pss = 0
    except (OSError, ValueError, IndexError):
        return None
    return private, shared


def private_and_shared_mib(process: psutil.Process) -> tuple[float, float]:
    """(private, shared) memory of a process tree in MiB: its own memory, and its share of
    the memory its processes map in common (for PostgreSQL the shared buffers: a cache of
    fixed size, ``shared_buffers``, that fills as the tables grow); see
    :func:`_smaps_private_and_shared_kib`. Without ``/proc/PID/smaps`` (not Linux): psutil's
    USS and PSS − USS."""
    private = shared = 0.0
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0.0, 0.0
    for member in members:
        split = _smaps_private_and_shared_kib(member.pid)
        if split is not None:
            private += split[0] * 1024
            shared += split[1] * 1024
            continue
        try:
            info = member.memory_full_info()
        except psutil.Error:
            continue
        private += info.uss
        shared += max(0, info.pss - info.uss)
    return private / 2**20, shared / 2**20


def sample_rss(
    roots: Mapping[str, int | None], up_pid: int | None, pss_roles: frozenset[str] = frozenset()
) -> dict[str, tuple[int, float]]:
    """``{role: (pid, MiB)}`` for named root pids and for the children of ``fleetcare up``:
    RSS of each tree; for ``pss_roles`` the private memory of the tree's private mappings,
    and its share of its shared mappings under ``{role}-shared``."""
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
