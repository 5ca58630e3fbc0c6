"""Import source-system exports (CSV or JSON) and upsert single records.

Every row is either stored (``source_records``, upserted on ``(source, source_id)``) and
resolved to an account, or reported with its row number and the reason it was refused:
nothing is dropped silently. A refused row changes nothing in the database.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from psycopg import Connection
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from backend.customers.errors import ImportFileError, InvalidRecordError
from backend.customers.golden import refresh_account
from backend.customers.identity import Decision, Thresholds, load_index, resolve_records
from backend.customers.records import Source, SourceAccount, parse_record

MAX_FILE_BYTES = 200 * 1024 * 1024


class RejectedRow(BaseModel):
    """A row that was not imported: its number in the file (header = row 1 for CSV, first
    record = row 1 for JSON) and why."""

    row: int
    reason: str


class ImportReport(BaseModel):
    source: Source
    rows: int
    imported: int
    rejected: list[RejectedRow]
    matched_existing: int
    new_accounts: int
    in_review: int


def read_rows(path: Path) -> list[tuple[int, Any]]:
    """``(row number, raw row)`` pairs of a CSV or JSON file.

    Raises:
        ImportFileError: the file is too large, not UTF-8, or not a table of records.
    """
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ImportFileError(f"{path} is larger than {MAX_FILE_BYTES // 2**20} MiB")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"{path} is not UTF-8: {exc}") from None
    suffix = path.suffix.casefold()
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ImportFileError(f"{path} is not valid JSON: {exc}") from None
        if isinstance(data, dict) and isinstance(data.get("records"), list):
            data = data["records"]
        if not isinstance(data, list):
            raise ImportFileError(f"{path}: expected a JSON list of records")
        return list(enumerate(data, start=1))
    if suffix == ".csv":
        # strict: a quote left open would otherwise swallow the rest of the file into one
        # value and import it as a single row.
        reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
        rows: list[tuple[int, Any]] = []
        try:
            if not reader.fieldnames:
                raise ImportFileError(f"{path} has no header row")
            for number, row in enumerate(reader, start=2):
                if None in row:
                    rows.append((number, {"__error__": "more values than header columns"}))
                else:
                    rows.append((number, row))
        except csv.Error as exc:
            raise ImportFileError(
                f"{path} is not valid CSV near line {reader.line_num + 1}: {exc}; nothing imported"
            ) from None
        return rows
    raise ImportFileError(f"{path}: unknown format {suffix!r} (use .csv or .json)")


def store_record(
    conn: Connection[Any], record: SourceAccount, raw: dict[str, Any], batch: str
) -> None:
    conn.execute(
        "INSERT INTO source_records (source, source_id, payload, import_batch) "
        "VALUES (%s, %s, %s, %s) ON CONFLICT (source, source_id) DO UPDATE SET "
        "payload = EXCLUDED.payload, import_batch = EXCLUDED.import_batch, imported_at = now()",
        (record.source, record.source_id, Jsonb(raw), batch),
    )


def import_rows(
    conn: Connection[Any],
    source: Source,
    rows: list[tuple[int, Any]],
    *,
    batch: str,
    thresholds: Thresholds,
    actor: str,
) -> ImportReport:
    """Validate, store and resolve ``rows``; refused rows are listed, the others imported."""
    rejected: list[RejectedRow] = []
    accepted: list[tuple[SourceAccount, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    for number, raw in rows:
        try:
            if isinstance(raw, dict) and "__error__" in raw:
                raise InvalidRecordError(str(raw["__error__"]))
            record = parse_record(source, raw)
            if record.source_id in seen:
                raise InvalidRecordError(
                    f"id {record.source_id!r} already on row {seen[record.source_id]}"
                )
        except InvalidRecordError as exc:
            rejected.append(RejectedRow(row=number, reason=exc.reason))
            continue
        seen[record.source_id] = number
        accepted.append((record, raw))
    known_before = _known_ids(conn, source, [r.source_id for r, _ in accepted])
    for record, raw in accepted:
        store_record(conn, record, raw, batch)
    decisions = resolve_records(
        conn, [r for r, _ in accepted], thresholds=thresholds, actor=actor, index=load_index(conn)
    )
    _refresh(conn, decisions)
    fresh = [d for d in decisions if d.source_id not in known_before]
    return ImportReport(
        source=source,
        rows=len(rows),
        imported=len(accepted),
        rejected=rejected,
        matched_existing=sum(
            1 for d in fresh if d.status == "matched" and not d.evidence.get("new_account")
        ),
        new_accounts=sum(1 for d in fresh if d.evidence.get("new_account")),
        in_review=sum(1 for d in decisions if d.status == "review"),
    )


def _known_ids(conn: Connection[Any], source: Source, ids: list[str]) -> set[str]:
    rows = conn.execute(
        "SELECT source_id FROM account_identities WHERE source = %s AND source_id = ANY(%s) "
        "AND superseded_at IS NULL",
        (source, ids),
    ).fetchall()
    return {row[0] for row in rows}


def _refresh(conn: Connection[Any], decisions: list[Decision]) -> None:
    for account_id in sorted({d.account_id for d in decisions if d.account_id is not None}):
        refresh_account(conn, account_id)


def import_file(
    conn: Connection[Any],
    path: Path,
    source: Source,
    *,
    thresholds: Thresholds,
    actor: str = "import",
) -> ImportReport:
    """Import a CSV or JSON export of ``source`` (see :func:`import_rows`)."""
    rows = read_rows(path)
    return import_rows(conn, source, rows, batch=f"{path.name}", thresholds=thresholds, actor=actor)


def upsert_record(
    conn: Connection[Any],
    source: Source,
    raw: dict[str, Any],
    *,
    thresholds: Thresholds,
    actor: str,
) -> Decision:
    """Store one record (new or changed) and resolve it; the API's upsert.

    Raises:
        InvalidRecordError: the record lacks an id or a name, or a value does not parse.
    """
    record = parse_record(source, raw)
    store_record(conn, record, raw, batch="api")
    (decision,) = resolve_records(conn, [record], thresholds=thresholds, actor=actor)
    if decision.account_id is not None:
        refresh_account(conn, decision.account_id)
    return decision
