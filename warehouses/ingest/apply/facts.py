"""Shipment facts (order number, carrier, countries, weight): shipments upserted, blanks filled."""

from __future__ import annotations

from collections.abc import Sequence

from shipments.recording import ShipmentFacts, shipments_upsert
from warehouses.ingest.apply.values import parcel, text
from warehouses.normalize.context import FeedContext
from warehouses.normalize.events import rejected
from warehouses.parsers.base import Record, RecordError, RecordRejected


def _shipment_facts(record: Record) -> ShipmentFacts:
    extra = record.extra
    direction = text(extra.get("direction"))
    country = record.country.strip().upper()
    origin = text(extra.get("origin_country")).upper()
    destination = text(extra.get("destination_country")).upper()
    if direction == "import":
        # A cross-border import declared to China customs is bound for China by definition.
        origin, destination = origin or country, destination or "CN"
    elif direction == "export":
        origin, destination = origin or "CN", destination or country
    order_number = record.order_number.strip()
    if len(order_number) > 64:
        raise RecordRejected(
            f"order number is {len(order_number)} characters, limit 64", field="order_number"
        )
    for name, value in (("origin_country", origin), ("destination_country", destination)):
        if value and (len(value) != 2 or not value.isalpha()):
            raise RecordRejected(f"country {value!r} is not an ISO 3166 alpha-2 code", field=name)
    return ShipmentFacts(
        order_number=order_number,
        carrier=record.carrier.strip()[:64],
        origin_country=origin,
        destination_country=destination,
        weight_kg=record.weight_kg,
    )


def shipments_apply(records: Sequence[Record], ctx: FeedContext) -> list[RecordError]:
    rejects: list[RecordError] = []
    facts: dict[str, ShipmentFacts] = {}
    for record in records:
        try:
            tracking = parcel(record, ctx)
            if not tracking:
                if record.unit_id:
                    raise RecordRejected(
                        f"purchase order {record.order_number!r} is linked to unit "
                        f"{record.unit_id!r} only; name the parcels (epcList) to link them",
                        field="epcList",
                    )
                raise RecordRejected(
                    "shipment record without a tracking number", field="tracking_number"
                )
            found = _shipment_facts(record)
        except RecordRejected as exc:
            rejects.append(rejected(record, exc))
            continue
        if tracking in facts:
            facts[tracking].merge(found)
        else:
            facts[tracking] = found
    shipments_upsert(facts=facts)
    return rejects
