"""Memory by mapping: a fixed-size shared cache filling up is not a process's own memory."""

from __future__ import annotations

import subprocess
import sys

import psutil
import pytest

from benchmarks.soak.processes import private_and_shared_mib

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/PID/smaps")

# Touches 48 MiB of a shared anonymous mapping (as a PostgreSQL backend touches shared
# buffers), then 24 MiB of its own heap, reporting each step on stdout.
CHILD = """
import mmap, sys
shared = mmap.mmap(-1, 48 << 20, flags=mmap.MAP_SHARED)
print("ready", flush=True); sys.stdin.readline()
for offset in range(0, 48 << 20, 4096):
    shared[offset] = 1
print("shared", flush=True); sys.stdin.readline()
heap = bytearray(24 << 20)
for offset in range(0, 24 << 20, 4096):
    heap[offset] = 1
print("heap", flush=True); sys.stdin.readline()
"""


def test_pages_of_a_shared_mapping_count_as_shared_even_when_one_process_touched_them() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdin is not None and child.stdout is not None
        process = psutil.Process(child.pid)
        samples: dict[str, tuple[float, float]] = {}
        for step in ("ready", "shared", "heap"):
            assert child.stdout.readline().strip() == step
            samples[step] = private_and_shared_mib(process)
            uss = process.memory_full_info().uss / 2**20
            samples[f"{step}-uss"] = (uss, 0.0)
            child.stdin.write("\n")
            child.stdin.flush()
        child.wait(10)
    private_rise = samples["shared"][0] - samples["ready"][0]
    shared_rise = samples["shared"][1] - samples["ready"][1]
    uss_rise = samples["shared-uss"][0] - samples["ready-uss"][0]
    assert uss_rise > 40  # the kernel's USS counts them: the measure this replaces
    assert private_rise < 4
    assert 44 < shared_rise < 52
    heap_rise = samples["heap"][0] - samples["shared"][0]
    assert 20 < heap_rise < 30  # the process's own memory is still seen
