"""EPCIS event fields: times and offsets, strings and lists as the parser needs them, places
(readPoint/bizLocation, the document's master data). A field that cannot be used raises
RecordRejected with its name relative to the event ("eventTime", "bizTransactionList/0")."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

from warehouses.parsers.base import RecordRejected


@dataclass(frozen=True, slots=True)
class Place:
    name: str = ""
    locode: str = ""
    country: str = ""
    latitude: float | None = None
    longitude: float | None = None


@dataclass(slots=True)
class DocumentContext:
    """What every event of a document shares."""

    validated: bool
    places: dict[str, Place] = field(default_factory=dict)


# RFC 3339 date-time; the offset is optional here so that a naive eventTime can be recognised
# (the schema requires one, but without the schema the parser still has to cope).
TIME_RE: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?([Zz]|[+-]\d{2}:\d{2})?"
)
_OFFSET_RE: Final = re.compile(r"([+-])(\d{2}):(\d{2})")


def _parse_offset(value: str, where: str) -> timezone:
    match = _OFFSET_RE.fullmatch(value)
    if not match or int(match.group(2)) > 14 or int(match.group(3)) > 59:
        raise RecordRejected(f"invalid time zone offset {value!r}", field=where)
    sign = -1 if match.group(1) == "-" else 1
    delta = timedelta(hours=int(match.group(2)), minutes=int(match.group(3)))
    return timezone(sign * delta)


def parse_time(value: str, where: str) -> datetime:
    """The datetime of an RFC 3339 value; aware when the value has an offset, else naive."""
    match = TIME_RE.fullmatch(value)
    if not match:
        raise RecordRejected(f"invalid date-time {value!r}", field=where)
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = (match.group(7) or "").ljust(6, "0")[:6]
    offset_text = match.group(8) or ""
    tz: timezone | None = None
    if offset_text.upper() == "Z":
        tz = UTC
    elif offset_text:
        tz = _parse_offset(offset_text, where)
    try:
        when = datetime(year, month, day, hour, minute, second, int(fraction), tzinfo=tz)
    except ValueError as exc:
        raise RecordRejected(f"impossible date-time {value!r}: {exc}", field=where) from exc
    return when


def event_time_of(event: dict[str, Any]) -> tuple[datetime, dict[str, object]]:
    value = event.get("eventTime")
    if not isinstance(value, str):
        raise RecordRejected("event without eventTime", field="eventTime")
    when = parse_time(value, "eventTime")
    offset_value = event.get("eventTimeZoneOffset")
    extra: dict[str, object] = {}
    if offset_value is None:
        if when.tzinfo is not None:
            extra["tz_source"] = "explicit"
        return when, extra
    if not isinstance(offset_value, str):
        raise RecordRejected("eventTimeZoneOffset is not a string", field="eventTimeZoneOffset")
    local = _parse_offset(offset_value, "eventTimeZoneOffset")
    extra["local_offset"] = offset_value
    if when.tzinfo is None:
        extra["tz_source"] = "separate_field"
        return when.replace(tzinfo=local), extra
    extra["tz_source"] = "explicit"
    own = when.utcoffset()
    extra["offset_disagrees"] = bool(own) and own != local.utcoffset(None)
    try:
        return when.astimezone(local), extra
    except OverflowError as exc:  # year 1 or 9999 shifted out of range
        raise RecordRejected(f"eventTime {value!r} out of range", field="eventTime") from exc


def optional_str(event: Mapping[str, Any], key: str) -> str:
    value = event.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordRejected(f"{key} is not a string", field=key)
    return value.strip()


def str_list(event: Mapping[str, Any], key: str) -> list[str]:
    value = event.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise RecordRejected(f"{key} is not a list of identifiers", field=key)
    return list(dict.fromkeys(v.strip() for v in value))


def location_id(event: Mapping[str, Any], key: str) -> str:
    value = event.get(key)
    if value is None:
        return ""
    if not isinstance(value, dict) or not isinstance(value.get("id"), str):
        raise RecordRejected(f"{key} has no id", field=key)
    return str(value["id"]).strip()


def biz_transactions(event: Mapping[str, Any]) -> list[dict[str, str]]:
    value = event.get("bizTransactionList")
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecordRejected("bizTransactionList is not a list", field="bizTransactionList")
    result = []
    for index, entry in enumerate(value):
        if not isinstance(entry, dict) or not isinstance(entry.get("bizTransaction"), str):
            raise RecordRejected(
                "bizTransaction without an id", field=f"bizTransactionList/{index}"
            )
        kind = entry.get("type", "")
        if not isinstance(kind, str):
            raise RecordRejected(
                "bizTransaction type is not a string", field=f"bizTransactionList/{index}"
            )
        result.append({"type": kind, "id": entry["bizTransaction"].strip()})
    return result


_LOCODE_IN_ID_RE: Final = re.compile(r".*locode[:/=]+([A-Za-z]{2}) ?([A-Za-z2-9]{3})", re.I)
_LOCODE_RE: Final = re.compile(r"([A-Za-z]{2}) ?([A-Za-z2-9]{3})")
# A readPoint/bizLocation given as a geo URI (RFC 5870, "geo:lat,lon[,alt][;params]"): the
# gazetteer reads the zone there when a time has none (EPCIS times normally carry an offset).
_GEO_RE: Final = re.compile(
    r"geo:([-+]?\d{1,2}(?:\.\d+)?),([-+]?\d{1,3}(?:\.\d+)?)(?:[,;]|$)", re.I
)


def place_of(location_id: str, ctx: DocumentContext) -> Place:
    if not location_id:
        return Place()
    known = ctx.places.get(location_id, Place())
    locode = known.locode
    if not locode and (match := _LOCODE_IN_ID_RE.fullmatch(location_id)):
        locode = (match.group(1) + match.group(2)).upper()
    country = known.country or locode[:2]
    latitude = longitude = None
    if match := _GEO_RE.match(location_id):
        latitude, longitude = float(match.group(1)), float(match.group(2))
    return Place(
        name=known.name or location_id,
        locode=locode,
        country=country,
        latitude=latitude,
        longitude=longitude,
    )


def master_data_places(doc: Mapping[str, Any]) -> dict[str, Place]:
    """Location names from epcisHeader.epcisMasterData (vocabulary of ReadPoint/BusinessLocation).

    Attributes are matched on their last name part (`urn:epcglobal:cbv:mda#name`,
    `cbvmda:name`): name, countryCode, and unlocode/locode (not a CBV attribute, but the obvious
    spelling of one, used by our partners). Malformed master data is ignored: it only adds names.
    """
    places: dict[str, Place] = {}
    header = doc.get("epcisHeader")
    master = header.get("epcisMasterData") if isinstance(header, dict) else None
    vocabularies = master.get("vocabularyList") if isinstance(master, dict) else None
    if not isinstance(vocabularies, list):
        return places
    for vocabulary in vocabularies:
        if not isinstance(vocabulary, dict):
            continue
        elements = vocabulary.get("vocabularyElementList")
        for element in elements if isinstance(elements, list) else []:
            if not isinstance(element, dict) or not isinstance(element.get("id"), str):
                continue
            values: dict[str, str] = {}
            attributes = element.get("attributes")
            for attribute in attributes if isinstance(attributes, list) else []:
                if isinstance(attribute, dict) and isinstance(attribute.get("id"), str):
                    name = re.split(r"[#:/]", attribute["id"])[-1].lower()
                    if isinstance(attribute.get("attribute"), str):
                        values[name] = attribute["attribute"].strip()
            locode = values.get("unlocode") or values.get("locode") or ""
            locode_match = _LOCODE_RE.fullmatch(locode)
            code = (locode_match.group(1) + locode_match.group(2)).upper() if locode_match else ""
            country = values.get("countrycode", "").upper()[:2] or code[:2]
            places[element["id"].strip()] = Place(
                name=values.get("name", ""), locode=code, country=country
            )
    return places
