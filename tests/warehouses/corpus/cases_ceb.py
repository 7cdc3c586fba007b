"""The corpus's CEB files, each with the events it must produce (see test_corpus.py for how
they are run, and tests/data/corpus/README.md for their sources and licences)."""

from __future__ import annotations

from tests.warehouses.corpus.cases import Case, Event, Reject

CASES: dict[str, Case] = {}
case = CASES.__setitem__


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
