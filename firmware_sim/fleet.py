"""The synthetic customer base: accounts, sites and the devices installed at them.

This is the *true* state of the world. What the platform sees of it (CRM, ERP and
service-desk records, the device registry) is derived from it, with defects, by
:mod:`firmware_sim.exports`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from firmware_sim import names
from firmware_sim.climate import REGIONS
from firmware_sim.config import SimConfig
from firmware_sim.machines import MACHINE_TYPES
from firmware_sim.seeds import Stream, rng

INDUSTRIES: dict[str, tuple[float, float, float, tuple[float, float, float, float]]] = {
    # name: (weight, pump share, indoor share, shift pattern weights: 24/7, 1, 2 shifts, seasonal)
    "water_utility": (0.18, 0.9, 0.6, (0.8, 0.05, 0.15, 0.0)),
    "food_beverage": (0.16, 0.5, 0.9, (0.35, 0.15, 0.5, 0.0)),
    "chemicals": (0.12, 0.65, 0.5, (0.85, 0.0, 0.15, 0.0)),
    "mining": (0.10, 0.45, 0.2, (0.6, 0.0, 0.4, 0.0)),
    "agriculture": (0.10, 0.85, 0.1, (0.0, 0.3, 0.0, 0.7)),
    "manufacturing": (0.22, 0.25, 0.9, (0.15, 0.45, 0.4, 0.0)),
    "building_services": (0.12, 0.75, 0.95, (0.4, 0.6, 0.0, 0.0)),
}
SHIFT_PATTERNS: tuple[str, ...] = ("continuous", "one_shift", "two_shift", "seasonal")
TIERS: tuple[str, ...] = ("basic", "standard", "premium")
SIZES: tuple[str, ...] = ("smb", "mid_market", "enterprise")
_PRICE = {"centrifugal_pump": 1_900.0, "air_compressor": 2_700.0}
_TIER_PRICE = {"basic": 0.8, "standard": 1.0, "premium": 1.35}


@dataclass(frozen=True)
class Csm:
    csm_id: str
    name: str
    email: str


@dataclass(frozen=True)
class Account:
    """A customer as it really is (the identity every source system describes)."""

    account_id: str
    index: int
    stem: str
    name: str
    legal_name: str
    industry: str
    size: str
    region: str
    country: str
    employees: int
    contract_value: float
    currency: str
    term_months: int
    contract_start: date
    renewal_date: date
    csm_id: str
    service_tier: str
    shift_pattern: str
    domain: str
    phone: str
    vat_id: str


@dataclass(frozen=True)
class Site:
    site_id: str
    account_id: str
    index: int
    name: str
    city: str
    region: str
    country: str
    indoor: bool
    offset_c: float
    dirt: float


@dataclass(frozen=True)
class Device:
    """One installed machine. ``index`` is fleet-wide; ``type_index`` within its type."""

    device_id: str
    serial: str
    machine_type: str
    model: str
    account_id: str
    site_id: str
    index: int
    type_index: int
    installed_on: date
    firmware: str


@dataclass(frozen=True)
class Fleet:
    accounts: tuple[Account, ...]
    sites: tuple[Site, ...]
    devices: tuple[Device, ...]
    csms: tuple[Csm, ...]

    def devices_of(self, machine_type: str) -> tuple[Device, ...]:
        return tuple(d for d in self.devices if d.machine_type == machine_type)

    def account(self, account_id: str) -> Account:
        return self.accounts[int(account_id.split("-")[1]) - 1]

    def site(self, site_id: str) -> Site:
        return self.sites[int(site_id.split("-")[1]) - 1]


def _device_counts(g: np.random.Generator, n_devices: int, n_accounts: int) -> np.ndarray:
    weights = g.lognormal(0.0, 1.0, n_accounts)
    extra = g.multinomial(n_devices - n_accounts, weights / weights.sum())
    return np.asarray(extra + 1, dtype=np.int64)


def build_fleet(config: SimConfig) -> Fleet:
    """Draw the customer base of ``config`` (deterministic for its seed)."""
    g = rng(config.seed, Stream.FLEET)
    n_accounts = config.n_accounts
    counts = _device_counts(g, config.devices, n_accounts)
    order = np.argsort(-counts, kind="stable")
    size_of = np.empty(n_accounts, dtype=np.int64)
    size_of[order] = np.where(
        np.arange(n_accounts) < math.ceil(0.15 * n_accounts),
        2,
        np.where(np.arange(n_accounts) < math.ceil(0.5 * n_accounts), 1, 0),
    )
    n_csm = max(2, math.ceil(n_accounts / 30))
    csms = tuple(
        Csm(
            f"csm-{i + 1:03d}",
            (nm := names.person_name(g)),
            nm.lower().replace(" ", ".") + "@fleetcare.example",
        )
        for i in range(n_csm)
    )
    industry_names = tuple(INDUSTRIES)
    industry_w = np.array([INDUSTRIES[k][0] for k in industry_names])
    accounts: list[Account] = []
    sites: list[Site] = []
    devices: list[Device] = []
    type_counters = dict.fromkeys(MACHINE_TYPES, 0)
    stems_used: set[str] = set()
    for a in range(n_accounts):
        industry = industry_names[
            int(g.choice(len(industry_names), p=industry_w / industry_w.sum()))
        ]
        _, pump_share, indoor_share, shift_w = INDUSTRIES[industry]
        region = REGIONS[int(g.integers(len(REGIONS)))]
        country = str(g.choice(region.countries))
        stem = names.company_stem(g)
        while stem in stems_used:
            stem = names.company_stem(g) + str(int(g.integers(2, 99)))
        stems_used.add(stem)
        trade = names.company_name(g, stem)
        size = SIZES[int(size_of[a])]
        tier_p = ((0.35, 0.5, 0.15), (0.2, 0.55, 0.25), (0.05, 0.45, 0.5))[int(size_of[a])]
        tier = TIERS[int(g.choice(3, p=tier_p))]
        term = int(g.choice((12, 24, 36), p=(0.45, 0.3, 0.25)))
        renewal = config.start + timedelta(days=int(g.integers(0, term * 365 // 12)))
        contract_start = _months_before(renewal, term)
        pattern = SHIFT_PATTERNS[int(g.choice(4, p=np.array(shift_w) / sum(shift_w)))]
        account_id = f"acct-{a + 1:05d}"
        n_dev = int(counts[a])
        n_sites = min(n_dev, 1 + int(g.poisson((n_dev - 1) / 12)))
        site_ids = []
        for _ in range(n_sites):
            s_index = len(sites)
            s_region = (
                region
                if g.random() < 0.9 or size != "enterprise"
                else REGIONS[int(g.integers(len(REGIONS)))]
            )
            s_country = country if s_region is region else str(g.choice(s_region.countries))
            site = Site(
                site_id=f"site-{s_index + 1:05d}",
                account_id=account_id,
                index=s_index,
                name=f"{stem} {g.choice(s_region.cities)!s} plant",
                city=str(g.choice(s_region.cities)),
                region=s_region.name,
                country=s_country,
                indoor=bool(g.random() < indoor_share),
                offset_c=float(g.normal(0.0, 1.5)),
                dirt=float(g.lognormal(0.0, 0.4) * (2.5 if industry == "mining" else 1.0)),
            )
            sites.append(site)
            site_ids.append(site.site_id)
        value = 0.0
        share = pump_share if config.pump_share is None else config.pump_share
        for _ in range(n_dev):
            mtype = MACHINE_TYPES[0] if g.random() < share else MACHINE_TYPES[1]
            type_counters[mtype] += 1
            prefix = "cp" if mtype == MACHINE_TYPES[0] else "ac"
            age_days = int(g.uniform(120, 12 * 365))
            installed = config.start - timedelta(days=age_days)
            serial_no = int(g.integers(10**6))
            devices.append(
                Device(
                    device_id=f"{prefix}-{type_counters[mtype]:06d}",
                    serial=f"{prefix.upper()}{installed.year % 100:02d}{serial_no:06d}",
                    machine_type=mtype,
                    model=str(
                        g.choice(
                            ("CP-80", "CP-150", "CP-250")
                            if prefix == "cp"
                            else ("RS-15", "RS-37", "RS-75")
                        )
                    ),
                    account_id=account_id,
                    site_id=site_ids[int(g.integers(n_sites))],
                    index=len(devices),
                    type_index=type_counters[mtype] - 1,
                    installed_on=installed,
                    firmware=str(g.choice(("2.3.1", "2.4.0", "2.4.2", "3.0.0"))),
                )
            )
            value += _PRICE[mtype]
        value *= _TIER_PRICE[tier] * float(g.lognormal(0.0, 0.15)) * term / 12
        employees = int(g.lognormal((3.5, 5.5, 7.8)[int(size_of[a])], 0.6))
        accounts.append(
            Account(
                account_id=account_id,
                index=a,
                stem=stem,
                name=trade,
                legal_name=f"{trade} {names.legal_suffix(country)}",
                industry=industry,
                size=size,
                region=region.name,
                country=country,
                employees=max(5, employees),
                contract_value=round(value, -2),
                currency="USD",
                term_months=term,
                contract_start=contract_start,
                renewal_date=renewal,
                csm_id=csms[int(g.integers(n_csm))].csm_id,
                service_tier=tier,
                shift_pattern=pattern,
                domain=f"{stem.lower()}.example",
                phone=f"+{int(g.integers(10, 99))} {int(g.integers(100, 999))} "
                f"{int(g.integers(1_000_000, 9_999_999))}",
                vat_id=f"{country}{int(g.integers(10**8, 10**9))}",
            )
        )
    return Fleet(tuple(accounts), tuple(sites), tuple(devices), csms)


def _months_before(day: date, months: int) -> date:
    month0 = day.year * 12 + day.month - 1 - months
    year, month = divmod(month0, 12)
    return date(year, month + 1, min(day.day, 28))
