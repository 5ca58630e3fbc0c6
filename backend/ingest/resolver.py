"""Caches from external ids to database ids: devices, and each model's metric positions.

Devices are looked up in bulk for a batch (one query for every id missing or expired),
trusted for ``device_cache_ttl_s`` and bounded in number (least recently used first out).
An unknown device is remembered as unknown for ``unknown_retry_s`` so that a stream from an
unregistered device costs one query per few seconds, not one per message.

Metric names: every model's catalogue (``device_model_metrics``: metric name → position in
a reading's value array) is small and read at once; a name or model not found triggers a
re-read (at most once per ``unknown_retry_s``). A model whose catalogue is empty learns it
from its first message (:meth:`Resolver.learn_catalogue`).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from backend.storage.dialect import Connection

DECOMMISSIONED = "decommissioned"


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What ingest needs to know about a registered device."""

    id: int
    external_id: str
    model_id: int
    status: str


@dataclass
class _Catalogue:
    by_model: dict[int, dict[str, int]] = field(default_factory=dict)
    read_at: float = float("-inf")


class Resolver:
    """Device and metric lookups with caches (one per worker; not thread-safe)."""

    def __init__(
        self,
        device_ttl_s: float = 30.0,
        max_devices: int = 200_000,
        unknown_retry_s: float = 5.0,
        catalogue_ttl_s: float = 60.0,
    ) -> None:
        self.device_ttl_s = device_ttl_s
        self.max_devices = max_devices
        self.unknown_retry_s = unknown_retry_s
        self.catalogue_ttl_s = catalogue_ttl_s
        self._devices: OrderedDict[str, tuple[DeviceInfo | None, float]] = OrderedDict()
        self._catalogue = _Catalogue()
        self.device_queries = 0
        self.catalogue_reads = 0
        self.learned = 0

    # -- devices ---------------------------------------------------------------------------

    def devices(self, conn: Connection, refs: Iterable[str]) -> dict[str, DeviceInfo | None]:
        """Each of ``refs`` with its device (``None``: not registered)."""
        now = time.monotonic()
        found: dict[str, DeviceInfo | None] = {}
        missing: list[str] = []
        cache = self._devices
        for ref in set(refs):
            hit = cache.get(ref)
            if hit is not None and hit[1] > now:
                found[ref] = hit[0]
                cache.move_to_end(ref)
            else:
                missing.append(ref)
        if missing:
            self.device_queries += 1
            rows = conn.execute(
                "SELECT external_id, id, model_id, status FROM devices WHERE external_id = ANY(%s)",
                (missing,),
            ).fetchall()
            fetched = {
                str(ext): DeviceInfo(int(str(i)), str(ext), int(str(m)), str(s))
                for ext, i, m, s in rows
            }
            for ref in missing:
                info = fetched.get(ref)
                ttl = self.device_ttl_s if info is not None else self.unknown_retry_s
                cache[ref] = (info, now + ttl)
                cache.move_to_end(ref)
                found[ref] = info
            while len(cache) > self.max_devices:
                cache.popitem(last=False)
        return found

    def forget_device(self, ref: str) -> None:
        self._devices.pop(ref, None)

    # -- metrics ---------------------------------------------------------------------------

    def _read_catalogue(self, conn: Connection) -> None:
        self.catalogue_reads += 1
        catalogue = _Catalogue(read_at=time.monotonic())
        for (model_id,) in conn.execute("SELECT id FROM device_models"):
            catalogue.by_model[int(str(model_id))] = {}
        for model_id, name, position in conn.execute(
            "SELECT dmm.model_id, m.name, dmm.position FROM device_model_metrics dmm "
            "JOIN metrics m ON m.id = dmm.metric_id"
        ):
            catalogue.by_model.setdefault(int(str(model_id)), {})[str(name)] = int(str(position))
        self._catalogue = catalogue

    def positions(self, conn: Connection, model_id: int) -> dict[str, int]:
        """Metric name → position (1-based) for model ``model_id``; empty: no catalogue yet."""
        catalogue = self._catalogue
        now = time.monotonic()
        if now - catalogue.read_at > self.catalogue_ttl_s or (
            model_id not in catalogue.by_model and now - catalogue.read_at > self.unknown_retry_s
        ):
            self._read_catalogue(conn)
        return self._catalogue.by_model.get(model_id, {})

    def reread_after_miss(self, conn: Connection) -> bool:
        """Re-read the catalogue after a name was not found, unless it was read just now.

        Returns whether it was re-read (so that the caller looks the name up again).
        """
        if time.monotonic() - self._catalogue.read_at <= self.unknown_retry_s:
            return False
        self._read_catalogue(conn)
        return True

    def learn_catalogue(self, conn: Connection, model_id: int, names: list[str]) -> None:
        """Make ``names`` (in this order) the catalogue of a model that has none yet.

        Takes the same lock as ``backend.storage.catalogue.ensure_device_model``; does nothing
        when the model got a catalogue meanwhile. The catalogue is then re-read.
        """
        with conn.transaction():
            conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('fleetcare.catalogue'), %s)", (model_id,)
            )
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO metrics (name) VALUES (%s) ON CONFLICT (name) DO NOTHING",
                    [(name,) for name in names],
                )
            conn.execute(
                "INSERT INTO device_model_metrics (model_id, metric_id, position) "
                "SELECT %(model)s, m.id, n.position FROM unnest(%(names)s::text[]) "
                "WITH ORDINALITY AS n(name, position) JOIN metrics m ON m.name = n.name "
                "WHERE NOT EXISTS (SELECT 1 FROM device_model_metrics WHERE model_id = %(model)s)",
                {"model": model_id, "names": names},
            )
        self.learned += 1
        self._read_catalogue(conn)
