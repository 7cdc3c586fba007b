"""The corpus's EDIFACT files, each with the events it must produce (see test_corpus.py for how
they are run, and tests/data/corpus/README.md for their sources and licences)."""

from __future__ import annotations

from tests.warehouses.corpus.cases import Case, Event, Reject

CASES: dict[str, Case] = {}
case = CASES.__setitem__


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
