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
from dataclasses import dataclass, field

import pytest
from django.core.management import call_command

from shipments.models import Shipment, TrackingEvent
from tests.conftest import FeedFactory, WarehouseFactory
from tests.samples import SAMPLES
from warehouses.models import FeedRun, RejectedRecord, Warehouse

pytestmark = pytest.mark.django_db

Ingest = Callable[..., FeedRun]


@dataclass(frozen=True, order=True)
class Event:
    """One stored event: who (parcel or unit), what, when (UTC), how its zone was known, where."""

    tracking: str  # the shipment's tracking number, or "" for an event on a transport unit
    code: str
    at: str  # UTC, ISO 8601
    tz_source: str
    place: str = ""
    locode: str = ""
    country: str = ""
    unit: str = ""  # the unit's GS1 key, as the hub numbers units


@dataclass(frozen=True)
class Reject:
    """A rejected record: its line (segment number for EDI) and words its field or reason must
    contain."""

    line: int
    says: tuple[str, ...] = ()


@dataclass(frozen=True)
class Case:
    path: str  # under tests/data/
    fmt: str
    status: str
    events: tuple[Event, ...] = ()
    rejects: tuple[Reject, ...] = ()
    # Every shipment the run leaves behind, with its status: a rejected record leaves none.
    shipments: dict[str, str] = field(default_factory=dict)
    code_mapping: dict[str, str] = field(default_factory=dict)
    missing: str = ""  # issue 13 behaviour not on main yet: the case is xfail(strict=True)


LA = "America/Los_Angeles"  # the receiving warehouse's zone: it must appear nowhere below

CASES: dict[str, Case] = {}


def case(name: str, value: Case) -> None:
    CASES[name] = value


# --------------------------------------------------------------------------------- X12

# 856 from Solon, Ohio (the file of issue 13 item 1). BSN-02 829716 is the shipment id; BSN-03/04
# 20111206 142428 is when the notice's shipment was made, local time with no AT7/time code, so its
# zone is the ship-from party's: N1*SF 1 EDI SOURCE, N4 SOLON*OH -> America/New_York. December
# is EST (UTC-5): 14:24:28 EST = 19:24:28Z (the Los Angeles warehouse's zone would give 22:24:28Z).
# No N4-04 country: the event keeps the place as given ("SOLON, OH", no country invented).
case(
    "x12/856 shipped from Solon OH",
    Case(
        "corpus/x12/node-x12_856.edi",
        "x12",
        "succeeded",
        events=(
            Event("829716", "info_received", "2011-12-06T19:24:28+00:00", "city", "SOLON, OH"),
        ),
        shipments={"829716": "info_received"},
    ),
)

# 214 delivered at Brattleboro, Vermont. B10-02 75027674 is the shipment id (B10-01 1751807 the
# carrier's reference). AT7*D1*NS***20160726*1230*LT: D1 = delivered, LT = local time, i.e. the
# zone of the place of the status, MS1*BRATTLEBORO*VT -> America/New_York. July is EDT (UTC-4):
# 12:30 EDT = 16:30Z.
case(
    "x12/214 delivered at Brattleboro VT",
    Case(
        "corpus/x12/edi-net_214-MGCTLYST-SAMPLE.EDI",
        "x12",
        "succeeded",
        events=(
            Event("75027674", "delivered", "2016-07-26T16:30:00+00:00", "city", "BRATTLEBORO, VT"),
        ),
        shipments={"75027674": "delivered"},
    ),
)

# The same 214 as published in another folder of that project: a UTF-8 BOM, then a line break
# inside the fixed-width ISA (69 characters, then the rest on the next line). The ISA cannot be
# read, so nothing in the interchange can be trusted: one clear error on segment 1, nothing kept.
case(
    "x12/214 with a line break inside its ISA",
    Case(
        "corpus/x12/edi-net_x12.214.edi",
        "x12",
        "failed",
        rejects=(Reject(1, ("ISA",)),),
    ),
)

# A 945 whose ISA has its padding collapsed ("*00* *00* *ZZ*YOUR-ID-HERE *..."): 76 characters
# instead of the 106 X12 requires, so the separators cannot be found where the standard puts them.
case(
    "x12/945 with a collapsed ISA",
    Case(
        "corpus/x12/x12-types_945_parse_1.edi",
        "x12",
        "failed",
        rejects=(Reject(1, ("ISA",)),),
    ),
)

