"""Remote configuration through the gateway's device twin (protocol section 9).

The backend publishes the desired site configuration, retained, on
``{root}/v1/{gateway_id}/config/desired``::

    {"v":1,"version":7,"config":{"mqtt_devices":["pump-1"],"modbus":[{...register map...}]}}

The gateway validates ``config`` as a :class:`~gateway.config.SiteConfig` **before** touching
anything. Invalid: nothing changes and ``config/reported`` says ``rejected`` with the
problems, each named by its key (``config.modbus[0].registers[1].data_type: ...``). Valid:
it is applied; if applying fails the previous site is restored (rollback) and the report
is ``rejected`` with the error. Applied: the report is ``applied`` with the running site,
and the version and site are saved in ``{data_dir}/site.json`` so a restart runs them.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

import orjson

from device_sdk.wire import (
    Channel,
    DesiredConfig,
    PayloadError,
    ReportedConfig,
    ReportStatus,
    build_topic,
    decode_model,
    encode_model,
)
from gateway.clock import now_ms
from gateway.config import SiteConfig, validate_model
from gateway.errors import GatewayConfigError
from gateway.metrics import GatewayMetrics
from gateway.site import SiteRunner

__all__ = ["SavedSite", "Twin", "load_saved_site"]

_log = logging.getLogger("gateway.twin")

SITE_FILE = "site.json"


class SavedSite:
    def __init__(self, version: int, site: SiteConfig) -> None:
        self.version = version
        self.site = site


def load_saved_site(data_dir: Path) -> SavedSite | None:
    """The last site applied from the backend, if any (an unreadable file is ignored)."""
    path = data_dir / SITE_FILE
    try:
        doc = orjson.loads(path.read_bytes())
        return SavedSite(int(doc["version"]), SiteConfig.model_validate(doc["site"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        _log.warning("ignoring %s: %s", path, exc)
        return None


class Twin:
    def __init__(
        self,
        gateway_id: str,
        topic_root: str,
        data_dir: Path,
        runner: SiteRunner,
        metrics: GatewayMetrics,
        publish_reported: Callable[[str, bytes], None],
        applied_version: int | None = None,
    ) -> None:
        self.gateway_id = gateway_id
        self.data_dir = data_dir
        self.runner = runner
        self.metrics = metrics
        self.publish_reported = publish_reported
        self.reported_topic = build_topic(gateway_id, Channel.CONFIG_REPORTED, topic_root)
        self.applied_version = applied_version
        self.last_report: ReportedConfig | None = None
        self._seen_this_run: set[int] = set()
        self._lock = asyncio.Lock()

    async def handle(self, payload: bytes) -> ReportedConfig | None:
        """Validate, apply (or refuse) and report one desired configuration."""
        async with self._lock:
            return await self._handle(payload)

    async def _handle(self, payload: bytes) -> ReportedConfig | None:
        try:
            desired = decode_model(payload, DesiredConfig)
        except PayloadError as exc:
            _log.warning("ignoring an invalid desired configuration: %s", exc)
            return None
        if desired.version in self._seen_this_run:
            return None  # the retained message again after a reconnect
        self._seen_this_run.add(desired.version)
        try:
            site = validate_model(SiteConfig, desired.config, "config/desired", prefix="config")
        except GatewayConfigError as exc:
            return self._report_rejected(desired.version, exc)
        try:
            await self.runner.apply(site)
            await asyncio.to_thread(self._save, desired.version, site)
        except Exception as exc:  # rolled back by the runner; reported, not hidden
            return self._report_rejected(desired.version, exc, rolled_back=True)
        self.applied_version = desired.version
        self.metrics.add("config_applied")
        _log.info("applied site configuration version %d", desired.version)
        return self._report(
            ReportedConfig(
                v=1,
                device=self.gateway_id,
                version=desired.version,
                status=ReportStatus.APPLIED,
                config=site.model_dump(mode="json"),
                t=now_ms(),
            )
        )

    def _report_rejected(
        self, version: int, exc: Exception, *, rolled_back: bool = False
    ) -> ReportedConfig:
        self.metrics.add("config_rejected")
        running = self.applied_version
        keeps = f"still running version {running}" if running is not None else "site unchanged"
        prefix = "apply failed, rolled back" if rolled_back else "refused"
        reason = f"{prefix} ({keeps}): {exc}"
        _log.warning("desired configuration version %d %s", version, reason)
        return self._report(
            ReportedConfig(
                v=1,
                device=self.gateway_id,
                version=version,
                status=ReportStatus.REJECTED,
                error=reason[:1024],
                t=now_ms(),
            )
        )

    def _report(self, report: ReportedConfig) -> ReportedConfig:
        self.last_report = report
        self.publish_reported(self.reported_topic, encode_model(report))
        return report

    def _save(self, version: int, site: SiteConfig) -> None:
        doc = orjson.dumps({"version": version, "site": site.model_dump(mode="json")})
        tmp = self.data_dir / (SITE_FILE + ".tmp")
        with open(tmp, "wb") as handle:
            handle.write(doc)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.data_dir / SITE_FILE)
