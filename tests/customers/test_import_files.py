"""Reading an import file: malformed files are refused whole, with where and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.customers.errors import ImportFileError
from backend.customers.importer import read_rows


def test_a_quote_left_open_refuses_the_file_instead_of_swallowing_its_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "crm.csv"
    path.write_text('id,name\n1,"Acme\n2,Borealis\n3,Cobalt\n', encoding="utf-8")
    with pytest.raises(ImportFileError, match=r"not valid CSV near line \d+: .*nothing imported"):
        read_rows(path)


def test_a_stray_character_after_a_quote_refuses_the_file(tmp_path: Path) -> None:
    path = tmp_path / "crm.csv"
    path.write_text('id,name\n1,"Acme"x\n', encoding="utf-8")
    with pytest.raises(ImportFileError, match="not valid CSV near line 2"):
        read_rows(path)


def test_a_well_formed_file_reads_every_row_with_its_line_number(tmp_path: Path) -> None:
    path = tmp_path / "crm.csv"
    path.write_text('id,name\n1,"Acme, Inc."\n2,"Line\nbreak"\n3,Cobalt,extra\n', "utf-8")
    assert read_rows(path) == [
        (2, {"id": "1", "name": "Acme, Inc."}),
        (3, {"id": "2", "name": "Line\nbreak"}),
        (4, {"__error__": "more values than header columns"}),
    ]
