"""One CEB record element, flattened (its head's leaf fields and its *List children), with the
checked readers the message handlers use: a required field, a CEB time, a number, a currency or
country code. A field that cannot be used raises RecordRejected naming the field and its line."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from warehouses.parsers.base import Record, RecordRejected
from warehouses.parsers.ceb import codes

CEB_NS = "http://www.chinaport.gov.cn/ceb"
# The CEB specification defines every time as China time; China has one zone and no DST.
TIME_ZONE = "Asia/Shanghai"

_TIME_RE = re.compile(r"\d{14}(\d{3})?")

IMPORT_MESSAGES = frozenset(
    {311, 312, 411, 412, 511, 512, 513, 514, 621, 622, 623, 624, 625, 626, 711, 712}
)
EXPORT_MESSAGES = frozenset(
    {213, 214, 215, 216, 303, 304, 403, 404, 505, 506, 507, 508, 509, 510}
    | {603, 604, 605, 606, 607, 608, 701, 702, 792}
)

# CEB field -> extra key, for the references every record keeps when present.
_REFERENCES = {
    "guid": "guid",
    "orderNo": "order_no",
    "logisticsNo": "logistics_no",
    "copNo": "cop_no",
    "coElNo": "co_el_no",
    "preNo": "pre_no",
    "invtNo": "invt_no",
    "billNo": "bill_no",
    "rkdNo": "rkd_no",
    "sumNo": "sum_no",
    "payNo": "pay_no",
    "payTransactionId": "pay_transaction_id",
    "customsCode": "customs_code",
    "portCode": "port_code",
    "ebpCode": "ebp_code",
    "ebcCode": "ebc_code",
    "agentCode": "agent_code",
    "logisticsCode": "logistics_code",
    "payCode": "pay_code",
    "appType": "app_type",
    "appStatus": "app_status",
}


Fields = dict[str, tuple[str, int]]  # local name -> (text, line)


@dataclass(slots=True)
class Rec:
    """One record element, flattened: the head's leaf fields plus its *List children."""

    msg: int
    name: str
    line: int
    raw: str
    head: Fields
    lists: list[Fields] = field(default_factory=list)

    @property
    def direction(self) -> str:
        return "export" if self.msg in EXPORT_MESSAGES else "import"

    def text(self, name: str, fields: Fields | None = None) -> str:
        return (fields if fields is not None else self.head).get(name, ("", 0))[0]

    def line_of(self, name: str, fields: Fields | None = None) -> int:
        return (fields if fields is not None else self.head).get(name, ("", self.line))[1]

    def req(self, name: str, fields: Fields | None = None) -> str:
        value = self.text(name, fields)
        if not value:
            raise RecordRejected(
                f"{name} is missing or empty", field=name, line=self.line_of(name, fields)
            )
        return value

    def time(self, name: str, fields: Fields | None = None) -> datetime:
        value = self.req(name, fields)
        parsed = parse_time(value)
        if parsed is None:
            raise RecordRejected(
                f"{name} {value!r} is not a CEB time (YYYYMMDDhhmmss[fff])",
                field=name,
                line=self.line_of(name, fields),
            )
        return parsed

    def decimal(self, name: str) -> Decimal | None:
        value = self.text(name)
        if not value:
            return None
        try:
            number = Decimal(value)
        except InvalidOperation:
            number = Decimal("NaN")
        if not number.is_finite():
            raise RecordRejected(
                f"{name} {value!r} is not a number", field=name, line=self.line_of(name)
            )
        return number

    def currency(self, name: str, *, required: bool = False) -> str:
        value = self.req(name) if required else self.text(name)
        if not value:
            return ""
        try:
            return codes.currency_iso(value)
        except codes.CodeError as exc:
            raise RecordRejected(f"{name}: {exc}", field=name, line=self.line_of(name)) from exc

    def country(self, name: str) -> str:
        value = self.text(name)
        if not value:
            return ""
        try:
            return codes.country_iso(value)
        except codes.CodeError as exc:
            raise RecordRejected(f"{name}: {exc}", field=name, line=self.line_of(name)) from exc

    def references(self, fields: Fields | None = None) -> dict[str, object]:
        source = fields if fields is not None else self.head
        extra: dict[str, object] = {"message": f"CEB{self.msg}", "direction": self.direction}
        for ceb_name, key in _REFERENCES.items():
            value = source.get(ceb_name, ("", 0))[0]
            if value:
                extra[key] = value
        return extra

    def record(self, **kwargs: Any) -> Record:
        kwargs.setdefault("time_zone", TIME_ZONE)
        return Record(line=self.line, raw=self.raw, **kwargs)


def parse_time(value: str) -> datetime | None:
    """A naive China-time datetime from `YYYYMMDDhhmmss` or `YYYYMMDDhhmmssfff`, else None."""
    if not _TIME_RE.fullmatch(value):
        return None
    try:
        moment = datetime.strptime(value[:14], "%Y%m%d%H%M%S")
    except ValueError:
        return None
    if len(value) == 17:
        moment = moment.replace(microsecond=int(value[14:]) * 1000)
    return moment
