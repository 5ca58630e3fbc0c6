"""Export of everything held about an account, and erasure that leaves nothing personal."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
import pytest
from psycopg import sql

from backend.customers.errors import AlreadyErasedError
from backend.customers.health_job import recompute
from backend.customers.health_weights import load_weights
from backend.customers.privacy import erase_account, export_account
from backend.customers.quality import take_snapshot
from backend.customers.simload import true_account_map

pytestmark = [pytest.mark.services, pytest.mark.slow]


def _text_columns(conn: psycopg.Connection) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT c.table_name, c.column_name FROM information_schema.columns c "
        "JOIN information_schema.tables t USING (table_schema, table_name) "
        "WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' "
        "AND c.data_type IN ('text', 'character varying', 'character', 'jsonb', 'json')"
    ).fetchall()


def _occurrences(conn: psycopg.Connection, values: set[str]) -> list[tuple[str, str, str]]:
    found = []
    for table, column in _text_columns(conn):
        for value in values:
            hit = conn.execute(
                sql.SQL("SELECT 1 FROM {} WHERE {}::text LIKE %s LIMIT 1").format(
                    sql.Identifier(table), sql.Identifier(column)
                ),
                ("%" + value + "%",),
            ).fetchone()
            if hit:
                found.append((table, column, value))
    return found


def test_erasure_leaves_no_personal_value_anywhere(
    loaded: psycopg.Connection, sim_dir: Path
) -> None:
    conn = loaded
    recompute(conn, load_weights(), at=datetime(2025, 9, 1, tzinfo=UTC))
    take_snapshot(conn)
    accounts = pq.read_table(sim_dir / "ground_truth" / "accounts.parquet").to_pylist()
    victim = next(
        a for a in accounts if a["account_id"] == "acct-00015"
    )  # has a planted name conflict
    account_id = true_account_map(conn, sim_dir)[victim["account_id"]]
    conn.execute(
        "INSERT INTO audit_log (actor, action, subject_kind, subject_id, detail) VALUES "
        "('csm', 'note', 'account', %s, %s)",
        (str(account_id), json.dumps({"text": f"called {victim['name']} about renewal"})),
    )
    personal = {
        victim["name"],
        victim["legal_name"],
        victim["domain"],
        victim["phone"],
        victim["vat_id"],
    }
    personal |= {
        r[0] for r in conn.execute("SELECT name FROM sites WHERE account_id = %s", (account_id,))
    }
    personal |= {
        r[0]
        for r in conn.execute(
            "SELECT serial_number FROM devices WHERE account_id = %s", (account_id,)
        )
    }
    before = _occurrences(conn, personal)
    assert {t for t, _, _ in before} >= {"accounts", "source_records", "sites", "devices"}

    exported = export_account(conn, account_id)
    assert exported["account"]["name"] == victim["name"]
    assert {r["source"] for r in exported["source_records"]} == {"crm", "erp", "service"}
    assert exported["devices"] and exported["health_scores"] and exported["service_tickets"]
    json.dumps(exported)

    counts = erase_account(conn, account_id, actor="dpo")
    assert counts["source_records"] >= 3
    assert _occurrences(conn, personal) == []
    account = conn.execute(
        "SELECT status, name FROM accounts WHERE id = %s", (account_id,)
    ).fetchone()
    assert account is not None and account[0] == "erased" and account[1].startswith("erased-")
    # telemetry links survive under pseudonyms: the devices still belong to the account
    assert (
        conn.execute(
            "SELECT count(*) FROM devices WHERE account_id = %s", (account_id,)
        ).fetchone()[0]
        > 0
    )
    logged = conn.execute(
        "SELECT actor, detail FROM audit_log WHERE action = 'account.erase' AND subject_id = %s",
        (str(account_id),),
    ).fetchone()
    assert logged is not None and logged[0] == "dpo"
    with pytest.raises(AlreadyErasedError):
        erase_account(conn, account_id, actor="dpo")
