"""CEB (China customs cross-border e-commerce) parser: public samples, own chain, attacks."""

from __future__ import annotations

import io
from collections import Counter
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipments.statuses import EVENT_CODES
from tests.samples import SAMPLES
from warehouses.parsers.base import FormatError, ParseItem, ParseOptions, Record, RecordError
from warehouses.parsers.ceb import codes, match_documents, parse, parse_time

CEB = SAMPLES / "ceb"
FIXTURES = Path(__file__).parent / "fixtures" / "ceb"
CHAIN = [
    "chain_311_order.xml",
    "chain_411_payment.xml",
    "chain_511_waybill.xml",
    "chain_621_inventory.xml",
    "chain_622_receipt_120.xml",
    "chain_622_receipt_800.xml",
    "chain_513_status.xml",
]


def run(data: bytes, options: ParseOptions | None = None) -> list[ParseItem]:
    return list(parse(io.BytesIO(data), options or ParseOptions()))


def run_file(path: Path) -> list[ParseItem]:
    with path.open("rb") as stream:
        return list(parse(stream, ParseOptions()))


def records(items: list[ParseItem]) -> list[Record]:
    return [item for item in items if isinstance(item, Record)]


def errors(items: list[ParseItem]) -> list[RecordError]:
    return [item for item in items if isinstance(item, RecordError)]


def summary(items: list[ParseItem]) -> Counter[tuple[str, str, str]]:
    counted: Counter[tuple[str, str, str]] = Counter()
    for item in items:
        if isinstance(item, Record):
            counted[(item.kind, item.event_code, str(item.extra.get("doc_type", "")))] += 1
        else:
            counted[("error", item.field, item.reason)] += 1
    return counted


# --- every public sample -----------------------------------------------------------------------

RECEIPT_SAMPLES = {
    "CEB312Message.xml": {("event", "customs_import_submitted", ""): 10},
    "CEB412Message.xml": {("event", "customs_import_submitted", ""): 10},
    "CEB512Message.xml": {("event", "customs_import_submitted", ""): 10},
    "CEB514Message.xml": {("error", "returnStatus", "unknown returnStatus '18'"): 10},
    "CEB622Message.xml": {("customs_document", "", "receipt"): 10},
    "CEB624Message.xml": {("error", "returnStatus", "unknown returnStatus '23'"): 10},
    "CEB626Message.xml": {("error", "returnStatus", "unknown returnStatus '18'"): 10},
    "CEB712Message.xml": {("error", "returnStatus", "unknown returnStatus '18'"): 10},
}
EXPECTED: dict[str, dict[tuple[str, str, str], int]] = {
    "import/CEB311Message.xml": {("customs_document", "", "order"): 6},
    "import/CEB411Message.xml": {("customs_document", "", "payment"): 10},
    "import/CEB511Message.xml": {("shipment", "", ""): 6, ("customs_document", "", "waybill"): 6},
    "import/CEB513Message.xml": {
        (
            "error",
            "logisticsStatus",
            "unknown logisticsStatus 'R' (the specification defines only S = signed for)",
        ): 10
    },
    "import/CEB621Message.xml": {
        ("event", "customs_import_submitted", ""): 5,
        ("customs_document", "", "inventory"): 5,
    },
    "import/CEB623Message.xml": {("customs_document", "", "inventory_cancel"): 10},
    "import/CEB625Message.xml": {("customs_document", "", "refund"): 10},
    "import/CEB711Message.xml": {("event", "arrived", ""): 1},
    "export/CEB213Message.xml": {("customs_document", "", "refund"): 10},
    "export/CEB214Message.xml": {("customs_document", "", "refund_receipt"): 10},
    "export/CEB215Message.xml": {
        ("error", "InvtRefundDetail", "unsupported message CEB215 (InvtRefundDetail)"): 10
    },
    "export/CEB216Message.xml": {("customs_document", "", "refund_receipt"): 10},
    "export/CEB303Message.xml": {("customs_document", "", "order"): 10},
    "export/CEB304Message.xml": {("event", "customs_export_submitted", ""): 10},
    "export/CEB403Message.xml": {("customs_document", "", "payment"): 10},
    "export/CEB404Message.xml": {("event", "customs_export_submitted", ""): 10},
    "export/CEB505Message.xml": {
        ("shipment", "", ""): 10,
        ("customs_document", "", "waybill"): 10,
    },
    "export/CEB506Message.xml": {("event", "customs_export_submitted", ""): 10},
    "export/CEB507Message.xml": {("event", "arrived", ""): 30},
    "export/CEB508Message.xml": {("event", "customs_export_submitted", ""): 10},
    "export/CEB509Message.xml": {("event", "departed", ""): 10},
    "export/CEB510Message.xml": {("event", "customs_export_submitted", ""): 10},
    "export/CEB603Message.xml": {
        ("error", "country", "country: unknown customs country code '001'"): 10
    },
    "export/CEB604Message.xml": {("event", "customs_export_submitted", ""): 10},
    "export/CEB605Message.xml": {("customs_document", "", "inventory_cancel"): 10},
    "export/CEB606Message.xml": {("customs_document", "", "inventory_cancel_receipt"): 10},
    "export/CEB607Message.xml": {("event", "customs_export_submitted", ""): 10},
    "export/CEB608Message.xml": {("event", "customs_export_submitted", ""): 10},
    "export/CEB701Message.xml": {
        ("error", "SummaryApply", "unsupported message CEB701 (SummaryApply)"): 10
    },
    "export/CEB702Message.xml": {("event", "customs_export_submitted", ""): 10},
    "export/CEB792Message.xml": {
        ("error", "SummaryResult", "unsupported message CEB792 (SummaryResult)"): 10
    },
}
for _name, _expected in RECEIPT_SAMPLES.items():
    EXPECTED[f"import/{_name}"] = _expected
    EXPECTED[f"receipts/{_name}"] = _expected


