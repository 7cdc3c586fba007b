"""The corpus's X12 files, each with the events it must produce (see test_corpus.py for how
they are run, and tests/data/corpus/README.md for their sources and licences)."""

from __future__ import annotations

from tests.warehouses.corpus.cases import Case, Event, Reject

CASES: dict[str, Case] = {}
case = CASES.__setitem__


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
