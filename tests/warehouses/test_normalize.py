"""The normalizer on its own (no database): reasons stay exact when lookups are remembered."""

from __future__ import annotations

from warehouses.normalize.context import FeedContext
from warehouses.normalize.events import normalize_event
from warehouses.parsers.base import Record, RecordError

CTX = FeedContext(
    warehouse_timezone="Asia/Shanghai",
    warehouse_name="Heihe bonded warehouse",
    warehouse_city="Heihe",
    warehouse_locode="CNHEK",
)


def row(line: int, **values: str) -> Record:
    base = {"tracking_number": "BN1", "partner_code": "departed", "event_time": "2026-05-01 10:00"}
    return Record(line=line, raw=f"line {line}", **{**base, **values})  # type: ignore[arg-type]


def test_a_repeated_bad_code_gets_the_same_reason_on_every_line() -> None:
    ctx = FeedContext(warehouse_timezone="Asia/Shanghai")
    results = [normalize_event(row(n, partner_code="ZZ9"), ctx) for n in (2, 3)]
    assert results == [
        RecordError(
            line=n,
            raw=f"line {n}",
            field="event_code",
            reason="unknown partner code 'ZZ9': map 'ZZ9' to an event code in the feed's code "
            "mapping, or set the feed's unknown-code policy to exception",
            unknown_code="ZZ9",
        )
        for n in (2, 3)
    ]


def test_a_repeated_bad_time_zone_gets_the_same_reason_on_every_line() -> None:
    for line in (2, 3):
        result = normalize_event(row(line, time_zone="Mars/Olympus"), CTX)
        assert isinstance(result, RecordError)
        assert (result.line, result.field) == (line, "time_zone")
        assert "unknown time zone 'Mars/Olympus'" in result.reason


def test_local_times_in_a_dst_gap_or_overlap_are_rejected_every_time() -> None:
    gap = row(2, event_time="2026-03-29 02:30:00", time_zone="Europe/Warsaw")
    overlap = row(3, event_time="2026-10-25 02:30:00", time_zone="Europe/Warsaw")
    for _ in range(2):
        first, second = normalize_event(gap, CTX), normalize_event(overlap, CTX)
        assert isinstance(first, RecordError) and isinstance(second, RecordError)
        assert (first.field, second.field) == ("event_time", "event_time")
        assert "does not exist in Europe/Warsaw" in first.reason
        assert "is ambiguous in Europe/Warsaw" in second.reason


def test_the_first_zone_known_decides_even_when_it_is_wrong() -> None:
    # An offset-less time at a known place: the record's own zone wins over the place's,
    # and a broken record zone is an error, never a reason to fall back to the place.
    moscow = normalize_event(row(2, time_zone="Europe/Moscow", location_code="CNHEK"), CTX)
    assert not isinstance(moscow, RecordError)
    assert (moscow.tz_source, moscow.utc_offset_minutes) == ("separate_field", 180)
    broken = normalize_event(row(3, time_zone="+19:00", location_code="CNHEK"), CTX)
    assert isinstance(broken, RecordError) and broken.field == "time_zone"
    assert broken.reason == "offset '+19:00' is out of range"
    place = normalize_event(row(4, location_code="rubqs"), CTX)
    assert not isinstance(place, RecordError)
    assert (place.tz_source, place.utc_offset_minutes, place.country) == ("locode", 540, "RU")


def test_epoch_and_export_formats_still_parse() -> None:
    epoch = normalize_event(row(2, event_time="1777629600"), CTX)
    assert not isinstance(epoch, RecordError) and epoch.tz_source == "explicit"
    dotted = normalize_event(row(3, event_time="01.05.2026 10:00"), CTX)
    assert not isinstance(dotted, RecordError)
    assert dotted.occurred_at.isoformat() == "2026-05-01T02:00:00+00:00"


def test_remembered_tracking_numbers_never_change_an_outcome() -> None:
    # Each record normalized with a context that has seen every record before it, and with a
    # fresh one: the same event or the same reject, whatever the order of good and bad numbers.
    numbers = [" bn 001 ", "BN001", "bn001", "??", "", "X", "BN002", "??", " bn 001 ", "B" * 70]
    mapping = {"ALIAS-7": "bn 003"}
    records = [row(n, tracking_number=number) for n, number in enumerate(numbers, start=2)]
    records.append(row(20, tracking_number="ALIAS-7"))
    records.append(row(21, tracking_number="ALIAS-7"))
    remembering = FeedContext(warehouse_timezone="Asia/Shanghai", identifier_mapping=mapping)
    for record in records:
        fresh = FeedContext(warehouse_timezone="Asia/Shanghai", identifier_mapping=mapping)
        assert normalize_event(record, remembering) == normalize_event(record, fresh)
    outcomes = [normalize_event(record, remembering) for record in records]
    kept = [o.tracking_number for o in outcomes if not isinstance(o, RecordError)]
    assert kept == ["BN001", "BN001", "BN001", "BN002", "BN001", "BN003", "BN003"]
    assert set(remembering.tracking_memo.values()) == {"BN001", "BN002", "BN003"}
