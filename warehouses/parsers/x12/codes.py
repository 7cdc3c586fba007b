"""ANSI X12 code tables used by the X12 parser (pure data, no database).

Sources: the public X12 element code lists (1650 shipment status, 1651 status reason, 623 time
code, 91 transportation method, 355/188 units of measure). Only codes whose meaning is clear
enough to map to the hub vocabulary (shipments/statuses.py EVENT_CODES) are listed; any other
code is rejected with the code named (or recorded as an exception, by the feed's policy) unless
the feed's code mapping maps it (docs/mapping.md), instead of the hub guessing.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal, NamedTuple

# Where an AT7 status happens when its MS1 carries no city: at the shipper's (pick-up) or the
# consignee's (delivery) address named in the N1 loops, or somewhere the message does not say.
Place = Literal["pickup", "delivery", ""]


class StatusCode(NamedTuple):
    event_code: str
    description: str
    place: Place = ""


# Element 1650 (AT7-01) -> hub event code.
# Decisions worth knowing:
# - X3 "arrived at pick-up location" is the carrier's truck arriving at the shipper; the goods are
#   not in the carrier's hands yet, so it is `arrived` (at the pick-up place), not `picked_up`;
#   the pick-up itself is AF "departed pick-up location with shipment".
# - A7 "refused by consignee" is a failed delivery; the return (A3, or a later `returning`
#   event) is reported separately, so the hub does not assume the return has started.
# - J1 "delivered to connecting line" and R1 "received from prior carrier" are hand-overs
#   between carriers, not final delivery: `in_transit`.
# - OO is "Paperwork received - did not receive shipment or equipment" in the X12 1650 list
#   (not "out for delivery"): the carrier has the data but not the goods -> `info_received`.
# - CA "shipment cancelled" has no code of its own in the hub vocabulary -> `exception`.
# - AG and X2 are estimates, not events -> `eta_updated` (the estimate goes to
#   extra["estimated_delivery"]).
STATUS_CODES: dict[str, StatusCode] = {
    "A3": StatusCode("returned", "Shipment returned to shipper"),
    "A7": StatusCode("delivery_failed", "Refused by consignee", "delivery"),
    "A9": StatusCode("damaged", "Shipment damaged"),
    "AF": StatusCode("picked_up", "Carrier departed pick-up location with shipment", "pickup"),
    "AG": StatusCode("eta_updated", "Estimated delivery"),
    "AH": StatusCode("delivery_failed", "Attempted delivery", "delivery"),
    "AM": StatusCode("loaded", "Loaded on truck"),
    "AP": StatusCode("delivery_failed", "Delivery not completed", "delivery"),
    "AR": StatusCode("arrived", "Rail arrival at destination intermodal ramp"),
    "AW": StatusCode("available_for_pickup", "Shipment available for pick-up"),
    "CA": StatusCode("exception", "Shipment cancelled"),
    "CB": StatusCode("delivered", "Completed shipment (final part delivered)", "delivery"),
    "CP": StatusCode("loaded", "Completed loading at pick-up location", "pickup"),
    "CT": StatusCode("customs_import_cleared", "Customs release"),
    "D1": StatusCode("delivered", "Completed unloading at delivery location", "delivery"),
    "I1": StatusCode("arrived", "In-gate"),
    "J1": StatusCode("in_transit", "Delivered to connecting line"),
    "K1": StatusCode("customs_import_submitted", "Arrived at customs"),
    "L1": StatusCode("loaded", "Loading"),
    "OO": StatusCode("info_received", "Paperwork received - shipment not received"),
    "P1": StatusCode("departed", "Departed terminal location"),
    "PR": StatusCode("customs_held", "U.S. customs hold at in-bond location"),
    "R1": StatusCode("in_transit", "Received from prior carrier"),
    "RL": StatusCode("departed", "Rail departure from origin intermodal ramp"),
    "S1": StatusCode("arrived", "Trailer spotted at consignee's location", "delivery"),
    "SD": StatusCode("delayed", "Shipment delayed"),
    "X1": StatusCode("arrived", "Arrived at delivery location", "delivery"),
    "X2": StatusCode("eta_updated", "Estimated arrival at consignee's location"),
    "X3": StatusCode("arrived", "Arrived at pick-up location", "pickup"),
    "X4": StatusCode("arrived", "Arrived at terminal location"),
    "X5": StatusCode("arrived", "Arrived at delivery location loading dock", "delivery"),
    "X6": StatusCode("in_transit", "En route to delivery location"),
    "X8": StatusCode("arrived", "Arrived at pick-up location loading dock", "pickup"),
    "XB": StatusCode("info_received", "Shipment acknowledged"),
    "Y1": StatusCode("arrived", "Arrived at the multiple country consolidation hub"),
}

# Codes whose AT7 date/time is an estimate of the delivery, not the time something happened.
ESTIMATE_CODES = frozenset({"AG", "X2"})

# N1-01 entity codes that name the pick-up and the delivery address, in order of preference.
PLACE_PARTIES: dict[str, tuple[str, ...]] = {
    "pickup": ("SF", "SH"),  # ship from, shipper
    "delivery": ("ST", "CN"),  # ship to, consignee
}

# Element 1651 (AT7-02 / AT7-04): only used for the human description; unknown reasons are kept
# as codes in extra["status_reason"] without failing the record.
REASON_CODES: dict[str, str] = {
    "NS": "Normal status",
    "A1": "Missed delivery",
    "A2": "Incorrect address",
    "A3": "Indirect delivery",
    "A5": "Unable to locate",
    "A6": "Address corrected - delivery attempted",
    "AD": "Customer requested future delivery",
    "AG": "Consignee related",
    "AH": "Driver related",
    "AI": "Mechanical breakdown",
    "AJ": "Other carrier related",
    "AK": "Damaged, rewrapped in hub",
    "AM": "Shipper related",
    "AN": "Holiday - closed",
    "AO": "Weather or natural disaster related",
    "AP": "Awaiting export",
    "AQ": "Recipient unavailable - delivery delayed",
    "AR": "Improper international paperwork",
    "AS": "Hold due to customs documentation problems",
    "AY": "Missed pick-up",
    "B1": "Consignee closed",
    "B4": "Held for payment",
    "B5": "Held for consignee",
    "BB": "Held per shipper",
    "BC": "Missing documents",
    "BD": "Border clearance",
    "BE": "Road conditions",
    "BS": "Refused by customer",
    "BT": "Returned to shipper",
    "C1": "Waiting for customer pick-up",
    "CA": "Customs (import or export)",
}


class TimeCode(NamedTuple):
    """Meaning of an element 623 time code.

    kind "local": the time is local to the place of the event (naive datetime).
    kind "offset": a fixed UTC offset in minutes (standard/daylight letters, ISO P/M codes, UT).
    kind "zone": the named zone's wall clock, whichever of standard/daylight applied (IANA zone).
    """

    kind: Literal["local", "offset", "zone"]
    offset_minutes: int = 0
    zone: str = ""


def _iso_offset_codes() -> dict[str, TimeCode]:
    # 623 codes 01..12 are "equivalent to ISO P01..P12" (UTC+1..+12) and 13..24 are
    # "ISO M12..M01" (UTC-12..-1): X12 cannot carry "+", so the list spells the sign.
    codes: dict[str, TimeCode] = {}
    for number in range(1, 25):
        hours = number if number <= 12 else number - 25
        codes[f"{number:02d}"] = TimeCode("offset", hours * 60)
    return codes


TIME_CODES: dict[str, TimeCode] = {
    **_iso_offset_codes(),
    "LT": TimeCode("local"),
    "UT": TimeCode("offset", 0),
    "GM": TimeCode("offset", 0),
    # Atlantic (the X12 letters are T*, not A*: A* is Alaska)
    "TD": TimeCode("offset", -3 * 60),
    "TS": TimeCode("offset", -4 * 60),
    "TT": TimeCode("zone", zone="America/Halifax"),
    "ED": TimeCode("offset", -4 * 60),
    "ES": TimeCode("offset", -5 * 60),
    "ET": TimeCode("zone", zone="America/New_York"),
    "CD": TimeCode("offset", -5 * 60),
    "CS": TimeCode("offset", -6 * 60),
    "CT": TimeCode("zone", zone="America/Chicago"),
    "MD": TimeCode("offset", -6 * 60),
    "MS": TimeCode("offset", -7 * 60),
    "MT": TimeCode("zone", zone="America/Denver"),
    "PD": TimeCode("offset", -7 * 60),
    "PS": TimeCode("offset", -8 * 60),
    "PT": TimeCode("zone", zone="America/Los_Angeles"),
    "AD": TimeCode("offset", -8 * 60),
    "AS": TimeCode("offset", -9 * 60),
    "AT": TimeCode("zone", zone="America/Anchorage"),
    "HD": TimeCode("offset", -9 * 60),
    "HS": TimeCode("offset", -10 * 60),
    # Hawaii-Aleutian time: shipments go to Hawaii (no daylight saving), not to the Aleutians.
    "HT": TimeCode("zone", zone="Pacific/Honolulu"),
    "ND": TimeCode("offset", -150),
    "NS": TimeCode("offset", -210),
    "NT": TimeCode("zone", zone="America/St_Johns"),
}

# Element 91 (MS3-04, TD5-04, W27-01) -> hub transport mode; codes that do not say how the goods
# travel (best way, consolidation, customer pick-up) are left out and give an empty mode.
TRANSPORT_METHODS: dict[str, str] = {
    "A": "air",
    "AE": "air",
    "D": "postal",
    "E": "road",
    "L": "road",
    "LT": "road",
    "M": "road",
    "P": "road",
    "O": "sea",
    "S": "sea",
    "R": "rail",
    "X": "rail",  # intermodal (piggyback): the trailer rides a train
}

# Units of weight (element 355 in TD1/W03, element 188 letters in W12/AT8) -> kilograms per unit.
WEIGHT_UNITS: dict[str, Decimal] = {
    "KG": Decimal("1"),
    "K": Decimal("1"),
    "LB": Decimal("0.45359237"),
    "L": Decimal("0.45359237"),
    "OZ": Decimal("0.028349523125"),
    "GR": Decimal("0.001"),
    "TN": Decimal("907.18474"),  # US short ton
    "MT": Decimal("1000"),  # metric ton
}

# Country codes in X12 element 26 are usually ISO alpha-2; a few partners send alpha-3.
COUNTRY_ALPHA3: dict[str, str] = {
    "USA": "US",
    "CAN": "CA",
    "MEX": "MX",
    "CHN": "CN",
    "RUS": "RU",
    "KAZ": "KZ",
    "POL": "PL",
    "DEU": "DE",
    "BLR": "BY",
    "MNG": "MN",
}
