"""The source-system exports carry exactly the defects recorded in planted_defects.json."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest

from firmware_sim import ExportDefects, SimConfig, generate


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim-exports")
    config = SimConfig(
        devices=600,
        accounts=150,
        days=3,
        seed=13,
        interval_s=1800,
        exports=ExportDefects(duplicate_rate=0.2),
    )
    generate(config, out)
    return out


def test_csv_and_json_hold_the_same_records(exported: Path) -> None:
    for base in (
        "crm_accounts",
        "erp_customers",
        "servicedesk_organisations",
        "servicedesk_tickets",
        "device_registry",
    ):
        rows = _csv(exported / "exports" / f"{base}.csv")
        records = json.loads((exported / "exports" / f"{base}.json").read_text())
        assert len(rows) == len(records)
        assert [{k: str(v) for k, v in r.items()} for r in records] == rows


def test_every_source_record_maps_to_one_true_account(exported: Path) -> None:
    identity = _csv(exported / "ground_truth" / "identity_map.csv")
    keys = Counter((r["system"], r["source_id"]) for r in identity)
    assert max(keys.values()) == 1
    mapped = {(r["system"], r["source_id"]): r["account_id"] for r in identity}
    crm = _csv(exported / "exports" / "crm_accounts.csv")
    erp = _csv(exported / "exports" / "erp_customers.csv")
    orgs = _csv(exported / "exports" / "servicedesk_organisations.csv")
    assert {("crm", r["crm_id"]) for r in crm} | {("erp", r["customer_no"]) for r in erp} | {
        ("servicedesk", r["org_id"]) for r in orgs
    } == set(mapped)
    assert len({mapped[("erp", r["customer_no"])] for r in erp}) == 150


def test_planted_defects_are_counted_exactly(exported: Path) -> None:
    defects = json.loads((exported / "ground_truth" / "planted_defects.json").read_text())
    identity = _csv(exported / "ground_truth" / "identity_map.csv")
    crm = _csv(exported / "exports" / "crm_accounts.csv")
    crm_accounts = Counter(r["account_id"] for r in identity if r["system"] == "crm")
    assert defects["crm_records"] == len(crm) == 150 + defects["crm_duplicates"]
    assert defects["crm_duplicates"] == sum(n - 1 for n in crm_accounts.values()) > 10
    conflicts = json.loads((exported / "ground_truth" / "planted_conflicts.json").read_text())
    assert sum(defects["conflicts_by_field"].values()) == len(conflicts)
    assert defects["conflicting_accounts"] == len({c["account_id"] for c in conflicts})
    assert 0.2 < defects["conflicting_accounts"] / 150 < 0.5
    for conflict in conflicts:
        assert conflict["values"][0] != conflict["values"][1], conflict
    blanks: Counter[str] = Counter()
    for base in ("crm_accounts", "erp_customers", "servicedesk_organisations"):
        for row in _csv(exported / "exports" / f"{base}.csv"):
            for key, value in row.items():
                if value == "":
                    blanks[key] += 1
    assert dict(blanks) == defects["missing_by_field"]
    assert defects["missing_by_field"]["phone"] >= defects["crm_duplicates"]
    registry = _csv(exported / "exports" / "device_registry.csv")
    first_crm = {}
    for r in identity:
        if r["system"] == "crm":
            first_crm.setdefault(r["account_id"], r["source_id"])
    wrong = sum(1 for d in registry if d["customer_ref"] not in first_crm.values())
    assert wrong == defects["misregistered_devices"]


def test_tickets_name_devices_by_serial(exported: Path) -> None:
    tickets = _csv(exported / "exports" / "servicedesk_tickets.csv")
    serials = {d["serial"] for d in _csv(exported / "exports" / "device_registry.csv")}
    orgs = {o["org_id"] for o in _csv(exported / "exports" / "servicedesk_organisations.csv")}
    for t in tickets:
        assert t["org_id"] in orgs
        assert t["serial"] == "" or t["serial"] in serials
        assert t["opened_at"] < t["resolved_at"]
