"""Code tables for GS1 EPCIS 2.0: CBV business steps and dispositions -> hub event codes.

The names are the GS1 Core Business Vocabulary (CBV 2.0) values the EPCIS 2.0 JSON Schema lists
(`bizStep-JSON-Schema.json`, `disposition-JSON-Schema.json`). Every CBV value is listed, so a
value missing from these tables is unknown and the parser rejects it with the value named.

A value mapped to None is known but says nothing a parcel timeline needs (commissioning, encoding,
stock taking ...). Decisions worth knowing:

- `shipping` -> warehouse_dispatched: CBV defines shipping as "the overall process of
  staging_outbound, loading and departing ... a final event from a shipping point", i.e. the
  shipper's own outbound step; a real departure of a vehicle is `departing` -> departed.
- `consigning` (shipping plus the hand-over of possession) -> warehouse_dispatched as well;
  `accepting` (a party takes possession, the carrier's side of the hand-over) -> picked_up.
- `holding` -> exception: CBV holding segregates objects "for further review (quarantine,
  inspection)"; nothing says it is customs, so it is not guessed as customs_held.
- `inspecting` -> None: an inspection by itself changes nothing for the buyer; a bad outcome
  arrives as a disposition (damaged ...), which the parser maps.
- `retail_selling` and the disposition `retail_sold` -> delivered: the object reached its buyer.
- Dispositions that report something going wrong (damaged, stolen, destroyed, returned, and
  retail_sold) win over the business step: a `receiving` with disposition `damaged` is a damaged
  parcel, not merely a received one. Other dispositions (in_transit ...) only fill in when the
  business step has no event of its own.
"""

from __future__ import annotations

from typing import Final, Literal

BIZSTEP_CODES: Final[dict[str, str | None]] = {
    "accepting": "picked_up",
    "arriving": "arrived",
    "assembling": None,
    "collecting": None,  # CBV: collected for disposal, recycling or re-use
    "commissioning": None,
    "consigning": "warehouse_dispatched",
    "creating_class_instance": None,
    "cycle_counting": None,
    "decommissioning": None,
    "departing": "departed",
    "destroying": None,
    "disassembling": None,
    "dispensing": None,
    "encoding": None,
    "entering_exiting": None,  # a shop door, not a logistics step
    "holding": "exception",
    "inspecting": None,
    "installing": None,
    "killing": None,
    "loading": "loaded",
    "other": None,
    "packing": None,
    "picking": None,
    "receiving": "warehouse_received",
    "removing": None,
    "repackaging": None,
    "repairing": None,
    "replacing": None,
    "reserving": None,
    "retail_selling": "delivered",
    "sampling": None,
    "sensor_reporting": None,
    "shipping": "warehouse_dispatched",
    "staging_outbound": None,
    "stock_taking": None,
    "stocking": None,
    "storing": None,
    "transporting": "in_transit",
    "unloading": "unloaded",
    "unpacking": None,
    # void_shipping cancels an earlier shipping step; the hub cannot undo an event from a
    # business step, so it is rejected for an operator to see rather than silently dropped.
    "void_shipping": None,
}

DISPOSITION_CODES: Final[dict[str, str | None]] = {
    "active": None,
    "available": None,
    "completeness_inferred": None,
    "completeness_verified": None,
    "conformant": None,
    "container_closed": None,
    "container_open": None,
    "damaged": "damaged",
    "destroyed": "exception",
    "dispensed": None,
    "disposed": None,
    "encoded": None,
    "expired": None,
    "in_progress": None,
    "in_transit": "in_transit",
    "inactive": None,
    "mismatch_class": None,
    "mismatch_instance": None,
    "mismatch_quantity": None,
    "needs_replacement": None,
    "no_pedigree_match": None,
    "non_conformant": None,
    "non_sellable_other": None,
    "partially_dispensed": None,
    "recalled": None,
    "reserved": None,
    "retail_sold": "delivered",
    "returned": "returned",
    "sellable_accessible": None,
    "sellable_not_accessible": None,
    "stolen": "lost",
    "unavailable": None,
    "unknown": None,
}

# Dispositions whose event wins over the business step's (see the module docstring).
OVERRIDING_DISPOSITIONS: Final[frozenset[str]] = frozenset(
    {"damaged", "destroyed", "retail_sold", "returned", "stolen"}
)

# CBV 2.0 bizTransaction types that name a purchase order.
PURCHASE_ORDER_TYPES: Final[frozenset[str]] = frozenset({"po"})

VocabularyKind = Literal["bizstep", "disp", "btt", "er", "sdt"]

# The long spellings of a CBV value: the EPCIS 1.x URN (still emitted by systems that convert
# from XML), the CBV 2.0 web URI and its older ns.gs1.org host, the GS1 Web Vocabulary, and the
# compact `cbv:` form of the JSON-LD context. Compared case-insensitively.
_URN_PREFIX: Final[dict[VocabularyKind, str]] = {
    "bizstep": "urn:epcglobal:cbv:bizstep:",
    "disp": "urn:epcglobal:cbv:disp:",
    "btt": "urn:epcglobal:cbv:btt:",
    "er": "urn:epcglobal:cbv:er:",
    "sdt": "urn:epcglobal:cbv:sdt:",
}
_WEB_TERM: Final[dict[VocabularyKind, str]] = {
    "bizstep": "bizstep-",
    "disp": "disp-",
    "btt": "btt-",
    "er": "er-",
    "sdt": "sdt-",
}
_WEB_BASES: Final[tuple[str, ...]] = (
    "https://ref.gs1.org/cbv/",
    "http://ref.gs1.org/cbv/",
    "https://ns.gs1.org/cbv/",
    "http://ns.gs1.org/cbv/",
    "https://gs1.org/voc/",
    "http://gs1.org/voc/",
    "https://www.gs1.org/voc/",
    "http://www.gs1.org/voc/",
    "cbv:",
    "gs1:",
)


def cbv_name(value: str, kind: VocabularyKind) -> str:
    """The bare CBV name of `value` ("shipping") when it is a long CBV spelling, else `value`.

    "urn:epcglobal:cbv:bizstep:shipping", "https://ref.gs1.org/cbv/BizStep-shipping" and
    "shipping" all give "shipping". A value outside the CBV (a partner's own URI) comes back
    unchanged, so the caller can name it when rejecting it.
    """
    lowered = value.lower()
    urn = _URN_PREFIX[kind]
    if lowered.startswith(urn):
        return value[len(urn) :]
    term = _WEB_TERM[kind]
    for base in _WEB_BASES:
        if lowered.startswith(base + term):
            return value[len(base) + len(term) :]
    return value
