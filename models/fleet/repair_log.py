"""A field-service repair log: which failure mode each breakdown turned out to be.

A controller's trip code points at a failure mode only loosely; the technician who repaired
the machine knows. A CSV export of the field-service system gives the fleet models those
diagnoses for breakdowns that no care ticket covered:

```
device_id,failed_at,mode,repaired_at
cp-000012,2026-03-04T06:10:00Z,bearing_wear,2026-03-05T14:00:00Z
```

``repaired_at`` is optional (empty: the device is back in service with its next reading).
Times carry their offset. The file is read strictly: a malformed row refuses the whole
file with the line and the reason, so that nothing is half used.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from models.errors import DataSetError

COLUMNS = ("device_id", "failed_at", "mode", "repaired_at")
_REQUIRED = COLUMNS[:3]
#: A failure mode's name, as the fleet models and care rules spell it.
MODE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
#: Problems listed before the rest are summed up.
_SHOWN_PROBLEMS = 10


class RepairRecord(BaseModel):
    """One diagnosed breakdown."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    device_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
    failed_at: AwareDatetime
    mode: Annotated[str, Field(pattern=MODE_PATTERN)]
    repaired_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _repaired_after_failing(self) -> RepairRecord:
        if self.repaired_at is not None and self.repaired_at < self.failed_at:
            raise ValueError("repaired_at is before failed_at")
        return self


def _problem(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def read_repair_log(path: Path) -> list[RepairRecord]:
    """Every record of the CSV file at ``path``.

    Raises:
        DataSetError: the file cannot be read, lacks a required column, is not valid CSV,
            or has rows that are not valid records (each named by its line; nothing is
            returned then).
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataSetError(str(path), f"cannot read the repair log: {exc}") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    try:
        header = tuple(reader.fieldnames or ())
        wrong = [
            f"{what}: {', '.join(columns)}"
            for what, columns in (
                ("missing", [c for c in _REQUIRED if c not in header]),
                ("unknown", [c for c in header if c not in COLUMNS]),
            )
            if columns
        ]
        if wrong:
            raise DataSetError(
                str(path),
                f"repair log columns must be {', '.join(COLUMNS)} (repaired_at optional); "
                + "; ".join(wrong),
            )
        records: list[RepairRecord] = []
        problems: list[str] = []
        for row in reader:
            line = reader.line_num
            if None in row or any(value is None for value in row.values()):
                problems.append(f"line {line}: {len(header)} fields expected")
                continue
            fields = {k: v.strip() for k, v in row.items() if k is not None}
            if not fields.get("repaired_at"):
                fields.pop("repaired_at", None)
            try:
                records.append(RepairRecord.model_validate(fields))
            except ValidationError as exc:
                problems.append(f"line {line}: {_problem(exc)}")
    except csv.Error as exc:
        raise DataSetError(
            str(path), f"not valid CSV near line {reader.reader.line_num}: {exc}; nothing used"
        ) from exc
    if problems:
        more = len(problems) - _SHOWN_PROBLEMS
        shown = problems[:_SHOWN_PROBLEMS] + ([f"... and {more} more"] if more > 0 else [])
        raise DataSetError(
            str(path),
            f"{len(problems)} invalid row(s) in the repair log, nothing used:\n" + "\n".join(shown),
        )
    return records