# The load tender (204) and its response (990) for the same shipment 75027674, as the carrier
# sent them: a line feed is their segment terminator (the character after ISA-16). The hub does
# not track tenders: nothing is created. The 990 is rejected by name at its ST (segment 3). The
# 204's SE says 41 segments but ST (3) to SE (40) holds 38: a set whose count is wrong is
# rejected for that at its SE, before its type matters (as an X12 997 would report it).
case(
    "x12/204 load tender, newline-terminated",
    Case(
        "corpus/x12/edi-net_204-MGCTLYST-SAMPLE.EDI",
        "x12",
        "failed",
        rejects=(Reject(40, ("SE01", "41", "38")),),
    ),
)
case(
    "x12/990 tender response, newline-terminated",
    Case(
        "corpus/x12/edi-net_990-MGCTLYST-SAMPLE.EDI",
        "x12",
        "failed",
        rejects=(Reject(3, ("990",)),),
    ),
)

# ------------------------------------------------------------------------------ EDIFACT

# IFTSTA D00B from a rail carrier: STS+1+P::HS:Rail Departed from In-Transit Locat. "P" is the
# carrier's own code (agency HS), not a UN/ECE Rec. 24 code: without a mapping on the feed it is
# rejected by name (issue 13 item 3). No CNI-02, no SSCC: the tracking number is the bill of
# lading of the status group, RFF+BM ABCD224O4023815X. The UNZ control reference 2805570 differs
# from the UNB's 2803570: reported on the UNZ (segment 33); the message itself was read.
case(
    "edifact/IFTSTA rail departure, carrier code unmapped",
    Case(
        "corpus/edifact/edifact-types_d00b_iftsta.edi",
        "edifact",
        "failed",
        rejects=(Reject(14, ("'P'",)), Reject(33, ("2805570",))),
    ),
)

# The same file on a feed that maps P -> departed. DTM+334:202211190710:203 is a local time
# without zone; the status's place is LOC+175 (activity location) USSYR, Syracuse -> by its
# UN/LOCODE America/New_York; 19 November is EST (UTC-5): 07:10 EST = 12:10Z (Los Angeles would
# give 15:10Z). The later LOCs belong to the TDT (loading at Cartagena, discharge at Elizabeth,
# delivery at Woodridge), not to this status.
case(
    "edifact/IFTSTA rail departure, P mapped to departed",
    Case(
        "corpus/edifact/edifact-types_d00b_iftsta.edi",
        "edifact",
        "partial",
        events=(
            Event(
                "ABCD224O4023815X",
                "departed",
                "2022-11-19T12:10:00+00:00",
                "locode",
                "SYRACUSE",
                "USSYR",
                "US",
            ),
        ),
        rejects=(Reject(33, ("2805570",)),),
        shipments={"ABCD224O4023815X": "in_transit"},
        code_mapping={"P": "departed"},
    ),
)

# The same status as one line with no line breaks, in an interchange whose UNZ reference matches
# its UNB (3724322): on a feed mapping P -> departed it is one clean departure, 07:10 EST at
# Syracuse (USSYR) = 12:10Z, with nothing to reject.
case(
    "edifact/IFTSTA rail departure on one line, P mapped",
    Case(
        "corpus/edifact/edifact-types_iftsta_with_unb.edi",
        "edifact",
        "succeeded",
        events=(
            Event(
                "ABCD224O4023815X",
                "departed",
                "2022-11-19T12:10:00+00:00",
                "locode",
                "SYRACUSE",
                "USSYR",
                "US",
            ),
        ),
        shipments={"ABCD224O4023815X": "in_transit"},
        code_mapping={"P": "departed"},
    ),
)

# A DSV-style IFTSTA D10B in ISO 8859-1 (UNOC: GEJLHAVEGÅRD, GANLØSE). Its UNT says 18 segments
# but the message holds 39 (UNH at 2 to UNT at 40): the message is incomplete or altered, so it
# is rejected whole at its UNT, and no shipment is left behind. The bytes are Latin-1 as UNOC
# says: the file must not fail as undecodable.
case(
    "edifact/IFTSTA with a wrong UNT count, Latin-1",
    Case(
        "corpus/edifact/edifunct_IFTSTA_example.edi",
        "edifact",
        "failed",
        rejects=(Reject(40, ("18",)),),
    ),
)

