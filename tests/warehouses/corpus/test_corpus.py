"""Issue 13, "How we will know": files other projects wrote, each with the events it must produce.

Every expectation below was written by reading the file and its standard, not by running the
code: the comment next to each one says how its UTC time, place and code were derived. Every
file goes through the real pipeline (`ingest`: parser, normalizer, recorder) on a feed of a
fulfilment warehouse in Los Angeles, so a local time that wrongly takes the receiving
warehouse's zone (America/Los_Angeles), or a place filled in from the warehouse, shows up as a
wrong UTC time or a wrong place.

Sources and licences of the files: tests/data/corpus/README.md (and tests/data/README.md for the
CEB samples, which live in tests/data/ceb/).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from django.core.management import call_command

from shipments.models import Shipment, TrackingEvent
from tests.conftest import FeedFactory, WarehouseFactory
from tests.samples import SAMPLES
from tests.warehouses.corpus import cases_ceb, cases_edifact, cases_epcis, cases_x12
from tests.warehouses.corpus.cases import LA, Case, Event
from warehouses.models import FeedRun, RejectedRecord, Warehouse

pytestmark = pytest.mark.django_db

Ingest = Callable[..., FeedRun]

CASES: dict[str, Case] = {
    **cases_x12.CASES,
    **cases_edifact.CASES,
    **cases_epcis.CASES,
    **cases_ceb.CASES,
}


# ------------------------------------------------------------------------------- running


def _param(name: str, value: Case) -> object:
    marks = []
    if value.missing:
        marks.append(pytest.mark.xfail(strict=True, reason=value.missing))
    return pytest.param(name, value, id=name, marks=marks)


def _stored_events(run: FeedRun) -> list[Event]:
    rows = TrackingEvent.objects.filter(run=run).values_list(
        "shipment__tracking_number",
        "unit__number",
        "code",
        "occurred_at",
        "tz_source",
        "location_name",
        "location_code",
        "country",
    )
    return sorted(
        Event(
            tracking or "",
            code,
            occurred_at.isoformat(),
            tz_source,
            place,
            locode,
            country,
            unit or "",
        )
        for tracking, unit, code, occurred_at, tz_source, place, locode, country in rows
    )


def _los_angeles() -> Warehouse:
    return WarehouseFactory(
        code="us-lax-fc",
        name="Los Angeles fulfilment",
        kind="fulfilment",
        country="US",
        city="Los Angeles",
        unlocode="USLAX",
        timezone=LA,
    )


def _assert_outcome(run: FeedRun, expected: Case) -> None:
    rejects = list(RejectedRecord.objects.filter(run=run).order_by("line", "pk"))
    got_rejects = [(r.line, r.field, r.reason) for r in rejects]
    assert [r.line for r in rejects] == [r.line for r in expected.rejects], got_rejects
    for stored, wanted in zip(rejects, expected.rejects, strict=True):
        for words in wanted.says:
            assert words in f"{stored.field} {stored.reason}", got_rejects
    assert _stored_events(run) == sorted(expected.events)
    assert dict(Shipment.objects.values_list("tracking_number", "status")) == expected.shipments
    assert run.status == expected.status, got_rejects


@pytest.mark.parametrize(("name", "expected"), [_param(n, c) for n, c in CASES.items()])
def test_each_public_file_gives_the_events_written_down_for_it(
    ingest: Ingest, name: str, expected: Case
) -> None:
    feed = FeedFactory(
        warehouse=_los_angeles(), format=expected.fmt, code_mapping=expected.code_mapping
    )
    path = SAMPLES / expected.path

    run = ingest(feed, path.read_bytes(), name=path.name)

    _assert_outcome(run, expected)


@pytest.mark.parametrize(("name", "expected"), [_param(n, c) for n, c in CASES.items()])
def test_each_public_file_gives_the_same_through_the_command_line_without_a_format(
    name: str, expected: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    # As a new user runs it (issue 13 item 8): `manage.py ingest FILE --warehouse CODE`, no
    # --format. A warehouse without feeds gets one of the detected format; a case that needs the
    # partner's code mapping has that feed already, and the command must use it.
    warehouse = _los_angeles()
    if expected.code_mapping:
        FeedFactory(warehouse=warehouse, format=expected.fmt, code_mapping=expected.code_mapping)
    path = SAMPLES / expected.path

    call_command("ingest", str(path), "--warehouse", warehouse.code, "--json")

    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["format"] == expected.fmt
    assert result["format_detected"] is True
    _assert_outcome(FeedRun.objects.get(pk=result["run_id"]), expected)
