"""One shard of the soak's simulated fleet: ``python -m benchmarks.soak.fleet_shard JOB``.

JOB is JSON (the fleet, the broker, the span, the fault plan, the shard). Runs the
simulator's live mode (every device a real ``device_sdk`` client with a durable queue) and
prints its report, one JSON line on stdout, when the span is done and the queues flushed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from firmware_sim.config import SimConfig
from firmware_sim.faults import FaultSpec
from firmware_sim.live import LiveOptions, run_live


def run_shard(job: dict[str, object]) -> int:
    fleet = job["fleet"]
    assert isinstance(fleet, dict)
    workdir = Path(str(job["workdir"]))
    shard, shards = int(str(job["shard"])), int(str(job["shards"]))
    span_s = float(str(job["span_s"]))
    options = LiveOptions(
        broker_urls=(str(job["broker_url"]),),
        queue_dir=workdir / "queues",
        truth_dir=workdir / f"truth-{shard}",
        topic_root=str(job["topic_root"]),
        speed=float(fleet["speed"]),
        duration_s=span_s,
        faults=FaultSpec.model_validate(job["faults"]),
        shard=(shard, shards),
        flush_timeout_s=float(str(job["flush_timeout_s"])),
    )
    config = SimConfig(
        seed=int(fleet["seed"]),
        devices=int(fleet["devices"]),
        accounts=int(fleet["accounts"]),
        interval_s=int(fleet["interval_s"]),
        wear_acceleration=float(fleet["wear_acceleration"]),
        days=max(1, int(span_s // 86_400) + 2),
    )
    report = run_live(config, options)
    print(json.dumps(report.summary()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_shard(json.loads(sys.argv[1])))
