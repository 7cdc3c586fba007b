"""EPCIS events -> Records: ObjectEvent, AggregationEvent (ADD/DELETE/OBSERVE), TransactionEvent,
and an event carrying an errorDeclaration (a retraction); see the package docstring."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from warehouses.parsers.base import ParseItem, Record, RecordError, RecordRejected
from warehouses.parsers.epcis.codes import (
    cbv_name,
    event_code_of,
    purchase_orders,
    required_code,
)
from warehouses.parsers.epcis.fields import (
    DocumentContext,
    Place,
    biz_transactions,
    event_time_of,
    location_id,
    optional_str,
    parse_time,
    place_of,
    str_list,
)
from warehouses.parsers.epcis.identifiers import epc_to_key

_SUPPORTED_TYPES: Final = ("ObjectEvent", "AggregationEvent", "TransactionEvent")


def event_items(
    event: dict[str, Any], line: int, raw: str, ctx: DocumentContext
) -> list[ParseItem]:
    kind = event.get("type")
    if not isinstance(kind, str):
        raise RecordRejected("event without a type", field="type")
    if "errorDeclaration" in event:
        return [_retraction(event, line, raw, ctx)]
    if kind not in _SUPPORTED_TYPES:
        raise RecordRejected(f"unsupported EPCIS event type {kind!r}", field="type")
    common = _common(event, line, raw, ctx)
    if kind == "ObjectEvent":
        return _object_event(event, common)
    if kind == "AggregationEvent":
        return _aggregation_event(event, common)
    return _transaction_event(event, common)


@dataclass(slots=True)
class _Common:
    line: int
    raw: str
    event_time: datetime
    place: Place
    transactions: list[dict[str, str]]
    extra: dict[str, object]

    def record(self, **values: Any) -> Record:
        # Deep-copied so that changing one Record's extra cannot change its siblings'.
        extra = copy.deepcopy(self.extra)
        extra.update(values.pop("extra", {}))
        return Record(
            line=self.line,
            raw=self.raw,
            location_name=self.place.name,
            location_code=self.place.locode,
            country=self.place.country,
            latitude=self.place.latitude,
            longitude=self.place.longitude,
            extra=extra,
            **values,
        )


def _common(event: dict[str, Any], line: int, raw: str, ctx: DocumentContext) -> _Common:
    extra: dict[str, object] = {
        "event_type": event["type"],
        "schema_validated": ctx.validated,
    }
    event_id = optional_str(event, "eventID")
    if event_id:
        extra["event_id"] = event_id
    for key, name in (
        ("action", "action"),
        ("bizStep", "biz_step"),
        ("disposition", "disposition"),
    ):
        value = optional_str(event, key)
        if value:
            extra[name] = value
    when, time_extra = event_time_of(event)
    extra.update(time_extra)
    read_point = location_id(event, "readPoint")
    biz_location = location_id(event, "bizLocation")
    if read_point:
        extra["read_point"] = read_point
    if biz_location:
        extra["biz_location"] = biz_location
    place = place_of(read_point or biz_location, ctx)
    transactions = biz_transactions(event)
    if transactions:
        extra["biz_transactions"] = transactions
    return _Common(
        line=line, raw=raw, event_time=when, place=place, transactions=transactions, extra=extra
    )


def _object_event(event: dict[str, Any], common: _Common) -> list[ParseItem]:
    epcs = str_list(event, "epcList")
    if not epcs:
        return []  # quantityList only: class-level quantities name no parcel
    code = required_code(event)
    order = _single_purchase_order(common)
    return [
        common.record(
            kind="event",
            tracking_number=epc,
            **code.values(),
            event_time=common.event_time,
            order_number=order,
            extra={"epc_key": epc_to_key(epc)},
        )
        for epc in epcs
    ]


def _aggregation_event(event: dict[str, Any], common: _Common) -> list[ParseItem]:
    action = event.get("action")
    parent = optional_str(event, "parentID")
    children = str_list(event, "childEPCs")
    if action == "OBSERVE" and not parent:
        return _object_event({**event, "epcList": children}, common)
    if not parent:
        raise RecordRejected(f"AggregationEvent {action} without parentID", field="parentID")
    unit = {"unit_id": parent, "extra": {"unit_key": epc_to_key(parent)}}
    if action == "OBSERVE":
        code = required_code(event)
        return [
            common.record(
                kind="event",
                **code.values(),
                event_time=common.event_time,
                unit_id=parent,
                extra={"unit_key": epc_to_key(parent), "child_epcs": children},
            )
        ]
    if action not in ("ADD", "DELETE"):
        raise RecordRejected(f"unknown action {action!r}", field="action")
    items: list[ParseItem] = []
    times = (
        {"event_time": common.event_time} if action == "ADD" else {"unloaded_at": common.event_time}
    )
    members = children or ([""] if action == "DELETE" else [])
    for child in members:
        extra: dict[str, object] = {"action": action, "unit_key": epc_to_key(parent)}
        if child:
            extra["epc_key"] = epc_to_key(child)
        else:
            extra["all_children"] = True
        items.append(
            common.record(
                kind="membership",
                unit_id=parent,
                tracking_number=child,
                extra=extra,
                **times,
            )
        )
    try:
        unit_code = event_code_of(event)
    except RecordRejected as rejected:
        items.append(RecordError(common.line, common.raw, rejected.reason, rejected.field))
        return items
    # A load or unload is an event on the unit too when its step is one (or is outside the CBV,
    # for the feed's mapping and policy to decide); a CBV step that tracks nothing adds none.
    if unit_code.tracked:
        items.append(
            common.record(
                kind="event",
                **unit_code.values(),
                event_time=common.event_time,
                **unit,
            )
        )
    return items


def _transaction_event(event: dict[str, Any], common: _Common) -> list[ParseItem]:
    epcs = str_list(event, "epcList")
    parent = optional_str(event, "parentID")
    orders = purchase_orders(common.transactions)
    unit_extra: dict[str, object] = {"unit_key": epc_to_key(parent)} if parent else {}
    items: list[ParseItem] = []
    for order in orders:
        for epc in epcs or ([""] if parent else []):
            extra = dict(unit_extra)
            if epc:
                extra["epc_key"] = epc_to_key(epc)
            items.append(
                common.record(
                    kind="shipment",
                    tracking_number=epc,
                    unit_id=parent,
                    order_number=order,
                    event_time=common.event_time,
                    extra=extra,
                )
            )
    try:
        code = event_code_of(event)
    except RecordRejected as rejected:
        items.append(RecordError(common.line, common.raw, rejected.reason, rejected.field))
        return items
    if code.tracked:
        order = _single_purchase_order(common)
        for epc in epcs:
            items.append(
                common.record(
                    kind="event",
                    tracking_number=epc,
                    **code.values(),
                    event_time=common.event_time,
                    unit_id=parent,
                    order_number=order,
                    extra={"epc_key": epc_to_key(epc), **unit_extra},
                )
            )
    if not items and (epcs or parent):
        partner = optional_str(event, "bizStep") or optional_str(event, "disposition")
        step = f"its bizStep/disposition {partner!r} is not a parcel tracking event"
        raise RecordRejected(
            "TransactionEvent links no purchase order (po) and "
            + (step if partner else "has no bizStep"),
            field="bizTransactionList",
        )
    return items


def _retraction(event: dict[str, Any], line: int, raw: str, ctx: DocumentContext) -> Record:
    declaration = event["errorDeclaration"]
    if not isinstance(declaration, dict):
        raise RecordRejected("errorDeclaration is not an object", field="errorDeclaration")
    event_id = optional_str(event, "eventID")
    if not event_id:
        raise RecordRejected(
            "errorDeclaration without an eventID cannot name the event it retracts", field="eventID"
        )
    declared = declaration.get("declarationTime")
    if not isinstance(declared, str):
        raise RecordRejected("errorDeclaration without declarationTime", field="errorDeclaration")
    when = parse_time(declared, "errorDeclaration/declarationTime")
    corrective = declaration.get("correctiveEventIDs", [])
    if not isinstance(corrective, list) or not all(isinstance(c, str) for c in corrective):
        raise RecordRejected("correctiveEventIDs is not a list of ids", field="errorDeclaration")
    reason = declaration.get("reason", "")
    if not isinstance(reason, str):
        raise RecordRejected(
            "errorDeclaration reason is not a string", field="errorDeclaration/reason"
        )
    reason = cbv_name(reason.strip(), "er")
    return Record(
        line=line,
        raw=raw,
        kind="retraction",
        event_time=when,
        description=f"error declaration: {reason}" if reason else "error declaration",
        extra={
            "event_id": event_id,
            "event_type": event["type"],
            "corrective_event_ids": list(corrective),
            "reason": reason,
            "declaration_time": declared,
            "schema_validated": ctx.validated,
        },
    )


def _single_purchase_order(common: _Common) -> str:
    orders = purchase_orders(common.transactions)
    return orders[0] if len(orders) == 1 else ""