def test_every_sample_file_has_an_expectation() -> None:
    on_disk = {str(path.relative_to(CEB)) for path in CEB.glob("*/*.xml")}
    assert on_disk == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_sample_yields_the_expected_records_or_precise_rejections(name: str) -> None:
    items = run_file(CEB / name)
    assert dict(summary(items)) == EXPECTED[name]
    for item in items:
        assert item.line > 0
        assert 0 < len(item.raw) <= 2000
        if isinstance(item, Record):
            assert item.time_zone == "Asia/Shanghai"
            assert isinstance(item.event_time, datetime)
            assert item.event_time.tzinfo is None
            assert not item.event_code or item.event_code in EVENT_CODES


def test_an_import_order_keeps_amount_currency_consignee_and_platform_codes() -> None:
    first = records(run_file(CEB / "import/CEB311Message.xml"))[0]
    assert first.line == 4
    assert first.raw.startswith("<ceb:Order>")
    assert first.order_number == "order20160321116421002"
    assert first.event_time == datetime(2016, 3, 8, 11, 27, 1)
    extra = first.extra
    assert extra["amount"] == "19050"
    assert extra["amount_source"] == "acturalPaid"
    assert extra["currency"] == "CNY"
    assert extra["consignee"] == "焦洪宇"
    assert extra["ebp_code"] == extra["ebc_code"] == "1105910159"
    assert extra["pay_transaction_id"] == "20160001634226001"
    # buyer identity numbers and telephones are never copied
    assert "130681136250023332" not in str(extra)


def test_a_payment_keeps_order_amount_paid_and_payer() -> None:
    payment = records(run_file(CEB / "import/CEB411Message.xml"))[1]
    assert payment.kind == "customs_document"
    assert payment.order_number == "order2016030811340008"
    assert payment.event_time == datetime(2016, 3, 15, 15, 35, 55)  # payTime
    assert payment.extra["amount"] == "19050"
    assert payment.extra["payer"] == "支付人"
    assert payment.extra["pay_transaction_id"] == "P0242250008"


def test_a_waybill_yields_a_shipment_and_a_waybill_document_with_the_same_data() -> None:
    shipment, waybill = records(run_file(CEB / "import/CEB511Message.xml"))[:2]
    assert (shipment.kind, waybill.kind) == ("shipment", "customs_document")
    for record in (shipment, waybill):
        assert record.tracking_number == "L201603081138007"
        assert record.order_number == "order20160321116421002"
        assert record.weight_kg == Decimal("4000")
        assert record.extra["freight"] == "5000"
        assert record.extra["currency"] == "CNY"
        assert record.extra["consignee"] == "李小可"
    assert waybill.extra["doc_type"] == "waybill"


def test_an_export_waybill_without_order_number_still_creates_the_shipment() -> None:
    shipment = records(run_file(CEB / "export/CEB505Message.xml"))[0]
    assert shipment.kind == "shipment"
    assert shipment.tracking_number == "L2018050700001"
    assert shipment.order_number == ""
    assert shipment.weight_kg == Decimal("50.50")
    assert shipment.extra["direction"] == "export"