# -------------------------------------------------------------------------------- EPCIS

SGTIN_2017 = "urn:epc:id:sgtin:0614141.107346.2017"
SGTIN_2018 = "urn:epc:id:sgtin:0614141.107346.2018"

# Two ObjectEvents. eventTime carries its offset, so the instant is explicit: 20:33:31.116-06:00
# = 02:33:31.116Z the next day. Event 1 (line 14): shipping with disposition in_transit ->
# warehouse_dispatched, once per EPC, at readPoint sgln 0614141.07346.1234. Event 2 (line 36):
# receiving -> warehouse_received for .2018 at readPoint sgln 0012345.11111.400.
case(
    "epcis/ObjectEvent shipping then receiving",
    Case(
        "corpus/epcis/openepcis_ObjectEvent.json",
        "epcis",
        "succeeded",
        events=(
            Event(
                SGTIN_2017,
                "warehouse_dispatched",
                "2005-04-04T02:33:31.116000+00:00",
                "explicit",
                "urn:epc:id:sgln:0614141.07346.1234",
            ),
            Event(
                SGTIN_2018,
                "warehouse_dispatched",
                "2005-04-04T02:33:31.116000+00:00",
                "explicit",
                "urn:epc:id:sgln:0614141.07346.1234",
            ),
            Event(
                SGTIN_2018,
                "warehouse_received",
                "2005-04-05T02:33:31.116000+00:00",
                "explicit",
                "urn:epc:id:sgln:0012345.11111.400",
            ),
        ),
        shipments={SGTIN_2017: "in_transit", SGTIN_2018: "in_transit"},
    ),
)

# An OBSERVE AggregationEvent: the pallet SSCC was seen at receiving, 14:58:56.591Z (the +02:00
# offset is where it happened; the instant is the same). The event is the unit's; OBSERVE loads
# nothing, so no parcel is created from the child EPCs. The unit is numbered by its GS1 key:
# urn:epc:id:sscc:0614141.1234567890 = extension 1, prefix 0614141, serial 234567890, check
# digit 8 (weights 3,1,... over 10614141234567890 sum to 132) -> SSCC 106141412345678908.
case(
    "epcis/AggregationEvent observed at receiving",
    Case(
        "corpus/epcis/openepcis_AggregationEvent.json",
        "epcis",
        "succeeded",
        events=(
            Event(
                "",
                "warehouse_received",
                "2013-06-08T14:58:56.591000+00:00",
                "explicit",
                "urn:epc:id:sgln:0614141.00777.0",
                unit="sscc:106141412345678908",
            ),
        ),
    ),
)

# Two TransactionEvents. Line 13: a hospital bizStep URI outside the CBV -> rejected by name,
# and its GSRN leaves no shipment. Line 31: transporting / in_transit of the GIAI
# urn:epc:id:giai:952005385.w2 at 10:00Z; an EPC's serial is case-sensitive, so ".w2" stays
# lower-case (issue 13 item 4). Its bizTransaction is a rail passage, not a purchase order.
case(
    "epcis/TransactionEvent rail passage of a lower-case GIAI",
    Case(
        "corpus/epcis/openepcis_TransactionEvent.json",
        "epcis",
        "partial",
        events=(
            Event(
                "urn:epc:id:giai:952005385.w2",
                "in_transit",
                "2014-12-12T10:00:00+00:00",
                "explicit",
                "urn:epc:id:sgln:952005385.011.ts4711",
            ),
        ),
        rejects=(Reject(13, ("summarising_discharge",)),),
        shipments={"urn:epc:id:giai:952005385.w2": "in_transit"},
    ),
)

