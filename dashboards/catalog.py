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


def stale_files(directory: Path = GENERATED_DIR) -> list[str]:
    """Files that regeneration would change, add or remove (empty: up to date)."""
    expected = _expected()
    present = {p.name for p in directory.glob("*.json")} if directory.is_dir() else set()
    stale = sorted(present - set(expected))
    for name, content in expected.items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != content:
            stale.append(name)
    return sorted(stale)


def build(directory: Path = GENERATED_DIR) -> list[Path]:
    """Write every dashboard's JSON into ``directory``, removing files of no dashboard."""
    directory.mkdir(parents=True, exist_ok=True)
    expected = _expected()
    for path in directory.glob("*.json"):
        if path.name not in expected:
            path.unlink()
    written = []
    for name, content in expected.items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != content:
            path.write_text(content, encoding="utf-8")
        written.append(path)
    return written
