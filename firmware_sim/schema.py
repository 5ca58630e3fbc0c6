"""Arrow schemas of everything ``sim generate`` writes (the documented file contract)."""

from __future__ import annotations

import pyarrow as pa

from firmware_sim.catalogue import MachineSpec
from firmware_sim.usage import FEATURES

TS = pa.timestamp("ms", tz="UTC")
DEVICE_ID = pa.dictionary(pa.int32(), pa.string())


def telemetry_schema(spec: MachineSpec) -> pa.Schema:
    """Wide telemetry of one machine type: one row per device and step.

    ``ts`` and ``device_id`` then one float32 column per metric of the type's catalogue,
    NaN where the value is missing. Field metadata carries unit, range and resolution.
    """
    fields = [
        pa.field("ts", TS, nullable=False),
        pa.field("device_id", DEVICE_ID, nullable=False),
    ]
    for metric in spec.metrics:
        fields.append(
            pa.field(
                metric.name,
                pa.float32(),
                nullable=False,
                metadata={
                    "unit": metric.unit,
                    "low": repr(metric.low),
                    "high": repr(metric.high),
                    "resolution": repr(metric.resolution),
                },
            )
        )
    return pa.schema(fields, metadata={"machine_type": spec.name})


def usage_schema() -> pa.Schema:
    """Daily usage summary per device (what ``DeviceClient.usage`` reports)."""
    fields = [
        pa.field("date", pa.date32(), nullable=False),
        pa.field("device_id", pa.string(), nullable=False),
        pa.field("operating_hours", pa.float32(), nullable=False),
        pa.field("starts", pa.int32(), nullable=False),
        pa.field("duty_cycle", pa.float32(), nullable=False),
        pa.field("energy_kwh", pa.float32(), nullable=False),
        pa.field("sessions", pa.int32(), nullable=False),
    ]
    fields += [pa.field(f"feature_{name}", pa.int32(), nullable=False) for name in FEATURES]
    return pa.schema(fields)


EVENTS_SCHEMA = pa.schema(
    [
        pa.field("ts", TS, nullable=False),
        pa.field("device_id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("code", pa.string(), nullable=False),
    ]
)