# Six events, none of them a parcel's tracking event: a sensor reading (line 13), an unload from
# a container never loaded here (49), a bizStep outside the CBV (67), a TransformationEvent (85),
# an AssociationEvent error declaration (129) and an AssociationEvent (147). Each is rejected and
# none leaves a shipment or a unit (issue 13 item 5).
case(
    "epcis/six events none of them tracking",
    Case(
        "corpus/epcis/openepcis_Combination_of_different_event.json",
        "epcis",
        "failed",
        rejects=(
            Reject(13, ("sensor_reporting",)),
            Reject(49),
            Reject(67, ("summarising_discharge",)),
            Reject(85, ("TransformationEvent",)),
            Reject(129),
            Reject(147, ("AssociationEvent",)),
        ),
    ),
)

# Only a quantityList (200 KGM of a Digital Link lot): no EPC, so no parcel and nothing to reject.
case(
    "epcis/ObjectEvent with only a quantity",
    Case("corpus/epcis/openepcis_ObjectEvent_with_digitalLink.json", "epcis", "succeeded"),
)

# eventTime "22-07-2026" is not a date-time: the event (line 10) is rejected at that field and
# its Digital Link parcel is not created.
case(
    "epcis/invalid eventTime",
    Case(
        "corpus/epcis/openepcis_invalid_ObjectEvent_with_invalid_eventTime_format.json",
        "epcis",
        "failed",
        rejects=(Reject(10, ("eventTime",)),),
    ),
)

# bizStep "transforming" is neither a CBV step nor a URI: rejected (line 10), nothing created.
case(
    "epcis/non-standard bizStep",
    Case(
        "corpus/epcis/openepcis_invalid_ObjectEvent_with_non_standard_bizStep.json",
        "epcis",
        "failed",
        rejects=(Reject(10, ("transforming",)),),
    ),
)

# Ten SGTINs received at 17:10:16Z (line 14; offset +02:00 is where). Line 72 inspects the same
# ten: "inspecting" is not a step of a parcel's journey, so that event is rejected by name while
# the ten receptions stand.
PALLET = [f"urn:epc:id:sgtin:9520001.012346.100000010{n:02d}" for n in range(1, 11)]
case(
    "epcis/ten received then inspected",
    Case(
        "corpus/epcis/openepcis_ObjectEvent_with_persistentDisposition.json",
        "epcis",
        "partial",
        events=tuple(
            Event(
                epc,
                "warehouse_received",
                "2020-06-07T17:10:16+00:00",
                "explicit",
                "urn:epc:id:sgln:9529999.99999.0",
            )
            for epc in PALLET
        ),
        rejects=(Reject(72, ("inspecting",)),),
        shipments=dict.fromkeys(PALLET, "in_transit"),
    ),
)

# Line 14 repeats the shipping event with an errorDeclaration: it withdraws an event the hub never
# recorded, so it is rejected (an operator must see it) and leaves no parcel .2017 behind. Line 44
# is the receiving of .2018 at 20:33:31.116-06:00 = 02:33:31.116Z next day.
case(
    "epcis/error declaration of an unknown event, then a receiving",
    Case(
        "corpus/epcis/openepcis_ObjectEvent_with_error_declaration.json",
        "epcis",
        "partial",
        events=(
            Event(
                SGTIN_2018,
                "warehouse_received",
                "2005-04-05T02:33:31.116000+00:00",
                "explicit",
                "urn:epc:id:sgln:0012345.11111.400",
            ),
        ),
        rejects=(Reject(14, ("error declaration",)),),
        shipments={SGTIN_2018: "in_transit"},
    ),
)

# One event naming fourteen identifiers of every GS1 key type (among them the mixed-case GIAI
# serial "AAbb"), with bizStep "other": not a tracking step, so the event is rejected and none of
# the fourteen becomes a shipment.
case(
    "epcis/every GS1 key with bizStep other",
    Case(
        "corpus/epcis/openepcis_epcisDocWithAllGS1Keys.json",
        "epcis",
        "failed",
        rejects=(Reject(10, ("'other'",)),),
    ),
)

# Two ObjectEvents without the mandatory "action" (the second also without
# eventTimeZoneOffset): both rejected by the schema, no parcel created.
case(
    "epcis/events missing mandatory fields",
    Case(
        "corpus/epcis/openepcis_invalid_Combination_of_events_with_missing_mandatory_fields.json",
        "epcis",
        "failed",
        rejects=(Reject(10, ("action",)), Reject(30)),
    ),
)

# ---------------------------------------------------------------------------------- CEB

