"""The ingest: MQTT to the database at the speed of COPY, exactly once, nothing lost.

Device messages (``telemetry``, ``usage``, ``events``, ``state``; see ``device_sdk.wire``)
arrive on persistent MQTT subscriptions (plain for one worker, partitioned by device for
several), are checked against the wire contract, written in batches with binary COPY (or
multi-row INSERT on a server without COPY FROM STDIN), and acknowledged to the broker only
after their batch commits.
Invalid input goes to ``dead_letters``. ``docs/ingest.md`` describes the design.

Modules, one job each:

* :mod:`~backend.ingest.receiver`: the paho client (persistent session, manual acks).
* :mod:`~backend.ingest.device_partition`: which worker writes which device.
* :mod:`~backend.ingest.pending`: the bounded window between receiving and writing.
* :mod:`~backend.ingest.decode` / :mod:`~backend.ingest.prepare`: the checks, the rows.
* :mod:`~backend.ingest.resolver`: device and metric caches.
* :mod:`~backend.ingest.writer`: one batch, one transaction.
* :mod:`~backend.ingest.row_insert` / :mod:`~backend.ingest.server_traits`: the INSERT path
  and what the database server can do.
* :mod:`~backend.ingest.liveness`: last seen, online/offline events.
* :mod:`~backend.ingest.service` / :mod:`~backend.ingest.supervisor`: one worker, N workers.
* :mod:`~backend.ingest.metrics`, :mod:`~backend.ingest.dlq`, :mod:`~backend.ingest.cli`.
* :mod:`~backend.ingest.loadgen`: a synthetic fleet publishing wire batches (tests,
  benchmarks).
* :mod:`~backend.ingest.demo` / :mod:`~backend.ingest.demo_fleet`: the ``fleetcare demo``
  step (the simulator's fleet through the device SDK).
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
