"""A record's parcel, unit and times as every applier reads them, and the reject they share."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from shipments.identifiers import (
    tracking_number_clean,
    tracking_number_problem,
    tracking_number_valid,
)
from warehouses.normalize.context import FeedContext
from warehouses.normalize.times import resolve_time
from warehouses.parsers.base import Record, RecordError, RecordRejected


def reject(record: Record, field_name: str, reason: str) -> RecordError:
    return RecordError(line=record.line, raw=record.raw, field=field_name, reason=reason)


def text(value: object) -> str:
    return "" if value is None else str(value).strip()


def parcel(record: Record, ctx: FeedContext) -> str:
    """The tracking number a record names, through the feed's identifier mapping.

    Parcels: the feed's identifier_mapping is looked up by the identifier as given and then by
    its EPC key (`sscc:<digits>`, `sgtin:<gtin>.<serial>`); otherwise the identifier itself,
    cleaned.
    """
    given = record.tracking_number.strip()
    key = str(record.extra.get("epc_key") or "")
    mapped = ctx.identifier_mapping.get(given) or (ctx.identifier_mapping.get(key) if key else "")
    tracking = tracking_number_clean(mapped or given)
    if tracking and not tracking_number_valid(tracking):
        raise RecordRejected(
            f"{tracking_number_problem(tracking)} "
            "(map long identifiers such as EPCs in the feed's identifier mapping)",
            field="tracking_number",
        )
    return tracking


def unit_number(record: Record, ctx: FeedContext) -> str:
    """The unit a record names: its unit_id as given, except EPCIS parentIDs, stored under their
    canonical key (`sscc:106141412345678908`) so every spelling of an SSCC is one unit; the
    feed's identifier_mapping may rename either."""
    given = record.unit_id.strip()
    key = str(record.extra.get("unit_key") or "")
    mapped = ctx.identifier_mapping.get(given) or (ctx.identifier_mapping.get(key) if key else "")
    number = mapped or key or given
    if len(number) > 100:
        raise RecordRejected(
            f"unit id is {len(number)} characters, the limit is 100", field="unit_id"
        )
    return number


def instant(record: Record, ctx: FeedContext, value: str | datetime | None, name: str) -> datetime:
    """An aware UTC instant for one of the record's times, resolved like event times."""
    probe = dataclasses.replace(record, event_time=value)
    try:
        moment, _ = resolve_time(probe, ctx)
        return moment.astimezone(UTC)
    except RecordRejected as exc:
        field_name = name if exc.field == "event_time" else exc.field
        reason = exc.reason.replace("event time", name.replace("_", " "))
        raise RecordRejected(reason, field=field_name) from exc
    except OverflowError as exc:  # year 1 or 9999 moved past the calendar by its offset
        raise RecordRejected(
            f"{name.replace('_', ' ')} {value!s:.40} is out of range in UTC", field=name
        ) from exc
