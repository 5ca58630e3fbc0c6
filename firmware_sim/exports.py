"""Source-system exports with the defects real ones have, and the truth about them.

Three systems describe the same customers, each with its own IDs:

* CRM (``crm_accounts``): Salesforce-style IDs; some accounts were entered twice (name
  variants, stale fields): the planted duplicates.
* ERP (``erp_customers``): customer numbers, legal names, VAT IDs, contract values.
* Service desk (``servicedesk_organisations``, ``servicedesk_tickets``): organisation
  IDs, short names, email domains; tickets name devices by serial number.

Plus the device registry (``device_registry``): devices as provisioned, pointing at a CRM
ID (sometimes a duplicate's). Conflicts between systems (a field that disagrees) are
planted in ``conflict_rate`` of the accounts. Every planted defect is counted in
``planted_defects.json`` and every source record is mapped to its true account in
``identity_map`` (both under the ground-truth directory).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from firmware_sim.climate import REGIONS
from firmware_sim.config import SimConfig
from firmware_sim.fleet import INDUSTRIES, Account, Fleet
from firmware_sim.seeds import Stream, rng
from firmware_sim.tickets import Ticket

Record = dict[str, Any]
_B36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CONFLICT_FIELDS = (
    "industry",
    "country",
    "renewal_date",
    "contract_value",
    "csm",
    "region",
    "name",
)


@dataclass
class Exports:
    crm: list[Record] = field(default_factory=list)
    erp: list[Record] = field(default_factory=list)
    sd_orgs: list[Record] = field(default_factory=list)
    sd_tickets: list[Record] = field(default_factory=list)
    registry: list[Record] = field(default_factory=list)
    identity: list[Record] = field(default_factory=list)
    conflicts: list[Record] = field(default_factory=list)
    defects: dict[str, Any] = field(default_factory=dict)


def _sfid(g: np.random.Generator) -> str:
    return "001" + "".join(_B36[int(i)] for i in g.integers(0, 62, 12))


def _variant(g: np.random.Generator, name: str) -> str:
    kind = int(g.integers(4))
    if kind == 0:
        return name.upper()
    if kind == 1:
        return name.replace(" ", "  ", 1) + " "
    if kind == 2 and len(name) > 4:
        k = int(g.integers(1, len(name) - 2))
        return name[:k] + name[k + 1] + name[k] + name[k + 2 :]
    return name.split(" ")[0] + " " + "".join(w[0] for w in name.split(" ")[1:]) + "."


def build_exports(config: SimConfig, fleet: Fleet, tickets: list[Ticket]) -> Exports:
    g = rng(config.seed, Stream.EXPORTS)
    defects = config.exports
    out = Exports()
    csm_name = {c.csm_id: c.name for c in fleet.csms}
    industries = sorted(INDUSTRIES)
    conflict_counts: Counter[str] = Counter()
    crm_of: dict[str, list[str]] = {}
    org_of: dict[str, str] = {}
    duplicates = 0
    name_variants = 0
    for account in fleet.accounts:
        crm_id, erp_id = _sfid(g), f"C-{100_000 + int(g.integers(900_000)):06d}"
        org_id = f"ORG-{10_000 + account.index * 7 + int(g.integers(7)):05d}"
        org_of[account.account_id] = org_id
        crm: Record = {
            "crm_id": crm_id,
            "account_name": account.name,
            "industry": account.industry,
            "segment": account.size,
            "billing_country": account.country,
            "region": account.region,
            "owner": csm_name[account.csm_id],
            "annual_contract_value": round(account.contract_value * 12 / account.term_months, 2),
            "contract_term_months": account.term_months,
            "renewal_date": account.renewal_date.isoformat(),
            "website": f"https://www.{account.domain}",
            "phone": account.phone,
            "created_date": account.contract_start.isoformat(),
        }
        erp: Record = {
            "customer_no": erp_id,
            "legal_name": account.legal_name,
            "vat_id": account.vat_id,
            "country": account.country,
            "currency": account.currency,
            "contract_value": account.contract_value,
            "contract_end": account.renewal_date.isoformat(),
            "payment_terms": str(g.choice(("NET30", "NET45", "NET60"))),
        }
        org: Record = {
            "org_id": org_id,
            "org_name": account.stem if g.random() < 0.5 else account.name,
            "email_domain": account.domain,
            "region": account.region,
            "support_tier": account.service_tier,
            "account_manager": csm_name[account.csm_id],
            "industry": account.industry,
        }
        if g.random() < defects.conflict_rate:
            n_fields = 1 + int(g.random() < 0.35)
            for f_name in g.choice(_CONFLICT_FIELDS, n_fields, replace=False):
                _plant_conflict(g, str(f_name), account, crm, erp, org, industries, fleet, out)
                conflict_counts[str(f_name)] += 1
        for rec, fields in (
            (crm, ("phone", "website", "industry")),
            (erp, ("vat_id",)),
            (org, ("email_domain",)),
        ):
            for f_name in fields:
                if g.random() < defects.missing_rate:
                    rec[f_name] = ""
        out.crm.append(crm)
        out.erp.append(erp)
        out.sd_orgs.append(org)
        crm_of[account.account_id] = [crm_id]
        out.identity += [
            {"system": "crm", "source_id": crm_id, "account_id": account.account_id},
            {"system": "erp", "source_id": erp_id, "account_id": account.account_id},
            {"system": "servicedesk", "source_id": org_id, "account_id": account.account_id},
        ]
        if g.random() < defects.duplicate_rate:
            dup = dict(crm)
            dup["crm_id"] = _sfid(g)
            dup["account_name"] = _variant(g, account.name)
            dup["owner"] = csm_name[fleet.csms[int(g.integers(len(fleet.csms)))].csm_id]
            dup["renewal_date"] = (account.renewal_date - timedelta(days=365)).isoformat()
            dup["phone"] = ""
            out.crm.append(dup)
            crm_of[account.account_id].append(dup["crm_id"])
            out.identity.append(
                {"system": "crm", "source_id": dup["crm_id"], "account_id": account.account_id}
            )
            duplicates += 1
            name_variants += 1
    order = g.permutation(len(out.crm))
    out.crm = [out.crm[int(i)] for i in order]
    misregistered = 0
    for d in fleet.devices:
        ids = crm_of[d.account_id]
        ref = ids[0]
        if len(ids) > 1 and g.random() < defects.misregistered_device_rate:
            ref = ids[1]
            misregistered += 1
        out.registry.append(
            {
                "device_id": d.device_id,
                "serial": d.serial,
                "machine_type": d.machine_type,
                "model": d.model,
                "installed_on": d.installed_on.isoformat(),
                "firmware": d.firmware,
                "site_name": fleet.site(d.site_id).name,
                "customer_ref": ref,
            }
        )
    serial = {d.device_id: d.serial for d in fleet.devices}
    for t in tickets:
        out.sd_tickets.append(
            {
                "ticket_id": t.ticket_id,
                "org_id": org_of[t.account_id],
                "serial": serial.get(t.device_id, ""),
                "category": t.category,
                "opened_at": config.step_time(t.opened_step).isoformat(),
                "first_response_at": config.step_time(t.responded_step).isoformat(),
                "resolved_at": config.step_time(t.resolved_step).isoformat(),
                "status": "resolved"
                if t.resolved_step < config.days * config.steps_per_day
                else "open",
            }
        )
    out.defects = {
        "accounts": len(fleet.accounts),
        "crm_records": len(out.crm),
        "crm_duplicates": duplicates,
        "name_variants": name_variants,
        "conflicting_accounts": len({c["account_id"] for c in out.conflicts}),
        "conflicts_by_field": dict(sorted(conflict_counts.items())),
        "missing_by_field": _blanks(out.crm + out.erp + out.sd_orgs),
        "misregistered_devices": misregistered,
    }
    return out


def _plant_conflict(
    g: np.random.Generator,
    name: str,
    account: Account,
    crm: Record,
    erp: Record,
    org: Record,
    industries: list[str],
    fleet: Fleet,
    out: Exports,
) -> None:
    """Make one field disagree between two systems; the wrong side is recorded."""
    values: tuple[object, object]
    if name == "industry":
        wrong = str(g.choice([i for i in industries if i != account.industry]))
        org["industry"] = wrong
        systems, values = ("crm", "servicedesk"), (crm["industry"], wrong)
    elif name == "country":
        region = next(r for r in REGIONS if r.name == account.region)
        options = [c for c in region.countries if c != account.country] or ["GB"]
        wrong = str(g.choice(options))
        erp["country"] = wrong
        systems, values = ("crm", "erp"), (crm["billing_country"], wrong)
    elif name == "renewal_date":
        shift = int(g.choice((-365, -180, -30, 30, 90)))
        wrong = (account.renewal_date + timedelta(days=shift)).isoformat()
        crm["renewal_date"] = wrong
        systems, values = ("crm", "erp"), (wrong, erp["contract_end"])
    elif name == "contract_value":
        low_value = round(account.contract_value * float(g.uniform(0.6, 0.85)), 2)
        erp["contract_value"] = low_value
        systems, values = ("crm", "erp"), (crm["annual_contract_value"], low_value)
    elif name == "csm":
        others = [c.name for c in fleet.csms if c.csm_id != account.csm_id]
        wrong = str(g.choice(others))
        org["account_manager"] = wrong
        systems, values = ("crm", "servicedesk"), (crm["owner"], wrong)
    elif name == "region":
        wrong = str(g.choice([r.name for r in REGIONS if r.name != account.region]))
        org["region"] = wrong
        systems, values = ("crm", "servicedesk"), (crm["region"], wrong)
    else:
        wrong = _variant(g, account.legal_name)
        erp["legal_name"] = wrong
        systems, values = ("crm", "erp"), (crm["account_name"], wrong)
    out.conflicts.append(
        {
            "account_id": account.account_id,
            "field": name,
            "systems": list(systems),
            "values": [str(v) for v in values],
            "wrong_system": systems[1] if name not in ("renewal_date",) else systems[0],
        }
    )


def _blanks(records: list[Record]) -> dict[str, int]:
    """Empty values per field, as they are in the files."""
    counts: Counter[str] = Counter()
    for record in records:
        for key, value in record.items():
            if value == "":
                counts[key] += 1
    return dict(sorted(counts.items()))


def write_table(records: list[Record], base: Path) -> None:
    """Write ``records`` as ``base.csv`` and ``base.json`` (same rows, same order)."""
    base.parent.mkdir(parents=True, exist_ok=True)
    columns = list(records[0]) if records else []
    with base.with_suffix(".csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(records)
    base.with_suffix(".json").write_text(
        json.dumps(records, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )


def write_exports(exports: Exports, export_dir: Path, truth_dir: Path) -> None:
    write_table(exports.crm, export_dir / "crm_accounts")
    write_table(exports.erp, export_dir / "erp_customers")
    write_table(exports.sd_orgs, export_dir / "servicedesk_organisations")
    write_table(exports.sd_tickets, export_dir / "servicedesk_tickets")
    write_table(exports.registry, export_dir / "device_registry")
    write_table(exports.identity, truth_dir / "identity_map")
    write_table(exports.conflicts, truth_dir / "planted_conflicts")
    (truth_dir / "planted_defects.json").write_text(
        json.dumps(exports.defects, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
