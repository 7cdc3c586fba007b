"""The corpus's EPCIS files, each with the events it must produce (see test_corpus.py for how
they are run, and tests/data/corpus/README.md for their sources and licences)."""

from __future__ import annotations

from tests.warehouses.corpus.cases import Case, Event, Reject

CASES: dict[str, Case] = {}
case = CASES.__setitem__


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