def test_an_inventory_declaration_is_an_import_submission_and_a_draft_is_only_a_document() -> None:
    items = records(run_file(CEB / "import/CEB621Message.xml"))
    declared, draft = items[0], items[1]
    assert declared.event_code == "customs_import_submitted"
    assert declared.tracking_number == "L201603081138007"
    assert declared.order_number == "order2016030811340001"
    assert declared.country == "CN"
    assert declared.weight_kg == Decimal("4000")
    assert declared.extra["trade_mode"] == "9610"
    assert declared.extra["cop_no"] == "NBBH20160308005"
    assert declared.extra["origin_country"] == "JP"
    assert "invt_no" not in declared.extra  # empty in the declaration, filled by customs later
    assert draft.kind == "customs_document"
    assert draft.extra["app_status"] == "1"
    assert draft.extra["draft"] is True


def test_receipts_keep_status_info_and_the_references_that_link_them() -> None:
    order_receipt = records(run_file(CEB / "import/CEB312Message.xml"))[0]
    assert order_receipt.event_code == "customs_import_submitted"
    assert order_receipt.partner_code == "2"
    assert order_receipt.order_number == "order20160321116420545"
    assert order_receipt.event_time == datetime(2016, 4, 28, 18, 22, 38)
    assert order_receipt.description == "新增申报成功[4CDE1CFD-EDED-46B1-946C-B8022E42FC94]"
    assert order_receipt.extra["return_status"] == "2"
    assert order_receipt.extra["return_info"] == order_receipt.description
    assert order_receipt.extra["match_by"] == ["order_no"]

    payment_receipt = records(run_file(CEB / "import/CEB412Message.xml"))[0]
    assert payment_receipt.event_code == "customs_import_submitted"
    assert payment_receipt.extra["match_by"] == ["pay_transaction_id"]

    waybill_receipt = records(run_file(CEB / "import/CEB512Message.xml"))[0]
    assert waybill_receipt.tracking_number == "L20160321114400001"
    assert waybill_receipt.event_time == datetime(2016, 5, 6, 15, 22, 50)

    stored = records(run_file(CEB / "import/CEB622Message.xml"))[0]
    assert stored.kind == "customs_document"
    assert stored.extra["doc_type"] == "receipt"
    assert stored.extra["return_info"] == "暂存"
    assert stored.event_time == datetime(2016, 5, 12, 10, 26, 46, 1000)  # milliseconds kept


def test_export_receipts_use_export_codes_and_a_root_without_message_suffix_is_read() -> None:
    receipt = records(run_file(CEB / "export/CEB604Message.xml"))[0]
    assert receipt.event_code == "customs_export_submitted"
    assert receipt.extra["invt_no"] == "Invt20180507000001"
    refund_receipts = records(run_file(CEB / "export/CEB214Message.xml"))  # root is <CEB214>
    assert refund_receipts[0].extra["message"] == "CEB214"


def test_movement_reports_give_one_event_per_listed_parcel() -> None:
    arrivals = records(run_file(CEB / "export/CEB507Message.xml"))
    assert [a.tracking_number for a in arrivals[:3]] == [
        "L2018050700001",
        "L2018050700002",
        "L2018050700003",
    ]
    departure = records(run_file(CEB / "export/CEB509Message.xml"))[0]
    assert departure.event_code == "departed"
    assert departure.event_time == datetime(2018, 5, 8, 9, 22, 1)  # leaveTime, not appTime
    assert departure.extra["bill_no"] == "B00024204001"
    delivery = records(run_file(CEB / "import/CEB711Message.xml"))[0]
    assert delivery.tracking_number == "L201603081138001"
    assert delivery.extra["rkd_no"] == "010220160308000005"


def test_rejections_name_the_line_of_the_offending_field() -> None:
    rejected = errors(run_file(CEB / "import/CEB513Message.xml"))[0]
    assert rejected.line == 12  # <ceb:logisticsStatus>R</ceb:logisticsStatus>
    assert rejected.raw.startswith("<ceb:LogisticsStatus>")
    country = errors(run_file(CEB / "export/CEB603Message.xml"))[0]
    assert country.field == "country"
    assert country.line == 39


# --- own fixture: one order through to release --------------------------------------------------


