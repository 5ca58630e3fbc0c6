"""Identity resolution and the quality report against the simulator's planted defects."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from pathlib import Path

import psycopg
import pytest

from backend.customers.identity import Thresholds, accept, reject, revert, review_queue
from backend.customers.importer import import_file
from backend.customers.quality import build_report, take_snapshot

pytestmark = pytest.mark.services
SYSTEMS = {"crm": "crm", "erp": "erp", "servicedesk": "service"}


def _pairs(assign: dict[tuple[str, str], object], keys: list[tuple[str, str]]) -> set[frozenset]:
    groups: dict[object, list[tuple[str, str]]] = defaultdict(list)
    for key in keys:
        groups[assign.get(key, ("alone", key))].append(key)
    return {frozenset(p) for g in groups.values() for p in itertools.combinations(g, 2)}


def _import_all(conn: psycopg.Connection, sim_dir: Path) -> None:
    for source, name in (
        ("crm", "crm_accounts"),
        ("erp", "erp_customers"),
        ("service", "servicedesk_organisations"),
    ):
        report = import_file(
            conn, sim_dir / "exports" / f"{name}.csv", source, thresholds=Thresholds()
        )
        assert report.rejected == []


def test_resolution_recovers_planted_identities(conn: psycopg.Connection, sim_dir: Path) -> None:
    _import_all(conn, sim_dir)
    truth_rows = json.loads((sim_dir / "ground_truth" / "identity_map.json").read_text())
    truth = {(SYSTEMS[r["system"]], r["source_id"]): r["account_id"] for r in truth_rows}
    rows = conn.execute(
        "SELECT source, source_id, account_id FROM account_identities "
        "WHERE superseded_at IS NULL AND status = 'matched'"
    ).fetchall()
    predicted = {(s, i): a for s, i, a in rows}
    for scope in ("crm", None):
        keys = [k for k in truth if scope is None or k[0] == scope]
        true_pairs, found = _pairs(truth, keys), _pairs(predicted, keys)
        precision = len(true_pairs & found) / len(found)
        recall = len(true_pairs & found) / len(true_pairs)
        print(f"identity {scope or 'all sources'}: precision {precision:.3f} recall {recall:.3f}")
        assert precision >= 0.95 and recall >= 0.95


def test_quality_report_counts_planted_conflicts(conn: psycopg.Connection, sim_dir: Path) -> None:
    _import_all(conn, sim_dir)
    planted = json.loads((sim_dir / "ground_truth" / "planted_defects.json").read_text())
    report = take_snapshot(conn)
    print("planted", planted["conflicts_by_field"], "found", report.conflicts_by_field)
    assert report.duplicates_by_source["crm"] == planted["crm_duplicates"]
    found, expected = (
        sum(report.conflicts_by_field.values()),
        sum(planted["conflicts_by_field"].values()),
    )
    assert abs(found - expected) <= 0.1 * expected
    for field, count in planted["conflicts_by_field"].items():
        assert abs(report.conflicts_by_field.get(field, 0) - count) <= max(2, 0.2 * count), field
    missing = {k.split(".", 1)[1]: v for k, v in report.missing_by_field.items()}
    assert missing == planted["missing_by_field"]
    again = take_snapshot(conn)
    assert again.change["conflicts"] == 0
    assert conn.execute("SELECT count(*) FROM data_quality_snapshots").fetchone() == (2,)


def test_bad_rows_reported_and_nothing_lost(conn: psycopg.Connection, tmp_path: Path) -> None:
    path = tmp_path / "crm.csv"
    path.write_text(
        "crm_id,account_name,website,billing_country,renewal_date,annual_contract_value\n"
        "A1,Velford Process,https://www.velford.example,DE,2026-01-01,1000\n"
        ",No Id Ltd,,DE,,\n"
        "A3,Bad Date GmbH,,DE,2026-13-45,\n"
        "A4,Bad Value,,DE,,lots\n"
        "A1,Velford Again,,DE,,\n"
        "A6,Orrstead Foods,orrstead.example,NL,,\n",
        encoding="utf-8",
    )
    report = import_file(conn, path, "crm", thresholds=Thresholds())
    assert report.imported == 2 and report.rows == 6
    assert [(r.row, r.reason.split(" ")[0]) for r in report.rejected] == [
        (3, "missing"),
        (4, "renewal_date"),
        (5, "annual_value"),
        (6, "id"),
    ]
    assert conn.execute("SELECT count(*) FROM accounts").fetchone() == (2,)
    assert conn.execute("SELECT count(*) FROM contracts").fetchone() == (1,)


def test_review_queue_decisions_are_recorded_and_reversible(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    crm = tmp_path / "crm.json"
    crm.write_text(
        json.dumps(
            [
                {
                    "crm_id": "A1",
                    "account_name": "Velford Process",
                    "billing_country": "DE",
                    "industry": "mining",
                },
            ]
        )
    )
    erp = tmp_path / "erp.json"
    erp.write_text(
        json.dumps([{"customer_no": "C-1", "legal_name": "Velfrod Proces GmbH", "country": "DE"}])
    )
    import_file(conn, crm, "crm", thresholds=Thresholds())
    import_file(conn, erp, "erp", thresholds=Thresholds())
    (pending,) = review_queue(conn)
    assert pending.source == "erp" and 0.6 <= pending.confidence < 0.85
    accepted = accept(conn, pending.id, actor="anna")
    assert accepted.status == "matched" and accepted.account_id == pending.account_id
    assert review_queue(conn) == []
    restored = revert(conn, accepted.id, actor="anna")
    assert restored.status == "review" and restored.account_id == pending.account_id
    rejected = reject(conn, restored.id, actor="anna")
    assert rejected.account_id != pending.account_id
    history = conn.execute(
        "SELECT status, method, superseded_at IS NULL FROM account_identities "
        "WHERE source = 'erp' ORDER BY id"
    ).fetchall()
    assert history == [
        ("review", "fuzzy", False),
        ("matched", "manual", False),
        ("review", "manual", False),
        ("matched", "manual", True),
    ]
    assert conn.execute("SELECT count(*) FROM accounts").fetchone() == (2,)
    assert build_report(conn).in_review == 0


def test_hostile_rows_are_refused_whole(conn: psycopg.Connection, tmp_path: Path) -> None:
    path = tmp_path / "crm.json"
    path.write_text(
        json.dumps(
            [
                {"crm_id": "A1", "account_name": "Velford\u0000 Process"},
                {"crm_id": "A2", "account_name": "Nested", "notes": {"x": 1}},
                {"crm_id": "A3", "account_name": "Ok Ltd", "bad\u0000column": "x"},
                "not a record",
                {"crm_id": "A5", "account_name": "Orrstead Foods"},
            ]
        )
    )
    report = import_file(conn, path, "crm", thresholds=Thresholds())
    assert report.imported == 1 and [r.row for r in report.rejected] == [1, 2, 3, 4]
    assert conn.execute("SELECT source_id FROM source_records").fetchall() == [("A5",)]
