"""Feed files from `lanes.Row`s, in each demo feed's own format (docs/formats.md).

- hub CSV (`heihe-inbox`, `la-upload`): naive local times; the LOCODE gives the zone;
- partner CSV in GB18030 (`suifenhe-wms`): its Chinese columns and codes, China time;
- JSON Lines (`harbin-air-json`, `blagoveshchensk-json`, `duisburg-json`): times with offsets;
- unit manifests (`suifenhe-manifest`): loads, and later the same rows with `unloaded_at`;
- CEB export messages (`heihe-customs`, `suifenhe-customs`): one message per payload, 303
  orders, 403 payment receipts, 505 waybills, 603 inventories and 604 inventory receipts.

`BAD_ROWS` holds the malformed lines a partner sends now and then, one per format.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from warehouses.demo.lanes import Row
from warehouses.normalize.places import LOCODES

CHINA = ZoneInfo("Asia/Shanghai")
HUB_HEADER = (
    "tracking_number,event_code,event_time,time_zone,location_name,location_code,country,"
    "description,order_number,carrier,transport_mode,unit_id"
)
WMS_HEADER = "运单号,状态,操作时间,地点,集装箱号,运输方式"
MANIFEST_HEADER = "unit_id,unit_kind,tracking_number,loaded_at,unloaded_at"

# What a partner gets wrong now and then: the reasons the admin's rejects show.
BAD_ROWS = {
    "hub-csv": ",warehouse_received,2026-05-01 09:00:00,,Heihe bonded warehouse,CNHEK,CN,,,,road,",
    "wms": "SFH000000000CN,入库,2026-13-45 25:00,Suifenhe,,rail",
    "json": '{"tracking_number": "HRB0000000US", "event_code": "arrived", '
    '"event_time": "2026-05-01T09:00:00+08:00", "location_code": "CNHRB", '
    '"transport_mode": "teleport"}',
    "manifest": "TKRU0000000,container,SFH000000000CN,soon,",
}


def _local(row: Row) -> datetime:
    place = LOCODES.get(str(row.fields.get("location_code", "")))
    return row.at.astimezone(ZoneInfo(place.timezone) if place else CHINA)


def _csv_value(value: object) -> str:
    text = str(value)
    return f'"{text}"' if "," in text else text


def hub_csv(rows: Sequence[Row], bad: bool) -> bytes:
    lines = [HUB_HEADER]
    for row in rows:
        f = row.fields
        values = [
            f["tracking_number"], f["event_code"], f"{_local(row):%Y-%m-%d %H:%M:%S}", "",
            f.get("location_name", ""), f.get("location_code", ""), f.get("country", ""), "",
            f.get("order_number", ""), "", f.get("transport_mode", ""), f.get("unit_id", ""),
        ]  # fmt: skip
        lines.append(",".join(_csv_value(v) for v in values))
    if bad:
        lines.append(BAD_ROWS["hub-csv"])
    return ("\n".join(lines) + "\n").encode()


def wms_csv(rows: Sequence[Row], bad: bool) -> bytes:
    lines = [WMS_HEADER]
    for row in rows:
        f = row.fields
        when = f"{row.at.astimezone(CHINA):%Y-%m-%d %H:%M:%S}"
        lines.append(
            f"{f['tracking_number']},{f['event_code']},{when},{f['location_name']},"
            f"{f.get('unit_id', '')},{f.get('transport_mode', '')}"
        )
    if bad:
        lines.append(BAD_ROWS["wms"])
    return ("\n".join(lines) + "\n").encode("gb18030")


_JSON_FIELDS = ("tracking_number", "event_code", "location_code", "location_name", "country",
                "transport_mode", "order_number", "unit_id", "unit_kind")  # fmt: skip


def json_lines(rows: Sequence[Row], bad: bool) -> bytes:
    lines = []
    for row in rows:
        item = {k: row.fields[k] for k in _JSON_FIELDS if row.fields.get(k)}
        item["event_time"] = _local(row).isoformat(timespec="seconds")
        lines.append(json.dumps(item, ensure_ascii=False))
    if bad:
        lines.append(BAD_ROWS["json"])
    return ("\n".join(lines) + "\n").encode()


def manifest_csv(rows: Sequence[Row], bad: bool) -> bytes:
    lines = [MANIFEST_HEADER]
    for row in rows:
        f = row.fields
        unloaded = f.get("unloaded_at")
        lines.append(
            f"{f['unit_id']},container,{f['tracking_number']},"
            f"{f['loaded_at'].astimezone(CHINA).isoformat(timespec='seconds')},"
            f"{unloaded.isoformat(timespec='seconds') if unloaded else ''}"
        )
    if bad:
        lines.append(BAD_ROWS["manifest"])
    return ("\n".join(lines) + "\n").encode()


# --- CEB ----------------------------------------------------------------------------------------

_COMPANY = {"ebpCode": "2301960001", "ebpName": "黑龙江跨境电商平台", "ebcCode": "2301960002",
            "ebcName": "龙江优品贸易有限公司"}  # fmt: skip
_CARRIER = {"logisticsCode": "2301980003", "logisticsName": "龙江国际物流有限公司"}
_COUNTRY_CODES = {"RU": "344", "DE": "304", "PL": "327"}  # customs' country codes
_RETURN_INFO = {"500": "查验 inspection", "800": "放行 released"}


def _ceb_time(at: datetime, millis: bool = False) -> str:
    text = f"{at.astimezone(CHINA):%Y%m%d%H%M%S}"
    return text + "000" if millis else text


def _elements(values: dict[str, object]) -> str:
    return "".join(f"<ceb:{k}>{escape(str(v))}</ceb:{k}>" for k, v in values.items())


def _declared(row: Row) -> dict[str, object]:
    return {"guid": uuid.uuid5(uuid.NAMESPACE_URL, f"{row.kind}:{row.fields['order_no']}"),
            "appType": 1, "appTime": _ceb_time(row.at), "appStatus": 2}  # fmt: skip


def _order(row: Row, feed: str) -> str:
    f = row.fields
    head = {**_declared(row), "orderType": "E", "orderNo": f["order_no"], **_COMPANY,
            "goodsValue": f["goods_value"], "freight": f["freight"], "currency": 142,
            "consignee": f["consignee"]}  # fmt: skip
    item = {"gnum": 1, "itemNo": "LJ-001", "itemName": "商品", "qty": 1,
            "price": f["goods_value"], "totalPrice": f["goods_value"]}  # fmt: skip
    return (
        f"<ceb:Order><ceb:OrderHead>{_elements(head)}</ceb:OrderHead>"
        f"<ceb:OrderList>{_elements(item)}</ceb:OrderList></ceb:Order>"
    )


def _payment(row: Row, feed: str) -> str:
    f = row.fields
    body = {**_declared(row), **_COMPANY, "orderNo": f["order_no"], "payCode": "2301990004",
            "payName": "龙江支付", "payNo": f"P{f['order_no']}", "charge": f["charge"],
            "currency": 142, "accountingDate": _ceb_time(row.at)}  # fmt: skip
    return f"<ceb:Receipts>{_elements(body)}</ceb:Receipts>"


def _waybill(row: Row, feed: str) -> str:
    f = row.fields
    body = {**_declared(row), **_CARRIER, "logisticsNo": f["tracking_number"],
            "orderNo": f["order_no"], "freight": 0, "insuredFee": 0, "currency": 142,
            "grossWeight": f["weight"], "packNo": 1, "goodsInfo": "包裹",
            "consignee": f["consignee"], "country": _COUNTRY_CODES[f["country"]]}  # fmt: skip
    return f"<ceb:Logistics>{_elements(body)}</ceb:Logistics>"


def _inventory(row: Row, feed: str) -> str:
    f = row.fields
    order = f["order_no"]
    head = {**_declared(row), "customsCode": "1900", **_COMPANY, "orderNo": order, **_CARRIER,
            "logisticsNo": f["tracking_number"], "copNo": f"C{order}", "invtNo": f"I{order}",
            "ieFlag": "E", "tradeMode": "9610", "country": _COUNTRY_CODES[f["country"]],
            "fCurrency": 142, "iCurrency": 142}  # fmt: skip
    head_xml = f"<ceb:InventoryHead>{_elements(head)}</ceb:InventoryHead>"
    return f"<ceb:Inventory>{head_xml}</ceb:Inventory>"


def _receipt(row: Row, feed: str) -> str:
    f = row.fields
    order = f["order_no"]
    status = str(f["status"])
    body = {"guid": uuid.uuid5(uuid.NAMESPACE_URL, f"receipt:{order}:{status}"),
            "agentCode": "2301980003", "copNo": f"C{order}", "invtNo": f"I{order}",
            "orderNo": order, "returnStatus": status, "returnTime": _ceb_time(row.at, True),
            "returnInfo": _RETURN_INFO.get(status, "")}  # fmt: skip
    return f"<ceb:InventoryReturn>{_elements(body)}</ceb:InventoryReturn>"


# kind -> (message number, record renderer)
CEB_MESSAGES: dict[str, tuple[int, Callable[[Row, str], str]]] = {
    "order": (303, _order),
    "payment": (403, _payment),
    "waybill": (505, _waybill),
    "inventory": (603, _inventory),
    "receipt": (604, _receipt),
}
# A payment without its amount: customs (and the hub) refuse it.
_BAD_PAYMENT = (
    "<ceb:Receipts><ceb:appTime>20260501090000</ceb:appTime><ceb:orderNo>X1</ceb:orderNo>"
    "<ceb:currency>142</ceb:currency></ceb:Receipts>"
)


def ceb_message(kind: str, feed: str, rows: Sequence[Row], bad: bool) -> bytes:
    number, render = CEB_MESSAGES[kind]
    records = [render(row, feed) for row in rows]
    if bad and kind == "payment":
        records.append(_BAD_PAYMENT)
    guid = uuid.uuid5(uuid.NAMESPACE_URL, f"{feed}:{kind}:{rows[0].fields['order_no']}")
    body = "\n".join(records)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<ceb:CEB{number}Message guid="{guid}" version="1.0" '
        f'xmlns:ceb="http://www.chinaport.gov.cn/ceb">\n{body}\n</ceb:CEB{number}Message>\n'
    ).encode()


# feed code -> (file extension, renderer of one file of event/load rows)
RENDERERS: dict[str, tuple[str, Callable[[Sequence[Row], bool], bytes]]] = {
    "heihe-inbox": ("csv", hub_csv),
    "la-upload": ("csv", hub_csv),
    "suifenhe-wms": ("csv", wms_csv),
    "harbin-air-json": ("jsonl", json_lines),
    "blagoveshchensk-json": ("jsonl", json_lines),
    "duisburg-json": ("jsonl", json_lines),
    "suifenhe-manifest": ("csv", manifest_csv),
}


def render(feed: str, kind: str, rows: Sequence[Row], bad: bool) -> tuple[str, bytes]:
    """(file extension, bytes) of one payload of `feed` carrying `rows` (all of one kind)."""
    if kind in CEB_MESSAGES:
        return "xml", ceb_message(kind, feed, rows, bad)
    extension, renderer = RENDERERS[feed]
    return extension, renderer(rows, bad)
