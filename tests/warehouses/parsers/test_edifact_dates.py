"""UN/EDIFACT IFTSTA parser: DTM dates, their formats and zones, and bad dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tests.warehouses.parsers.edifact_interchanges import (
    edi,
    run,
)
from warehouses.parsers.edifact import parse_dtm

STATUS_WITH_DTM = """
UNB+UNOA:2+S+R+20240305:1200+X'
UNH+1+IFTSTA:D:01A:UN'
CNI+1+T1'
STS+1+21'
{dtm}
UNT+5+1'
UNZ+1+X'
"""


@pytest.mark.parametrize(
    ("dtm", "reason"),
    [
        (
            "DTM+334:202403061000+08:303'",
            "DTM has 2 data elements, expected 1 (an unreleased '+' in a time-zone offset?)",
        ),
        (
            "DTM+334:202403061000CST:303'",
            "time zone 'CST' in '202403061000CST' (format 303) is not an offset",
        ),
        (
            "DTM+334:2024030610:203'",
            "date/time '2024030610' does not match format 203 (CCYYMMDDHHMM)",
        ),
        ("DTM+334:240306:101'", "unsupported date/time format code '101' (value '240306')"),
        (
            "DTM+334:202402301000:203'",
            "impossible date/time '202402301000' for format 203 (CCYYMMDDHHMM)",
        ),
    ],
)
def test_a_bad_status_date_rejects_the_status_with_the_value_named(dtm: str, reason: str) -> None:
    items = run(edi(STATUS_WITH_DTM.format(dtm=dtm)))

    assert [(e.line, e.field, e.reason) for e in items] == [(5, "DTM", reason)]


@pytest.mark.parametrize(
    ("value", "fmt", "expected"),
    [
        ("20240306", "102", datetime(2024, 3, 6)),
        ("202403061015", "203", datetime(2024, 3, 6, 10, 15)),
        ("20240306101530", "204", datetime(2024, 3, 6, 10, 15, 30)),
        (
            "202403061015-0530",
            "205",
            datetime(2024, 3, 6, 10, 15, tzinfo=timezone(-timedelta(hours=5, minutes=30))),
        ),
        ("202403061015UTC", "303", datetime(2024, 3, 6, 10, 15, tzinfo=UTC)),
        (
            "202403061015+08",
            "303",
            datetime(2024, 3, 6, 10, 15, tzinfo=timezone(timedelta(hours=8))),
        ),
        (
            "20240306101530+03:00",
            "304",
            datetime(2024, 3, 6, 10, 15, 30, tzinfo=timezone(timedelta(hours=3))),
        ),
        ("202403061015", "", datetime(2024, 3, 6, 10, 15)),
    ],
)
def test_dtm_formats_give_naive_or_aware_datetimes(
    value: str, fmt: str, expected: datetime
) -> None:
    moment, _precision = parse_dtm(value, fmt)

    assert moment == expected
    assert (moment.tzinfo is None) == (expected.tzinfo is None)
