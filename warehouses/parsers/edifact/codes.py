"""Code tables for UN/EDIFACT IFTSTA: status events, date formats, transport modes.

Status codes are UN/ECE Recommendation 24 (Trade and Transport Status Codes, revision 6, 2017),
the list behind data element 4405 (C555, directories D.99B and later) and its predecessor 9011
(C555/C556 in D.96A-D.99A and the EANCOM 97/2002 IFTSTA subset, which reuses the Rec 24 numbers:
the shared sample `TransportStatus.txt` sends 21 delivered, 31 en route, 17 customs refused,
49 lost). Only codes with a clear equivalent in the hub's vocabulary are mapped; everything else
(operational codes such as "waiting for a pilot", equipment leasing, provisioning) is left out on
purpose: such a code is rejected with the code named (or recorded as an exception, by the
feed's policy) unless the feed's code mapping maps it, instead of the hub guessing an event.

Note that Rec 24 code 2 is "Loading, authorized" and 3 is "Arrival, in defective condition"; the
loading and unloading events are 48 ("Loading, completed onto a means of transport"), 29
("Unloaded") and 346 ("Unloading, completed from a means of transport").
"""

from __future__ import annotations

from typing import Final

# Rec 24 code -> (hub event code, Rec 24 name). The name becomes Record.description when the
# message carries no status text of its own.
STATUS_EVENTS: Final[dict[str, tuple[str, str]]] = {
    "1": ("arrived", "Arrival, completed"),
    "3": ("damaged", "Arrival, in defective condition"),
    "6": ("info_received", "Booking, completed"),
    "8": ("customs_import_cleared", "Cleared, import restrictions"),
    "9": ("customs_export_cleared", "Cleared, export restrictions"),
    # Rec 24 does not say which direction; in a cross-border import hub a customs clearance
    # reported to the receiving side is the import clearance.
    "12": ("customs_import_cleared", "Cleared, by customs"),
    "13": ("picked_up", "Collection/pick-up, completed"),
    "16": ("border_crossed", "Crossed border"),
    "17": ("customs_rejected", "Customs clearance, refused"),
    "18": ("damaged", "Damaged in the course of transportation"),
    "20": ("delayed", "Delayed, in the course of transportation"),
    "21": ("delivered", "Delivery, completed"),
    "22": ("delivered", "Delivery, completed as per instruction"),
    "23": ("delivery_failed", "Delivery, not completed"),
    "24": ("departed", "Departure, completed"),
    "25": ("delayed", "Departure, delayed"),
    "27": ("warehouse_dispatched", "Despatch, completed"),
    "28": ("unloaded", "Stripped"),
    "29": ("unloaded", "Unloaded"),
    "31": ("in_transit", "En route"),
    "35": ("in_transit", "Forwarded to destination"),
    "36": ("exception", "Not found"),
    "40": ("arrived", "Arrival, at port"),
    "41": ("in_transit", "Handed over under continued responsibility"),
    "48": ("loaded", "Loading, completed onto a means of transport"),
    "49": ("lost", "Lost"),
    "53": ("exception", "Collection/pick-up, not completed"),
    "66": ("damaged", "Plundered"),
    "74": ("warehouse_received", "Received"),
    "79": ("loaded", "Reloaded onto a means of transport"),
    "80": ("returned", "Returned as instructed"),
    "81": ("returned", "Returned wrecked"),
    "82": ("returned", "Returned"),
    "85": ("exception", "Short landed"),
    "86": ("exception", "Short shipped"),
    "87": ("exception", "Despatched, completed via a wrong route"),
    "90": ("exception", "Movement stopped"),
    "92": ("loaded", "Stowed"),
    "93": ("loaded", "Stuffed"),
    "94": ("loaded", "Stuffed and sealed"),
    "100": ("in_transit", "Transshipment"),
    "101": ("delayed", "Delayed in transit"),
    "104": ("delivery_failed", "Delivery refused, to be re-arranged"),
    "105": ("delayed", "Delivery, postponed"),
    "106": ("delivery_failed", "Delivery refused"),
    "109": ("delivery_failed", "Delivery, impossible, delivery notice left"),
    "110": ("delivery_failed", "Delivery, impossible, no delivery notice left"),
    "112": ("available_for_pickup", "Held, at consignee's disposal"),
    "113": ("out_for_delivery", "Delivery, in progress"),
    "117": ("lost", "Missing"),
    "119": ("lost", "Unable to be located"),
    "126": ("customs_import_submitted", "Customs clearance, in progress"),
    "127": ("departed", "Departed, completed on a means of transport"),
    "128": ("customs_held", "Awaiting customs import release"),
    "130": ("picked_up", "Consignment received from shipper"),
    "207": ("delivery_failed", "Delivery refused, agent"),
    "210": ("delivery_failed", "Delivery, unsuccessful attempt"),
    "211": ("delivery_failed", "Delivery not completed, business closed"),
    "218": ("damaged", "Damaged"),
    "220": ("exception", "Destination incorrect"),
    "222": ("exception", "Derailment"),
    "229": ("customs_export_held", "Export suspended"),
    "231": ("lost", "Missing, goods item"),
    "232": ("customs_held", "Import suspended"),
    "234": ("exception", "Incorrect address"),
    "266": ("delayed", "Delivery delayed, adverse weather conditions"),
    "269": ("delivery_failed", "Delivery, consignee absent"),
    "270": ("delayed", "Delayed operation, local circumstances"),
    "271": ("delayed", "Delayed operation, consignee's instructions"),
    "272": ("delayed", "Delayed operation, consignor's instructions"),
    "273": ("delayed", "Delayed operation"),
    "276": ("returning", "Delivery refused, return to the consignor"),
    "279": ("returning", "Delivery refused, automatic return"),
    "307": ("damaged", "Damaged but deliverable"),
    "308": ("damaged", "Spoilt"),
    "313": ("returned", "Returned by recipient"),
    "314": ("delayed", "Delayed, at origin"),
    "323": ("returning", "Return in progress"),
    "325": ("delivery_failed", "Delivery refused, by recipient"),
    "329": ("lost", "Consignment partially stolen"),
    "330": ("lost", "Consignment partially lost or missing"),
    "331": ("damaged", "Destroyed"),
    "346": ("unloaded", "Unloading, completed from a means of transport"),
    "348": ("delivery_failed", "Not deliverable"),
    "349": ("in_transit", "Handed over"),
    "352": (
        "delivery_failed",
        "Delivery not completed, business closed, inventory count",
    ),
    "353": ("delivery_failed", "Delivery not completed, business closed on Saturday"),
    "354": (
        "delivery_failed",
        "Delivery not completed, business closed on national holiday",
    ),
    "355": ("in_transit", "En route, via local route"),
    "356": ("in_transit", "En route, via national route"),
    "357": ("in_transit", "En route, via international route"),
    "361": ("eta_updated", "Delivery, expected"),
    "364": ("arrived", "Arrival, at yard"),
    "365": ("departed", "Departure, from yard"),
    "366": ("in_transit", "Accepted at interchange point"),
    "368": ("in_transit", "Transshipment to another wagon"),
    "372": ("loaded", "Equipment, loaded"),
}

