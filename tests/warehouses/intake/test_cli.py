"""`manage.py ingest` without --format or --encoding: both detected and stated (issue 13)."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest
from django.core.management.base import CommandError

from shipments.models import TrackingEvent
from tests.conftest import FeedFactory, hub_csv
from tests.warehouses.intake.conftest import IngestCli
from warehouses.models import Feed, FeedRun, RejectedRecord, Warehouse

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parents[1] / "parsers" / "fixtures"
ROW = "HB1,warehouse_received,2026-05-01T09:00:00+08:00,,黑河保税仓,CNHEK,CN,入库,,,,"


def test_a_gb18030_file_ingests_from_the_cli_without_creating_a_feed_first(
    ingest_cli: IngestCli, warehouse: Warehouse
) -> None:
    assert not Feed.objects.exists()
    result = ingest_cli(hub_csv(ROW).decode().encode("gb18030"), name="gbk-export.csv")
    assert result["status"] == "succeeded"
    assert (result["events_created"], result["rejected"]) == (1, 0)
    assert (result["encoding"], result["encoding_detected"]) == ("gb18030", True)
    assert (result["format"], result["format_detected"]) == ("hub-csv", True)
    feed = Feed.objects.get()
    assert (feed.warehouse, feed.format, feed.encoding) == (warehouse, "hub-csv", "auto")
    event = TrackingEvent.objects.get()
    assert (event.location_name, event.description) == ("黑河保税仓", "入库")


def test_an_explicit_encoding_from_the_cli_is_honoured(ingest_cli: IngestCli) -> None:
    result = ingest_cli(hub_csv(ROW).decode().encode("gb18030"), "--encoding", "utf-8")
    assert (result["encoding"], result["encoding_detected"]) == ("utf-8", False)
    assert result["status"] == "failed"
    # "HB1,warehouse_received,2026-05-01T09:00:00+08:00,," is 50 bytes.
    assert RejectedRecord.objects.filter(
        line=2, reason__startswith="bytes at offset 50 are not valid utf-8"
    ).exists()


def test_an_unknown_encoding_is_a_command_error(ingest_cli: IngestCli) -> None:
    with pytest.raises(CommandError, match="unsupported encoding 'latin-9'"):
        ingest_cli(hub_csv(ROW), "--encoding", "latin-9")


def test_a_utf16_file_with_a_bom_ingests_from_the_cli(ingest_cli: IngestCli) -> None:
    result = ingest_cli(codecs.BOM_UTF16_LE + hub_csv(ROW).decode().encode("utf-16-le"))
    assert (result["status"], result["events_created"]) == ("succeeded", 1)
    assert (result["encoding"], result["format"]) == ("utf-16-le", "hub-csv")
    assert TrackingEvent.objects.get().location_name == "黑河保税仓"


X12_214 = (
    "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240305*0930*U*00401*"
    "000000001*0*P*>~\nGS*QM*S*R*20240305*0930*1*X*004010~\nST*214*0001~\n"
    "B10*PRO1*SHIP1*HBCX~\nLX*1~\nAT7*X4*NS***20240306*0645*LT~\nSE*5*0001~\nGE*1*1~\n"
    "IEA*1*000000001~\n"
)
EDIFACT_IFTSTA = (
    "UNA:+.? 'UNB+UNOC:3+CARRIER+HUB+240501:0900+7'UNH+1+IFTSTA:D:01A:UN'BGM+23+R1+9'"
    "CNI+1+HB1'STS+1+21'DTM+334:202405021630+08:00:303'UNT+6+1'UNZ+1+7'"
)
CEB = (FIXTURES / "ceb" / "chain_513_status.xml").read_bytes()
EPCIS = (FIXTURES / "epcis" / "container_suifenhe_malaszewicze.jsonld").read_bytes()
JSON_LINES = (
    json.dumps(
        {"tracking_number": "HB1", "event_code": "picked_up", "event_time": "2026-05-01T09:00:00Z"}
    )
    + "\n"
).encode()
MANIFEST = b"unit_id,tracking_number,loaded_at\nMSKU1234565,HB1,2026-05-01T09:00:00+08:00\n"


@pytest.mark.parametrize(
    ("payload", "fmt"),
    [
        (X12_214.encode(), "x12"),
        (EDIFACT_IFTSTA.encode("latin-1"), "edifact"),
        (CEB, "ceb"),
        (EPCIS, "epcis"),
        (JSON_LINES, "json"),
        (b"[" + JSON_LINES.strip() + b"]", "json"),
        (hub_csv(ROW), "hub-csv"),
        (codecs.BOM_UTF8 + hub_csv(ROW), "hub-csv"),
        (MANIFEST, "manifest-csv"),
    ],
    ids=["x12", "edifact", "ceb", "epcis", "json lines", "json array", "hub-csv", "bom csv",
         "manifest"],
)  # fmt: skip
def test_the_format_is_detected_and_stated(ingest_cli: IngestCli, payload: bytes, fmt: str) -> None:
    result = ingest_cli(payload)
    assert (result["format"], result["format_detected"]) == (fmt, True)
    feed = Feed.objects.get(code=result["feed"])
    assert feed.format == fmt
    assert result["records"] > 0
    # Read by the right parser: no file-level reject such as "expected an ISA header".
    assert not RejectedRecord.objects.filter(run_id=result["run_id"], line__lte=1).exists()


def test_the_warehouses_feed_of_the_detected_format_is_used(
    ingest_cli: IngestCli, warehouse: Warehouse
) -> None:
    FeedFactory(warehouse=warehouse, format=Feed.Format.HUB_CSV)
    x12 = FeedFactory(warehouse=warehouse, format=Feed.Format.X12)
    result = ingest_cli(X12_214.encode())
    assert result["feed"] == x12.code


def test_an_unknown_shape_is_one_clear_error_and_no_run(ingest_cli: IngestCli) -> None:
    with pytest.raises(CommandError) as raised:
        ingest_cli(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", name="label.pdf")
    assert str(raised.value) == (
        "cannot tell the format of label.pdf: not X12, EDIFACT, CEB XML, EPCIS, JSON or CSV: "
        "'%PDF-1.7\\n%\\n1 0 obj\\n'. Pass --format or --feed."
    )
    assert not FeedRun.objects.exists()


def test_xml_that_is_not_a_ceb_message_is_a_clear_error(ingest_cli: IngestCli) -> None:
    with pytest.raises(CommandError, match=r"XML with root element <Invoice>, which is not a CEB"):
        ingest_cli(b'<?xml version="1.0"?>\n<!-- ubl -->\n<Invoice xmlns="urn:x"/>\n')


def test_an_unknown_csv_header_needs_a_partner_csv_feed(
    ingest_cli: IngestCli, warehouse: Warehouse
) -> None:
    payload = "运单号,状态,时间\nHB1,GATE-OUT,2026-05-01 09:00\n".encode("gb18030")
    FeedFactory(warehouse=warehouse, format=Feed.Format.X12)
    FeedFactory(warehouse=warehouse, format=Feed.Format.HUB_CSV)
    with pytest.raises(CommandError, match="neither the hub-csv template nor a unit manifest"):
        ingest_cli(payload)
    partner = FeedFactory(
        warehouse=warehouse,
        format=Feed.Format.PARTNER_CSV,
        column_mapping={"tracking_number": "运单号", "event_code": "状态", "event_time": "时间"},
        code_mapping={"GATE-OUT": "departed"},
        default_timezone="Asia/Shanghai",
    )
    result = ingest_cli(payload)
    assert (result["feed"], result["format"], result["encoding"]) == (
        partner.code,
        "partner-csv",
        "gb18030",
    )


def test_a_warehouse_with_one_feed_uses_it(ingest_cli: IngestCli, warehouse: Warehouse) -> None:
    only = FeedFactory(warehouse=warehouse, format=Feed.Format.PARTNER_CSV)
    result = ingest_cli(hub_csv(ROW))  # a CSV: the partner-csv feed's business
    assert result["feed"] == only.code


def test_a_file_that_does_not_fit_the_only_feed_is_refused(
    ingest_cli: IngestCli, warehouse: Warehouse
) -> None:
    FeedFactory(warehouse=warehouse, code="heihe-csv", format=Feed.Format.HUB_CSV)
    with pytest.raises(CommandError, match=r"looks like x12 .* reads hub-csv\. Pass --format x12"):
        ingest_cli(X12_214.encode(), name="status.edi")
    assert not FeedRun.objects.exists()


def test_format_and_feed_options_skip_detection(
    ingest_cli: IngestCli, warehouse: Warehouse
) -> None:
    result = ingest_cli(hub_csv(ROW), "--format", "hub-csv")
    assert (result["format"], result["format_detected"]) == ("hub-csv", False)