def chain() -> dict[str, list[Record]]:
    result: dict[str, list[Record]] = {}
    for name in CHAIN:
        items = run_file(FIXTURES / name)
        assert errors(items) == []
        result[name] = records(items)
    return result


def test_a_full_import_chain_reads_as_a_timeline_from_declaration_to_delivery() -> None:
    docs = chain()
    events = sorted(
        (r for rs in docs.values() for r in rs if r.kind == "event"),
        key=lambda r: r.event_time or datetime.min,
    )
    assert [(e.event_code, e.partner_code) for e in events] == [
        ("customs_import_submitted", "CEB621"),
        ("customs_import_submitted", "120"),
        ("customs_import_cleared", "800"),
        ("delivered", "S"),
    ]
    declaration, accepted, released, delivered = events
    assert declaration.tracking_number == delivered.tracking_number == "HEK100000001CN"
    assert declaration.extra["origin_country"] == "RU"
    # the 622 carries only the declaration's numbers; copNo links it to the 621
    assert released.tracking_number == ""
    assert released.extra["cop_no"] == declaration.extra["cop_no"] == "HEK-INVT-0001"
    assert released.extra["match_by"] == ["invt_no", "cop_no", "pre_no"]
    assert released.description == "放行"
    assert released.event_time == datetime(2024, 1, 6, 11, 30, 15, 250000)
    assert delivered.event_time == datetime(2024, 1, 8, 16, 32, 45)
    assert accepted.country == "CN"


def test_the_chain_documents_pass_the_three_document_match() -> None:
    docs = chain()
    order = docs["chain_311_order.xml"][0].extra
    payment = docs["chain_411_payment.xml"][0].extra
    waybill = docs["chain_511_waybill.xml"][1].extra
    assert waybill["doc_type"] == "waybill"
    assert match_documents(order, payment, waybill) == ("matched", [])


# --- three-document match ----------------------------------------------------------------------

ORDER = {"order_no": "O1", "amount": "100.00", "currency": "CNY", "consignee": "王小明"}
PAYMENT = {"order_no": "O1", "amount": "100", "currency": "CNY"}
WAYBILL = {"order_no": "O1", "consignee": "王 小明"}


def test_three_matching_documents_are_matched() -> None:
    assert match_documents(ORDER, PAYMENT, WAYBILL) == ("matched", [])


def test_absent_documents_are_reported_missing() -> None:
    assert match_documents(ORDER, None, WAYBILL) == ("missing", ["payment"])
    assert match_documents(None, None, None) == ("missing", ["order", "payment", "waybill"])


def test_disagreeing_documents_name_every_mismatched_field() -> None:
    assert match_documents(
        ORDER, PAYMENT | {"amount": "99.99"}, WAYBILL | {"consignee": "李四"}
    ) == ("mismatch", ["amount", "consignee"])
    assert match_documents(ORDER, PAYMENT, WAYBILL | {"order_no": "O2"}) == (
        "mismatch",
        ["order_no"],
    )
    assert match_documents(ORDER, PAYMENT | {"currency": "USD"}, WAYBILL) == (
        "mismatch",
        ["currency"],
    )
    assert match_documents(
        ORDER | {"pay_transaction_id": "P1"}, PAYMENT | {"pay_transaction_id": "P2"}, WAYBILL
    ) == ("mismatch", ["pay_transaction_id"])


def test_an_order_without_actual_paid_is_matched_on_its_computed_total() -> None:
    xml = (
        (FIXTURES / "chain_311_order.xml")
        .read_bytes()
        .replace(b"<ceb:acturalPaid>1329.20</ceb:acturalPaid>", b"")
    )
    order = records(run(xml))[0].extra
    assert order["amount"] == "1329.20"  # 1200 + 30 + 109.20 - 10
    assert order["amount_source"] == "computed"
    payment = records(run_file(FIXTURES / "chain_411_payment.xml"))[0].extra
    waybill = records(run_file(FIXTURES / "chain_511_waybill.xml"))[1].extra
    assert match_documents(order, payment, waybill) == ("matched", [])


# --- codes, times, values ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "iso"),
    [("142", "CN"), ("502", "US"), ("344", "RU"), ("116", "JP"), ("304", "DE"), ("110", "HK")],
)
def test_customs_country_codes_become_iso_alpha_2(code: str, iso: str) -> None:
    assert codes.country_iso(code) == iso


