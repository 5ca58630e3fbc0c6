"""Provision data sources, the folder and the dashboards on a running Grafana, idempotently.

Each object is looked up by its uid first: created when missing, updated when it differs,
left alone when it is the same, so a second push changes nothing. Goes through
``grafana-client`` (Grafana's HTTP API with a service-account token).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException
from niquests.exceptions import RequestException

from dashboards.catalog import all_dashboards
from dashboards.datasources import postgres_datasource, prometheus_datasource
from fleetcare.errors import FleetcareError

__all__ = ["FOLDER_TITLE", "FOLDER_UID", "PushError", "PushResult", "push"]

FOLDER_UID = "fleetcare"
FOLDER_TITLE = "fleetcare"
Action = Literal["created", "updated", "unchanged"]
# Fields of a stored data source that a definition sets (the password is write-only).
_DATASOURCE_FIELDS = ("name", "type", "access", "url", "user", "isDefault")
# Fields Grafana adds to a stored dashboard.
_SERVER_FIELDS = ("id", "version")


class PushError(FleetcareError):
    """Grafana refused a request or could not be reached; carries the HTTP status (0: none)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class PushResult:
    """What one push did to one object."""

    kind: Literal["datasource", "folder", "dashboard"]
    uid: str
    action: Action


def _send(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """One API call (grafana-client's methods are untyped)."""
    return call(*args, **kwargs)


def _get(call: Callable[..., Any], *args: Any) -> dict[str, Any] | None:
    """The object, or ``None`` on 404."""
    try:
        found = call(*args)
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return None
        raise PushError(
            f"Grafana refused the request (HTTP {exc.status_code}): {exc.message}",
            exc.status_code,
        ) from None
    return dict(found) if isinstance(found, Mapping) else None


def _same_datasource(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    for key in _DATASOURCE_FIELDS:
        if key in wanted and stored.get(key) != wanted[key]:
            return False
    stored_json = stored.get("jsonData") or {}
    return all(stored_json.get(k) == v for k, v in wanted.get("jsonData", {}).items())


def _push_datasource(api: GrafanaApi, wanted: dict[str, Any]) -> PushResult:
    uid = str(wanted["uid"])
    stored = _get(api.datasource.get_datasource_by_uid, uid)
    if stored is None:
        _send(api.datasource.create_datasource, wanted)
        return PushResult("datasource", uid, "created")
    if _same_datasource(stored, wanted):
        return PushResult("datasource", uid, "unchanged")
    _send(api.datasource.update_datasource_by_uid, uid, wanted)
    return PushResult("datasource", uid, "updated")


def _push_folder(api: GrafanaApi) -> PushResult:
    stored = _get(api.folder.get_folder, FOLDER_UID)
    if stored is None:
        _send(api.folder.create_folder, FOLDER_TITLE, uid=FOLDER_UID)
        return PushResult("folder", FOLDER_UID, "created")
    if stored.get("title") == FOLDER_TITLE:
        return PushResult("folder", FOLDER_UID, "unchanged")
    _send(api.folder.update_folder, FOLDER_UID, title=FOLDER_TITLE, overwrite=True)
    return PushResult("folder", FOLDER_UID, "updated")


def _without_server_fields(model: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in model.items() if k not in _SERVER_FIELDS}


def _push_dashboard(api: GrafanaApi, model: dict[str, Any]) -> PushResult:
    uid = str(model["uid"])
    stored = _get(api.dashboard.get_dashboard, uid)
    if stored is not None:
        same_model = _without_server_fields(stored.get("dashboard", {})) == (
            _without_server_fields(model)
        )
        same_folder = stored.get("meta", {}).get("folderUid") == FOLDER_UID
        if same_model and same_folder:
            return PushResult("dashboard", uid, "unchanged")
    _send(
        api.dashboard.update_dashboard,
        {
            "dashboard": {**model, "id": None},
            "folderUid": FOLDER_UID,
            "overwrite": stored is not None,
            "message": "fleetcare dashboards push",
        },
    )
    return PushResult("dashboard", uid, "created" if stored is None else "updated")


def push(
    grafana_url: str,
    token: str,
    *,
    database_url: str,
    prometheus_url: str,
    timescaledb: bool = True,
    timeout_s: float = 10.0,
) -> list[PushResult]:
    """Provision both data sources, the ``fleetcare`` folder and every dashboard.

    Raises:
        PushError: Grafana is unreachable or refused a request (nothing is rolled back;
            pushing again after fixing the cause completes the work).
        ValueError: a URL is malformed.
    """
    datasources = [
        postgres_datasource(database_url, timescaledb=timescaledb),
        prometheus_datasource(prometheus_url),
    ]
    api = GrafanaApi.from_url(grafana_url, credential=token, timeout=timeout_s)
    try:
        return _push_all(api, datasources, (d.render() for d in all_dashboards()))
    except PushError:
        raise
    except GrafanaException as exc:
        status = f" (HTTP {exc.status_code})" if exc.status_code else ""
        raise PushError(
            f"Grafana at {grafana_url}{status}: {exc.message}", exc.status_code
        ) from None
    except RequestException as exc:
        raise PushError(f"Grafana at {grafana_url} unreachable: {exc}") from None


def _push_all(
    api: GrafanaApi, datasources: list[dict[str, Any]], models: Iterable[dict[str, Any]]
) -> list[PushResult]:
    results = [_push_datasource(api, wanted) for wanted in datasources]
    results.append(_push_folder(api))
    results.extend(_push_dashboard(api, model) for model in models)
    return results
