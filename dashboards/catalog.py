"""Every dashboard fleetcare ships, and writing or checking their generated JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from dashboards.customer_health import customer_health
from dashboards.device_detail import device_detail
from dashboards.field_service import field_service
from dashboards.fleet_operations import fleet_operations
from dashboards.model import Dashboard

__all__ = ["GENERATED_DIR", "all_dashboards", "build", "render_json", "stale_files"]

GENERATED_DIR = Path(__file__).resolve().parent / "generated"
BUILDERS: tuple[Callable[[], Dashboard], ...] = (
    fleet_operations,
    customer_health,
    field_service,
    device_detail,
)


def all_dashboards() -> list[Dashboard]:
    return [builder() for builder in BUILDERS]


def file_name(dashboard: Dashboard) -> str:
    return f"{dashboard.uid.removeprefix('fleetcare-')}.json"


def render_json(dashboard: Dashboard) -> str:
    """The file content: sorted keys, two-space indent, a final newline (stable diffs)."""
    return json.dumps(dashboard.render(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _expected() -> dict[str, str]:
    return {file_name(d): render_json(d) for d in all_dashboards()}


def _generated_here(directory: Path) -> set[str]:
    """Names of the JSON files in ``directory`` that are fleetcare dashboards (a uid starting
    with ``fleetcare-``): the only files regeneration may remove. Other JSON files (a
    ``--out`` pointed at a folder of the user's) are left alone."""
    if not directory.is_dir():
        return set()
    names = set()
    for path in directory.glob("*.json"):
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        if isinstance(content, dict) and str(content.get("uid", "")).startswith("fleetcare-"):
            names.add(path.name)
    return names


def stale_files(directory: Path = GENERATED_DIR) -> list[str]:
    """Files that regeneration would change, add or remove (empty: up to date)."""
    expected = _expected()
    present = _generated_here(directory)
    stale = sorted(present - set(expected))
    for name, content in expected.items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != content:
            stale.append(name)
    return sorted(stale)


def build(directory: Path = GENERATED_DIR) -> list[Path]:
    """Write every dashboard's JSON into ``directory``, removing generated dashboards that
    fleetcare no longer ships."""
    directory.mkdir(parents=True, exist_ok=True)
    expected = _expected()
    for name in _generated_here(directory) - set(expected):
        (directory / name).unlink()
    written = []
    for name, content in expected.items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != content:
            path.write_text(content, encoding="utf-8")
        written.append(path)
    return written