@pytest.mark.parametrize(
    ("code", "iso"),
    [("142", "CNY"), ("502", "USD"), ("300", "EUR"), ("116", "JPY"), ("303", "GBP"),
     ("344", "RUB"), ("CNY", "CNY"), ("usd", "USD")],
)  # fmt: skip
def test_customs_currency_codes_become_iso_4217(code: str, iso: str) -> None:
    assert codes.currency_iso(code) == iso


def test_codes_without_an_iso_equivalent_are_refused_with_their_meaning() -> None:
    with pytest.raises(codes.CodeError, match="国别不详"):
        codes.country_iso("701")
    with pytest.raises(codes.CodeError, match="unknown customs currency code '999'"):
        codes.currency_iso("999")


def test_the_code_tables_are_well_formed() -> None:
    assert len(codes.COUNTRY_CODES) > 220
    assert all(len(v) == 2 and v.isupper() for v in codes.COUNTRY_CODES.values())
    assert all(len(v) == 3 and v.isupper() for v in codes.CURRENCY_CODES.values())
    assert not set(codes.COUNTRY_CODES) & set(codes.COUNTRY_CODES_WITHOUT_ISO)
    for status in codes.RETURN_STATUSES.values():
        for event_code in (status.import_code, status.export_code):
            assert not event_code or event_code in EVENT_CODES
    assert all(code in EVENT_CODES for code, _ in codes.LOGISTICS_STATUSES.values())


@pytest.mark.parametrize(
    ("status", "imported", "exported"),
    [("100", "customs_rejected", "customs_export_rejected"),
     ("300", "customs_held", "customs_export_held"),
     ("500", "customs_held", "customs_export_held"),
     ("700", "returning", "returning"),
     ("800", "customs_import_cleared", "customs_export_cleared"),
     ("-301010", "exception", "exception")],
)  # fmt: skip
def test_return_statuses_map_to_import_and_export_events(
    status: str, imported: str, exported: str
) -> None:
    meaning = codes.return_status(status)
    assert (meaning.import_code, meaning.export_code) == (imported, exported)


def test_ceb_times_are_read_with_and_without_milliseconds_and_impossible_ones_refused() -> None:
    assert parse_time("20240106113015") == datetime(2024, 1, 6, 11, 30, 15)
    assert parse_time("20240106113015250") == datetime(2024, 1, 6, 11, 30, 15, 250000)
    assert parse_time("20240230113015") is None
    assert parse_time("2024-01-06T11:30:15") is None


def sample_with(old: bytes, new: bytes, name: str = "chain_511_waybill.xml") -> bytes:
    data = (FIXTURES / name).read_bytes()
    assert old in data
    return data.replace(old, new)


def test_an_impossible_time_rejects_the_record_naming_the_field() -> None:
    (item,) = run(sample_with(b"20240105100000", b"20240232100000"))
    assert isinstance(item, RecordError)
    assert item.field == "appTime"
    assert "20240232100000" in item.reason
    assert item.line == 7


def test_an_unknown_currency_code_rejects_the_record_naming_field_and_code() -> None:
    data = sample_with(b"<ceb:currency>142</ceb:currency>", b"<ceb:currency>777</ceb:currency>")
    (item,) = run(data)
    assert isinstance(item, RecordError)
    assert (item.field, item.reason) == (
        "currency",
        "currency: unknown customs currency code '777'",
    )


def test_iso_currency_values_are_accepted_as_they_are() -> None:
    data = sample_with(b"<ceb:currency>142</ceb:currency>", b"<ceb:currency>CNY</ceb:currency>")
    assert records(run(data))[0].extra["currency"] == "CNY"


def test_a_bad_record_does_not_stop_the_next_one() -> None:
    data = (CEB / "import/CEB311Message.xml").read_bytes()
    data = data.replace(b"<ceb:currency>142</ceb:currency>", b"<ceb:currency>x</ceb:currency>", 1)
    items = run(data)
    assert [type(i).__name__ for i in items] == ["RecordError"] + ["Record"] * 5


def test_a_gb18030_message_is_transcoded() -> None:
    text = (FIXTURES / "chain_511_waybill.xml").read_text("utf-8")
    data = text.replace('encoding="UTF-8"', 'encoding="GBK"').encode("gb18030")
    shipment = records(run(data))[0]
    assert shipment.extra["consignee"] == "王小明"
    assert "王小明" in shipment.raw


