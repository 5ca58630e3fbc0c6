"""Regions: time zone, mains frequency and climate, and the ambient temperature model.

Ambient temperature = regional mean + seasonal cycle (sign by hemisphere) + daily cycle
(peak at 15:00 local) + a weather anomaly shared by a region's sites (an AR(1) process
per day) + a per-site offset. Indoor sites see a damped cycle and are heated in winter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from firmware_sim.arraytypes import F32, F64, I64


@dataclass(frozen=True)
class Region:
    """A sales region with one representative climate."""

    name: str
    utc_offset_h: int
    hz60: bool
    mean_c: float
    seasonal_amp_c: float
    daily_amp_c: float
    southern: bool
    countries: tuple[str, ...]
    cities: tuple[str, ...]


REGIONS: tuple[Region, ...] = (
    Region(
        "eu-north",
        1,
        False,
        8.0,
        9.0,
        4.0,
        False,
        ("DE", "NL", "SE", "PL"),
        ("Hamburg", "Rotterdam", "Göteborg", "Gdańsk", "Bremen", "Malmö"),
    ),
    Region(
        "eu-south",
        1,
        False,
        16.0,
        8.0,
        6.0,
        False,
        ("ES", "IT", "PT", "GR"),
        ("Valencia", "Bologna", "Porto", "Thessaloniki", "Sevilla", "Torino"),
    ),
    Region(
        "na-east",
        -5,
        True,
        12.0,
        12.0,
        5.0,
        False,
        ("US", "CA"),
        ("Pittsburgh", "Columbus", "Toronto", "Charlotte", "Baltimore"),
    ),
    Region(
        "na-west",
        -8,
        True,
        17.0,
        7.0,
        8.0,
        False,
        ("US", "CA"),
        ("Fresno", "Phoenix", "Portland", "Sacramento", "Calgary"),
    ),
    Region(
        "latam",
        -3,
        True,
        21.0,
        4.0,
        6.0,
        True,
        ("BR", "CL", "MX"),
        ("Campinas", "Santiago", "Monterrey", "Curitiba"),
    ),
    Region(
        "mea",
        3,
        False,
        28.0,
        8.0,
        8.0,
        False,
        ("AE", "SA", "ZA"),
        ("Dubai", "Dammam", "Johannesburg", "Riyadh"),
    ),
    Region(
        "apac",
        8,
        False,
        22.0,
        6.0,
        5.0,
        False,
        ("SG", "AU", "JP", "CN"),
        ("Singapore", "Perth", "Osaka", "Suzhou", "Brisbane"),
    ),
)


def region_index(name: str) -> int:
    for i, region in enumerate(REGIONS):
        if region.name == name:
            return i
    raise KeyError(name)


@dataclass
class AmbientModel:
    """Ambient temperature for a set of devices, block by block.

    Attributes:
        region: region index per device.
        site_offset_c: per-site offset (sun, altitude, nearby heat sources).
        indoor: the device stands in a building.
        weather: current weather anomaly per region (AR(1) state, °C).
    """

    region: I64
    site_offset_c: F64
    indoor: np.ndarray
    weather: F64

    def block(self, day_of_year: int, steps: int, rng: np.random.Generator) -> F32:
        """Ambient temperature ``[devices, steps]`` of one simulated day.

        ``rng`` draws this day's weather step for every region (always all regions, so
        the draws do not depend on which devices exist).
        """
        n_regions = len(REGIONS)
        prev = self.weather.copy()
        self.weather = 0.8 * self.weather + rng.normal(0.0, 2.2, n_regions)
        mean = np.array([r.mean_c for r in REGIONS])
        seasonal_amp = np.array([r.seasonal_amp_c for r in REGIONS])
        sign = np.array([-1.0 if r.southern else 1.0 for r in REGIONS])
        seasonal = mean + sign * seasonal_amp * -math.cos(2 * math.pi * (day_of_year - 15) / 365.25)
        hours = (np.arange(steps, dtype=np.float64) + 0.5) * (24.0 / steps)
        frac = hours / 24.0
        offsets = np.array([r.utc_offset_h for r in REGIONS], dtype=np.float64)
        daily_amp = np.array([r.daily_amp_c for r in REGIONS])
        local = hours[None, :] + offsets[:, None]
        daily = daily_amp[:, None] * np.cos(2 * math.pi * (local - 15.0) / 24.0)
        weather = prev[:, None] * (1 - frac)[None, :] + self.weather[:, None] * frac[None, :]
        table = (seasonal[:, None] + daily + weather).astype(np.float32)
        out: F32 = table[self.region]
        out += self.site_offset_c.astype(np.float32)[:, None]
        indoor = np.asarray(self.indoor, dtype=bool)
        if indoor.any():
            inside = out[indoor]
            inside = np.float32(0.5) * inside + np.float32(11.0)
            np.maximum(inside, np.float32(14.0), out=inside)
            out[indoor] = inside
        return out
