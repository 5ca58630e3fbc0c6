"""The ingest: MQTT to the database at the speed of COPY, exactly once, nothing lost.

Device messages (``telemetry``, ``usage``, ``events``, ``state``; see ``device_sdk.wire``)
arrive on an MQTT 5 shared subscription, are checked against the wire contract, written in
batches with binary COPY, and acknowledged to the broker only after their batch commits.
Invalid input goes to ``dead_letters``. ``docs/ingest.md`` describes the design.

Modules, one job each:

* :mod:`~backend.ingest.receiver`: the paho client (persistent session, manual acks).
* :mod:`~backend.ingest.pending`: the bounded window between receiving and writing.
* :mod:`~backend.ingest.decode` / :mod:`~backend.ingest.prepare`: the checks, the rows.
* :mod:`~backend.ingest.resolver`: device and metric caches.
* :mod:`~backend.ingest.writer`: one batch, one transaction.
* :mod:`~backend.ingest.liveness`: last seen, online/offline events.
* :mod:`~backend.ingest.service` / :mod:`~backend.ingest.supervisor`: one worker, N workers.
* :mod:`~backend.ingest.metrics`, :mod:`~backend.ingest.dlq`, :mod:`~backend.ingest.cli`.
* :mod:`~backend.ingest.loadgen`: a simulated fleet publishing wire batches (demo, tests,
  benchmarks).
"""

from backend.ingest.errors import BrokerProtocolError, IngestError, NotMigratedError
from backend.ingest.reasons import Reason
from backend.ingest.service import IngestWorker, WorkerTarget
from backend.ingest.settings import IngestSettings

__all__ = [
    "BrokerProtocolError",
    "IngestError",
    "IngestSettings",
    "IngestWorker",
    "NotMigratedError",
    "Reason",
    "WorkerTarget",
]