def test_a_message_larger_than_one_read_chunk_keeps_every_line_and_raw_text() -> None:
    data = (FIXTURES / "chain_411_payment.xml").read_bytes()
    head, rest = data.split(b"\t<ceb:Payment>", 1)
    payment, tail = rest.split(b"\t<ceb:BaseTransfer>", 1)
    payment = b"\t<ceb:Payment>" + payment
    big = head + payment * 1500 + b"\t<ceb:BaseTransfer>" + tail
    assert len(big) > 20 * 64 * 1024
    items = records(run(big))
    per = payment.count(b"\n")
    assert len(items) == 1500
    assert [item.line for item in items[:3]] == [3, 3 + per, 3 + 2 * per]
    assert all(item.raw.startswith("<ceb:Payment>") for item in items)
    assert all(item.raw.endswith("</ceb:Payment>") for item in items)


def test_a_utf16_message_and_an_undeclared_gb18030_feed_are_read() -> None:
    text = (FIXTURES / "chain_513_status.xml").read_text("utf-8")
    utf16 = text.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    assert records(run(utf16))[0].event_code == "delivered"
    undeclared = text.replace('<?xml version="1.0" encoding="UTF-8"?>\n', "").encode("gb18030")
    item = records(run(undeclared, ParseOptions(encoding="gb18030")))[0]
    assert item.carrier == "黑河边境物流有限公司"


# --- broken and hostile documents --------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<ceb:CEB311Message xmlns:ceb="http://www.chinaport.gov.cn/ceb"><ceb:Order>&lol3;</ceb:Order>
</ceb:CEB311Message>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<ceb:CEB311Message xmlns:ceb="http://www.chinaport.gov.cn/ceb"><ceb:Order>&xxe;</ceb:Order>
</ceb:CEB311Message>"""


def test_entity_expansion_is_refused() -> None:
    with pytest.raises(FormatError, match="billion laughs") as caught:
        run(BILLION_LAUGHS)
    assert caught.value.line == 3


def test_external_entities_are_refused() -> None:
    with pytest.raises(FormatError, match="external entity 'xxe' refused"):
        run(XXE)


def test_any_dtd_is_refused() -> None:
    data = b'<?xml version="1.0"?>\n<!DOCTYPE x SYSTEM "http://example.com/x.dtd">\n<x/>'
    with pytest.raises(FormatError, match="DTD"):
        run(data)


def test_a_truncated_message_keeps_the_records_before_the_break() -> None:
    data = (CEB / "import/CEB311Message.xml").read_bytes()
    cut = data[: data.index(b"<ceb:Order>", data.index(b"</ceb:Order>"))] + b"<ceb:Order><ceb:Ord"
    items: list[ParseItem] = []
    with pytest.raises(FormatError, match="malformed XML"):
        items.extend(parse(io.BytesIO(cut), ParseOptions()))
    assert len(records(items)) == 1


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty payload"),
        (b"<Order xmlns='urn:other'/>", "is not a CEB message"),
        (b"<ceb:Foo xmlns:ceb='http://www.chinaport.gov.cn/ceb'/>", "is not a CEB message"),
        (b"not xml at all", "malformed XML"),
    ],
)
def test_documents_that_are_not_ceb_messages_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(FormatError, match=reason):
        run(data)


def test_an_unknown_message_number_rejects_each_record() -> None:
    data = b"<CEB999Message xmlns='http://www.chinaport.gov.cn/ceb'><X/><Y/></CEB999Message>"
    assert [e.reason for e in errors(run(data))] == ["unsupported message CEB999"] * 2


SEEDS = [
    (CEB / "import/CEB311Message.xml").read_bytes()[:6000],
    (CEB / "import/CEB622Message.xml").read_bytes(),
    (CEB / "export/CEB507Message.xml").read_bytes()[:5000],
    (FIXTURES / "chain_621_inventory.xml").read_bytes(),
    (FIXTURES / "chain_511_waybill.xml").read_bytes(),
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 8))):
        action = draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if action == "flip":
            data[at] = draw(st.integers(0, 255))
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 40))]
        elif action == "insert":
            data[at:at] = draw(
                st.sampled_from([b"<", b"&", b"]]>", b"\xff", b"<ceb:x>", b"</ceb:Order>", b"-1"])
            )
        else:
            del data[at:]
    return bytes(data)


@settings(max_examples=200, deadline=500, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_messages_only_yield_records_errors_or_a_format_error(data: bytes) -> None:
    try:
        for item in parse(io.BytesIO(data), ParseOptions()):
            assert isinstance(item, (Record, RecordError))
            assert len(item.raw) <= 2000
    except FormatError:
        pass
