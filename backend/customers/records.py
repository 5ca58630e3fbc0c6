"""Source records: the rows CRM, ERP and service-desk exports hold, in one canonical shape.

Each system names its columns its own way; :data:`COLUMN_ALIASES` maps them to the
canonical fields of :class:`SourceAccount`. A row that lacks an id or a name, or has a
value that does not parse, is refused with a reason (:class:`InvalidRecordError`).
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from backend.customers.errors import InvalidRecordError

Source = Literal["crm", "erp", "service"]
SOURCES: tuple[Source, ...] = ("crm", "erp", "service")

# canonical field -> accepted column names, per source (first present one wins).
COLUMN_ALIASES: dict[Source, dict[str, tuple[str, ...]]] = {
    "crm": {
        "source_id": ("crm_id", "id", "account_id"),
        "name": ("account_name", "name"),
        "domain": ("website", "domain", "email_domain"),
        "country": ("billing_country", "country"),
        "region": ("region",),
        "industry": ("industry",),
        "csm": ("owner", "csm", "account_manager"),
        "phone": ("phone",),
        "address": ("billing_address", "address"),
        "size_band": ("segment", "size_band"),
        "annual_value": ("annual_contract_value", "annual_value"),
        "term_months": ("contract_term_months", "term_months"),
        "renewal_date": ("renewal_date",),
        "start_date": ("created_date", "contract_start", "start_date"),
    },
    "erp": {
        "source_id": ("customer_no", "id", "customer_id"),
        "name": ("legal_name", "name"),
        "vat_id": ("vat_id", "vat"),
        "country": ("country",),
        "address": ("address", "billing_address"),
        "term_value": ("contract_value", "term_value"),
        "renewal_date": ("contract_end", "renewal_date"),
        "currency": ("currency",),
    },
    "service": {
        "source_id": ("org_id", "id", "organisation_id"),
        "name": ("org_name", "name"),
        "domain": ("email_domain", "domain", "website"),
        "region": ("region",),
        "industry": ("industry",),
        "csm": ("account_manager", "csm", "owner"),
        "tier": ("support_tier", "tier"),
    },
}
# Fields that hold personal or identifying data (scrubbed on erasure).
PERSONAL_FIELDS = ("name", "domain", "phone", "address", "vat_id")


class SourceAccount(BaseModel):
    """One account as one source system describes it."""

    model_config = ConfigDict(frozen=True)

    source: Source
    source_id: str
    name: str
    domain: str = ""
    country: str = ""
    region: str = ""
    industry: str = ""
    csm: str = ""
    phone: str = ""
    address: str = ""
    vat_id: str = ""
    size_band: str = ""
    tier: str = ""
    currency: str = ""
    annual_value: float | None = None
    term_value: float | None = None
    term_months: int | None = None
    renewal_date: date | None = None
    start_date: date | None = None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise InvalidRecordError("nested values are not accepted")
    text = str(value).strip()
    if "\x00" in text:
        raise InvalidRecordError("a value contains a NUL character")
    return text


def _number(field: str, value: str) -> float | None:
    if value == "":
        return None
    try:
        number = float(value.replace(",", "")) if isinstance(value, str) else float(value)
    except ValueError:
        raise InvalidRecordError(f"{field} is not a number: {value!r}") from None
    if number != number or number < 0:
        raise InvalidRecordError(f"{field} must be a non-negative number: {value!r}")
    return number


def _date(field: str, value: str) -> date | None:
    if value == "":
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise InvalidRecordError(f"{field} is not a date (YYYY-MM-DD): {value!r}") from None


def parse_record(source: Source, row: dict[str, Any]) -> SourceAccount:
    """The canonical form of one raw row from ``source``.

    Raises:
        InvalidRecordError: no id, no name, or a value that does not parse.
    """
    if not isinstance(row, dict):
        raise InvalidRecordError("a record must be an object of column: value")
    for key, value in row.items():
        if not isinstance(key, str) or "\x00" in key or len(key) > 200:
            raise InvalidRecordError("column names must be text without NUL, at most 200 long")
        _text(value)
    aliases = COLUMN_ALIASES[source]
    values: dict[str, str] = {}
    for canonical, columns in aliases.items():
        for column in columns:
            if column in row:
                values[canonical] = _text(row[column])
                break
    source_id = values.get("source_id", "")
    if not source_id:
        raise InvalidRecordError(f"missing id (one of {', '.join(aliases['source_id'])})")
    if len(source_id) > 200:
        raise InvalidRecordError("id longer than 200 characters")
    if not values.get("name"):
        raise InvalidRecordError(f"missing name (one of {', '.join(aliases['name'])})")
    term = _number("term_months", values.pop("term_months", ""))
    return SourceAccount(
        source=source,
        source_id=source_id,
        name=values.pop("name"),
        annual_value=_number("annual_value", values.pop("annual_value", "")),
        term_value=_number("term_value", values.pop("term_value", "")),
        term_months=int(term) if term else None,
        renewal_date=_date("renewal_date", values.pop("renewal_date", "")),
        start_date=_date("start_date", values.pop("start_date", "")),
        **{k: v for k, v in values.items() if k != "source_id"},
    )
