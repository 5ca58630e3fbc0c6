"""Modbus register maps: what to read, and how raw 16-bit registers become a metric value.

A register holds 16 bits, big-endian within the word (the Modbus convention). 32-bit types
span two registers; ``word_order`` says which comes first: ``big`` (high word at the lower
address, the most common) or ``little`` (low word first, "word swapped"). The value sent is
``raw * scale + offset``, in ``unit``.
"""

from __future__ import annotations

import math
import struct
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from device_sdk.wire.payloads import NAME_PATTERN

__all__ = [
    "DataType",
    "RegisterSpec",
    "RegisterTable",
    "WordOrder",
    "decode_registers",
    "encode_value",
    "registers_overlap",
]


class RegisterTable(StrEnum):
    HOLDING = "holding"
    """Function code 3 (read holding registers)."""
    INPUT = "input"
    """Function code 4 (read input registers)."""


class DataType(StrEnum):
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    FLOAT32 = "float32"

    @property
    def words(self) -> int:
        """Registers this type spans."""
        return 1 if self in (DataType.INT16, DataType.UINT16) else 2

    @property
    def struct_code(self) -> str:
        return _STRUCT[self]


_STRUCT = {
    DataType.INT16: ">h",
    DataType.UINT16: ">H",
    DataType.INT32: ">i",
    DataType.UINT32: ">I",
    DataType.FLOAT32: ">f",
}


class WordOrder(StrEnum):
    BIG = "big"
    """High word at the lower address."""
    LITTLE = "little"
    """Low word at the lower address ("word swapped")."""


class RegisterSpec(BaseModel):
    """One metric read from one register (or two, for 32-bit types)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: Annotated[str, StringConstraints(pattern=f"^{NAME_PATTERN}$")]
    address: Annotated[int, Field(ge=0, le=65_535)]
    type: RegisterTable = RegisterTable.HOLDING
    data_type: DataType = DataType.UINT16
    word_order: WordOrder = WordOrder.BIG
    scale: Annotated[float, Field(allow_inf_nan=False)] = 1.0
    offset: Annotated[float, Field(allow_inf_nan=False)] = 0.0
    unit: Annotated[str, StringConstraints(min_length=1, max_length=32)] | None = None
    poll_interval_s: Annotated[float, Field(gt=0, le=86_400)] | None = None
    """Overrides the device's poll interval for this register."""

    @field_validator("scale")
    @classmethod
    def _scale_not_zero(cls, value: float) -> float:
        if value == 0:
            raise ValueError("scale must not be 0 (every value would read 0)")
        return value

    @property
    def words(self) -> int:
        return self.data_type.words

    @property
    def end(self) -> int:
        """One past the last register address this spec reads."""
        return self.address + self.words

    def value(self, registers: list[int]) -> float:
        """The metric value for the raw registers read at :attr:`address`."""
        return decode_registers(registers, self.data_type, self.word_order) * self.scale + (
            self.offset
        )


def decode_registers(registers: list[int], data_type: DataType, word_order: WordOrder) -> float:
    """Raw 16-bit registers to a number (before scale and offset).

    Raises:
        ValueError: wrong number of registers, a register outside 0..65535, or a float32
            that is NaN or infinite.
    """
    if len(registers) != data_type.words:
        raise ValueError(
            f"{data_type.value} needs {data_type.words} registers, got {len(registers)}"
        )
    words = list(registers) if word_order is WordOrder.BIG else list(reversed(registers))
    try:
        raw = struct.pack(f">{len(words)}H", *words)
    except struct.error:
        raise ValueError(f"register values must be 0..65535, got {registers}") from None
    value = float(struct.unpack(data_type.struct_code, raw)[0])
    if not math.isfinite(value):
        raise ValueError(f"{data_type.value} registers {registers} hold {value}")
    return value


def encode_value(value: float, data_type: DataType, word_order: WordOrder) -> list[int]:
    """The inverse of :func:`decode_registers` (test servers and simulators use it)."""
    number: float | int = value if data_type is DataType.FLOAT32 else int(value)
    raw = struct.pack(data_type.struct_code, number)
    words = list(struct.unpack(f">{data_type.words}H", raw))
    return words if word_order is WordOrder.BIG else list(reversed(words))


def registers_overlap(a: RegisterSpec, b: RegisterSpec) -> bool:
    """Whether two specs read some of the same registers of the same table."""
    return a.type is b.type and a.address < b.end and b.address < a.end