# DTM C507 2379 date/time format codes the parser reads, with the layout named in errors.
DATE_FORMATS: Final[dict[str, str]] = {
    "102": "CCYYMMDD",
    "203": "CCYYMMDDHHMM",
    "204": "CCYYMMDDHHMMSS",
    "205": "CCYYMMDDHHMMZHHMM",
    "303": "CCYYMMDDHHMMZZZ",
    "304": "CCYYMMDDHHMMSSZZZ",
}

# DTM 2005 qualifiers that date the status itself, most specific first.
EVENT_DATE_QUALIFIERS: Final[tuple[str, ...]] = ("334", "7")
DOCUMENT_DATE_QUALIFIER: Final = "137"

# TDT C220 8067 mode of transport (UN/ECE Recommendation 19) -> Record.transport_mode.
TRANSPORT_MODES: Final[dict[str, str]] = {
    "1": "sea",
    "2": "rail",
    "3": "road",
    "4": "air",
    "5": "postal",
    "8": "sea",  # inland water transport: the hub has no separate mode for barges
}

# RFF C506 1153 qualifiers that can stand in for a missing CNI consignment number, in order.
CONSIGNMENT_REFERENCE_QUALIFIERS: Final[tuple[str, ...]] = ("CN", "BM", "AAS")
# RFF qualifiers that carry the shop's order number, in order of preference.
ORDER_REFERENCE_QUALIFIERS: Final[tuple[str, ...]] = ("ON", "CO", "CU")

# UNB S001 0001 syntax identifier -> Python codec for the character repertoire it declares.
# UNOA/UNOB are ASCII subsets and are read with the feed's configured encoding instead, because
# partners routinely label UTF-8 or GB18030 payloads as UNOA.
SYNTAX_CODECS: Final[dict[str, str]] = {
    "UNOC": "iso8859-1",
    "UNOD": "iso8859-2",
    "UNOE": "iso8859-5",
    "UNOF": "iso8859-7",
    "UNOG": "iso8859-3",
    "UNOH": "iso8859-4",
    "UNOI": "iso8859-6",
    "UNOJ": "iso8859-8",
    "UNOK": "iso8859-9",
    "UNOW": "utf-8",
    "UNOY": "utf-8",
}

# MEA C174 6411 weight units -> factor to kilograms.
WEIGHT_UNITS_TO_KG: Final[dict[str, str]] = {"KGM": "1", "GRM": "0.001", "TNE": "1000"}


def event_for_status(code: str) -> tuple[str, str] | None:
    """(hub event code, Rec 24 name) for a status code, or None when the code is not mapped."""
    return STATUS_EVENTS.get(code)
