"""``fleetcare models report``: Markdown with PNG plots from benchmark results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from models.errors import DataSetError
from models.rul.report import cmapss_section
from models.tabular.report import ai4i_section


def _read_result(path: Path, command: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """The JSON a ``benchmark`` command wrote, or a :class:`DataSetError` saying why not."""
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataSetError(str(path), f"cannot read it ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataSetError(str(path), f"not JSON ({exc})") from None
    missing = [k for k in keys if not isinstance(result, dict) or k not in result]
    if missing:
        raise DataSetError(str(path), f"not a `{command}` result (no {', '.join(missing)})")
    return result  # type: ignore[no-any-return]


def write_report(
    out: Path,
    cmapss_json: Path | None,
    ai4i_json: Path | None,
    sim_json: Path | None = None,
) -> Path:
    """Write ``report.md`` and its plots into ``out``; sections only for the results given."""
    out.mkdir(parents=True, exist_ok=True)
    lines = ["# fleetcare models report", ""]
    if cmapss_json is not None:
        keys = ("subset", "summary", "seeds", "rmse", "score", "true", "predicted")
        lines += cmapss_section(_read_result(cmapss_json, "benchmark cmapss", keys), out)
    if ai4i_json is not None:
        result = _read_result(
            ai4i_json, "benchmark ai4i", ("results", "label", "oof_probability", "mode_confusion")
        )
        lines += ai4i_section(result, out)
    if sim_json is not None:
        from models.fleet.benchmark import SimBenchmarkResult
        from models.fleet.report import sim_section

        raw = _read_result(sim_json, "benchmark sim", ("config", "types"))
        try:
            sim = SimBenchmarkResult.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise DataSetError(
                str(sim_json), f"not a `benchmark sim` result ({where}: {first['msg']})"
            ) from None
        lines += sim_section(sim, out)
    path = out / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