# CEB times are China time by the specification (Asia/Shanghai, UTC+8, no DST): the zone is the
# format's own field, not a guess. The messages name customs offices, not places: the events
# keep country CN only (mainland China by definition of the message), nothing from the warehouse.
# Each sample repeats its record ten times: the repeats are duplicates, not rejects (item 7).

# 507 arrival report, appTime 20180507153001 = 15:30:01 +08:00 = 07:30:01Z, for the three
# waybills it lists.
case(
    "ceb/507 export arrival of three waybills",
    Case(
        "ceb/export/CEB507Message.xml",
        "ceb",
        "succeeded",
        events=tuple(
            Event(
                f"L201805070000{n}",
                "arrived",
                "2018-05-07T07:30:01+00:00",
                "separate_field",
                country="CN",
            )
            for n in (1, 2, 3)
        ),
        shipments={f"L201805070000{n}": "in_transit" for n in (1, 2, 3)},
    ),
)

# 509 departure, leaveTime 20180508092201 = 09:22:01 +08:00 = 01:22:01Z.
case(
    "ceb/509 export departure",
    Case(
        "ceb/export/CEB509Message.xml",
        "ceb",
        "succeeded",
        events=(
            Event(
                "L2018050700001",
                "departed",
                "2018-05-08T01:22:01+00:00",
                "separate_field",
                country="CN",
            ),
        ),
        shipments={"L2018050700001": "in_transit"},
    ),
)

# 711 delivery into the supervised site, appTime 20160310163311 = 16:33:11 +08:00 = 08:33:11Z.
case(
    "ceb/711 import delivery into the bonded site",
    Case(
        "ceb/import/CEB711Message.xml",
        "ceb",
        "succeeded",
        events=(
            Event(
                "L201603081138001",
                "arrived",
                "2016-03-10T08:33:11+00:00",
                "separate_field",
                country="CN",
            ),
        ),
        shipments={"L201603081138001": "in_transit"},
    ),
)

# 607 master waybill (总分单) declared, appTime 20180507153001 = 07:30:01Z.
case(
    "ceb/607 export master waybill declared",
    Case(
        "ceb/export/CEB607Message.xml",
        "ceb",
        "succeeded",
        events=(
            Event(
                "L2018050700001",
                "customs_export_submitted",
                "2018-05-07T07:30:01+00:00",
                "separate_field",
                country="CN",
            ),
        ),
        shipments={"L2018050700001": "in_transit"},
    ),
)

# 506 receipt of the export waybill, returnStatus 2 (sent to customs), returnTime with
# milliseconds 20180507153001001 = 15:30:01.001 +08:00 = 07:30:01.001Z.
case(
    "ceb/506 export waybill receipt with milliseconds",
    Case(
        "ceb/export/CEB506Message.xml",
        "ceb",
        "succeeded",
        events=(
            Event(
                "L2018050700001",
                "customs_export_submitted",
                "2018-05-07T07:30:01.001000+00:00",
                "separate_field",
                country="CN",
            ),
        ),
        shipments={"L2018050700001": "in_transit"},
    ),
)

# 512 receipt of an import waybill, written with a default namespace (no "ceb:" prefix):
# returnStatus 2, "新增申报成功" (declared at the e-port), returnTime 20160506152250000 =
# 15:22:50.000 +08:00 = 07:22:50Z; the ten repeats are one event.
case(
    "ceb/512 import waybill receipt in the default namespace",
    Case(
        "ceb/import/CEB512Message.xml",
        "ceb",
        "succeeded",
        events=(
            Event(
                "L20160321114400001",
                "customs_import_submitted",
                "2016-05-06T07:22:50+00:00",
                "separate_field",
                country="CN",
            ),
        ),
        shipments={"L20160321114400001": "in_transit"},
    ),
)

# 513 logistics status R: the specification defines only S (signed for). Each of the ten records
# is rejected at its logisticsStatus line and the waybill L201603081138007 is not created.
case(
    "ceb/513 logistics status outside the specification",
    Case(
        "ceb/import/CEB513Message.xml",
        "ceb",
        "failed",
        rejects=tuple(Reject(line, ("'R'",)) for line in range(12, 121, 12)),
    ),
)


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
