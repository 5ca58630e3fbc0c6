"""The repair log: diagnosed breakdowns from the field-service system, read strictly."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from models.errors import DataSetError
from models.fleet.repair_log import read_repair_log


def _log(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "repairs.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_records_are_read_with_their_offsets_and_an_optional_repair_time(tmp_path: Path) -> None:
    path = _log(
        tmp_path,
        "device_id,failed_at,mode,repaired_at\n"
        "cp-000012,2026-03-04T06:10:00Z,bearing_wear,2026-03-05T14:00:00+00:00\n"
        "ac-7,2026-03-06T10:00:00+02:00,inlet_filter_clog,\n",
    )
    first, second = read_repair_log(path)
    assert first.device_id == "cp-000012" and first.mode == "bearing_wear"
    assert first.failed_at == datetime(2026, 3, 4, 6, 10, tzinfo=UTC)
    assert first.repaired_at == datetime(2026, 3, 5, 14, tzinfo=UTC)
    assert second.failed_at == datetime(2026, 3, 6, 8, tzinfo=UTC)
    assert second.repaired_at is None


def test_the_repair_time_column_may_be_left_out(tmp_path: Path) -> None:
    path = _log(tmp_path, "mode,device_id,failed_at\nseal_leak,cp-1,2026-01-01T00:00:00Z\n")
    (record,) = read_repair_log(path)
    assert record.mode == "seal_leak" and record.repaired_at is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("device_id,mode\ncp-1,x\n", "missing: failed_at"),
        ("device_id,failed_at,mode,notes\n", "unknown: notes"),
        (
            "device_id,failed_at,mode\ncp-1,2026-01-01T00:00:00,seal_leak\n",
            "line 2: failed_at: Input should have timezone info",
        ),
        (
            "device_id,failed_at,mode\ncp 1,2026-01-01T00:00:00Z,seal_leak\n",
            "line 2: device_id: String should match pattern",
        ),
        (
            "device_id,failed_at,mode\ncp-1,2026-01-01T00:00:00Z,Seal Leak\n",
            "line 2: mode: String should match pattern",
        ),
        (
            "device_id,failed_at,mode,repaired_at\n"
            "cp-1,2026-01-02T00:00:00Z,seal_leak,2026-01-01T00:00:00Z\n",
            "line 2: Value error, repaired_at is before failed_at",
        ),
        ("device_id,failed_at,mode\ncp-1,2026-01-01T00:00:00Z\n", "line 2: 3 fields expected"),
        (
            'device_id,failed_at,mode\ncp-1,2026-01-01T00:00:00Z,"seal_leak\n',
            "not valid CSV near line 2",
        ),
    ],
)
def test_a_bad_file_is_refused_whole_with_the_line_and_the_reason(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = _log(tmp_path, text)
    with pytest.raises(DataSetError) as caught:
        read_repair_log(path)
    assert expected in str(caught.value)


def test_many_bad_rows_are_summed_up_after_the_first_ten(tmp_path: Path) -> None:
    rows = "".join(f"cp-{n},never,seal_leak\n" for n in range(25))
    path = _log(tmp_path, "device_id,failed_at,mode\n" + rows + "cp-ok,2026-01-01T00:00:00Z,x\n")
    with pytest.raises(DataSetError) as caught:
        read_repair_log(path)
    message = str(caught.value)
    assert "25 invalid row(s) in the repair log, nothing used" in message
    assert "line 11:" in message and "line 12:" not in message
    assert "... and 15 more" in message


def test_a_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataSetError, match="cannot read the repair log"):
        read_repair_log(tmp_path / "absent.csv")
