"""Per-account export of everything held, and erasure of the personal data.

Erasure keeps the account row (so devices, telemetry and history stay consistent) under a
pseudonym: personal fields are cleared, source-record payloads are replaced by a marker,
identity evidence and site names are scrubbed, device serial numbers (the link between
telemetry and the customer's own records) become pseudonyms, and then every text and JSON
column of every table is swept for the values that were removed. The erasure is logged in
``audit_log`` without the values themselves.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from psycopg import Connection, sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from backend.customers.errors import AccountNotFoundError, AlreadyErasedError
from backend.customers.records import PERSONAL_FIELDS, parse_record

MIN_SWEEP_LENGTH = 4
ERASED = "[erased]"

# table -> the column that links it to the account, for the export.
ACCOUNT_TABLES = (
    "contracts",
    "orders",
    "account_outcomes",
    "sites",
    "devices",
    "health_scores",
    "account_segments",
    "tickets",
    "service_tickets",
    "alerts",
    "account_nps",
)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _rows(
    conn: Connection[Any], query: sql.SQL | sql.Composed, params: tuple[Any, ...]
) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return [_jsonable(dict(row)) for row in cur.fetchall()]


def _account(conn: Connection[Any], account_id: int) -> dict[str, Any]:
    rows = _rows(conn, sql.SQL("SELECT * FROM accounts WHERE id = %s"), (account_id,))
    if not rows:
        raise AccountNotFoundError(account_id)
    return rows[0]


def export_account(conn: Connection[Any], account_id: int) -> dict[str, Any]:
    """Everything held about the account, as JSON-ready data."""
    account = _account(conn, account_id)
    data: dict[str, Any] = {"account": account}
    data["identities"] = _rows(
        conn,
        sql.SQL("SELECT * FROM account_identities WHERE account_id = %s ORDER BY id"),
        (account_id,),
    )
    data["source_records"] = _rows(
        conn,
        sql.SQL(
            "SELECT r.* FROM source_records r WHERE EXISTS (SELECT 1 FROM account_identities i "
            "WHERE i.account_id = %s AND i.source = r.source AND i.source_id = r.source_id) "
            "ORDER BY r.id"
        ),
        (account_id,),
    )
    for table in ACCOUNT_TABLES:
        data[table] = _rows(
            conn,
            sql.SQL("SELECT * FROM {} WHERE account_id = %s ORDER BY id").format(
                sql.Identifier(table)
            ),
            (account_id,),
        )
    data["audit_log"] = _rows(
        conn,
        sql.SQL(
            "SELECT * FROM audit_log WHERE subject_kind = 'account' AND subject_id = %s ORDER BY id"
        ),
        (str(account_id),),
    )
    return data


def _personal_values(conn: Connection[Any], account_id: int) -> set[str]:
    values: set[str] = set()
    row = conn.execute(
        "SELECT customer_key, name, domain, address FROM accounts WHERE id = %s", (account_id,)
    ).fetchone()
    if row is not None:
        values.update(str(v) for v in row if v)
    for source, payload in conn.execute(
        "SELECT r.source, r.payload FROM source_records r JOIN account_identities i "
        "ON i.source = r.source AND i.source_id = r.source_id WHERE i.account_id = %s",
        (account_id,),
    ).fetchall():
        record = parse_record(source, payload)
        values.update(str(getattr(record, f)) for f in PERSONAL_FIELDS if getattr(record, f))
        for key in (
            "website",
            "email_domain",
            "phone",
            "vat_id",
            "account_name",
            "legal_name",
            "org_name",
        ):
            if payload.get(key):
                values.add(str(payload[key]))
    for name, address in conn.execute(
        "SELECT name, address FROM sites WHERE account_id = %s", (account_id,)
    ).fetchall():
        values.update(str(v) for v in (name, address) if v)
    for (serial,) in conn.execute(
        "SELECT serial_number FROM devices WHERE account_id = %s AND serial_number IS NOT NULL",
        (account_id,),
    ).fetchall():
        values.add(str(serial))
    return {v for v in values if len(v) >= MIN_SWEEP_LENGTH}


def pseudonym(kind: str, ident: object) -> str:
    digest = hashlib.sha256(f"{kind}:{ident}".encode()).hexdigest()[:16]
    return f"{kind}-{digest}"


def _text_columns(conn: Connection[Any]) -> list[tuple[str, str, str]]:
    rows = conn.execute(
        "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c "
        "JOIN information_schema.tables t ON t.table_schema = c.table_schema "
        "AND t.table_name = c.table_name WHERE c.table_schema = current_schema() "
        "AND t.table_type = 'BASE TABLE' AND c.data_type IN "
        "('text', 'character varying', 'character', 'jsonb', 'json') "
        "AND NOT EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class k ON k.oid = i.inhrelid "
        "WHERE k.relname = c.table_name) ORDER BY 1, 2"
    ).fetchall()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def sweep(conn: Connection[Any], values: set[str]) -> int:
    """Replace every occurrence of ``values`` in every text/JSON column; rows changed.

    One statement per column (longest values replaced first, so that a value containing
    another is removed whole).
    """
    if not values:
        return 0
    ordered = sorted(values, key=len, reverse=True)
    patterns = [
        "%" + v.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%" for v in ordered
    ]
    changed = 0
    for table, column, kind in _text_columns(conn):
        ident = sql.Identifier(column)
        expr: sql.Composable = sql.SQL("{}::text").format(ident)
        params: list[Any] = []
        for value in ordered:
            expr = sql.SQL("replace({}, %s, %s)").format(expr)
            params += [value, ERASED]
        cast = sql.SQL(
            "::" + ("jsonb" if kind == "jsonb" else "json" if kind == "json" else "text")
        )
        cur = conn.execute(
            sql.SQL("UPDATE {} SET {} = ({}){} WHERE {}::text LIKE ANY(%s)").format(
                sql.Identifier(table), ident, expr, cast, ident
            ),
            [*params, patterns],
        )
        changed += cur.rowcount
    return changed


def erase_account(conn: Connection[Any], account_id: int, *, actor: str) -> dict[str, int]:
    """Remove the account's personal data everywhere; returns what was changed, by kind.

    Raises:
        AccountNotFoundError: no such account.
        AlreadyErasedError: the account was erased before.
    """
    account = _account(conn, account_id)
    if account["status"] == "erased":
        raise AlreadyErasedError(account_id)
    values = _personal_values(conn, account_id)
    alias = pseudonym("erased", account_id)
    counts: dict[str, int] = {}
    counts["source_records"] = conn.execute(
        "UPDATE source_records r SET payload = jsonb_build_object('erased', true, 'source_id', "
        "r.source_id) WHERE EXISTS (SELECT 1 FROM account_identities i WHERE i.account_id = %s "
        "AND i.source = r.source AND i.source_id = r.source_id)",
        (account_id,),
    ).rowcount
    counts["identities"] = conn.execute(
        "UPDATE account_identities SET evidence = '{\"erased\": true}' WHERE account_id = %s",
        (account_id,),
    ).rowcount
    counts["sites"] = conn.execute(
        "UPDATE sites SET name = 'site-' || id, address = NULL, latitude = NULL, longitude = NULL "
        "WHERE account_id = %s",
        (account_id,),
    ).rowcount
    counts["devices"] = conn.execute(
        "UPDATE devices SET serial_number = CASE WHEN serial_number IS NULL THEN NULL "
        "ELSE 'serial-' || substr(md5(serial_number || id::text), 1, 16) END WHERE account_id = %s",
        (account_id,),
    ).rowcount
    counts["notes"] = conn.execute(
        "UPDATE account_outcomes SET notes = NULL WHERE account_id = %s", (account_id,)
    ).rowcount
    conn.execute(
        "UPDATE accounts SET customer_key = %s, name = %s, domain = NULL, address = NULL, "
        "status = 'erased', erased_at = now(), updated_at = now() WHERE id = %s",
        (alias, alias, account_id),
    )
    counts["swept"] = sweep(conn, values)
    conn.execute(
        "INSERT INTO audit_log (actor, action, subject_kind, subject_id, detail) "
        "VALUES (%s, 'account.erase', 'account', %s, %s)",
        (actor, str(account_id), Jsonb({"pseudonym": alias, **counts})),
    )
    return counts
