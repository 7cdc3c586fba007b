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

from dataclasses import dataclass
from typing import Any, Final, Literal

from warehouses.parsers.base import RecordRejected
from warehouses.parsers.epcis.fields import optional_str

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


# --------------------------------------------------------------------------------------------
# An event's bizStep and disposition read through the tables above


@dataclass(frozen=True, slots=True)
class Code:
    """What the CBV tables say about an event's bizStep and disposition (docs/mapping.md).

    `partner` is the key a feed's code mapping uses: "bizstep:<name>" or "disp:<name>", the bare
    CBV name for CBV values and the value as sent for any other ("bizstep:urn:acme:weighing").
    """

    event_code: str  # the table's suggestion, "" for none
    partner: str  # "" when the event has neither bizStep nor disposition
    note: str = ""  # why there is no suggestion
    untracked: bool = False  # a CBV value that is no parcel tracking event (commissioning)
    field: str = "bizStep"

    @property
    def tracked(self) -> bool:
        """Whether the event gives a tracking event unless the feed maps it otherwise."""
        return bool(self.partner) and not self.untracked

    def values(self) -> dict[str, Any]:
        return {
            "event_code": self.event_code,
            "partner_code": self.partner,
            "code_field": self.field,
            "code_note": self.note,
            "code_untracked": self.untracked,
        }


def event_code_of(event: dict[str, Any]) -> Code:
    """The suggestion of the CBV tables for an event, and the partner code it is mapped under.

    A value outside the CBV is not guessed: it has no suggestion, and the normalizer applies
    the feed's code mapping, then its unknown-code policy.
    """
    step = optional_str(event, "bizStep")
    disposition = optional_str(event, "disposition")
    step_name = cbv_name(step, "bizstep") if step else ""
    disp_name = cbv_name(disposition, "disp") if disposition else ""
    if step and step_name not in BIZSTEP_CODES:
        return Code("", f"bizstep:{step_name}", f"unknown bizStep {step!r}")
    if disposition and disp_name not in DISPOSITION_CODES:
        return Code(
            "", f"disp:{disp_name}", f"unknown disposition {disposition!r}", field="disposition"
        )
    step_code = BIZSTEP_CODES[step_name] if step else None
    if disposition:
        disposition_code = DISPOSITION_CODES[disp_name]
        if disposition_code and (disp_name in OVERRIDING_DISPOSITIONS or step_code is None):
            return Code(disposition_code, f"disp:{disp_name}", field="disposition")
    if step_code:
        return Code(step_code, f"bizstep:{step_name}")
    if step:
        what = f"bizStep {step!r}" + (f" with disposition {disposition!r}" if disposition else "")
        return Code("", f"bizstep:{step_name}", f"{what} is not a parcel tracking event", True)
    if disposition:
        return Code(
            "",
            f"disp:{disp_name}",
            f"disposition {disposition!r} is not a parcel tracking event",
            True,
            "disposition",
        )
    return Code("", "")


def required_code(event: dict[str, Any]) -> Code:
    code = event_code_of(event)
    if not code.partner:
        raise RecordRejected("event has neither bizStep nor disposition", field="bizStep")
    return code


def purchase_orders(transactions: list[dict[str, str]]) -> list[str]:
    return [t["id"] for t in transactions if cbv_name(t["type"], "btt") in PURCHASE_ORDER_TYPES]


def with_bare_cbv_names(event: dict[str, Any]) -> dict[str, Any]:
    """A copy of the event for the schema, with long CBV spellings turned into bare names.

    The original is left alone so that partner_code and extra keep the values as sent.
    """
    checked = dict(event)
    fields: tuple[tuple[str, VocabularyKind], ...] = (
        ("bizStep", "bizstep"),
        ("disposition", "disp"),
    )
    for key, kind in fields:
        value = event.get(key)
        if isinstance(value, str):
            checked[key] = cbv_name(value, kind)
    lists: tuple[tuple[str, VocabularyKind], ...] = (
        ("bizTransactionList", "btt"),
        ("sourceList", "sdt"),
        ("destinationList", "sdt"),
    )
    for key, kind in lists:
        entries = event.get(key)
        if isinstance(entries, list):
            checked[key] = [_with_bare_type(entry, kind) for entry in entries]
    declaration = event.get("errorDeclaration")
    if isinstance(declaration, dict) and isinstance(declaration.get("reason"), str):
        checked["errorDeclaration"] = {
            **declaration,
            "reason": cbv_name(declaration["reason"], "er"),
        }
    return checked


def _with_bare_type(entry: object, kind: VocabularyKind) -> object:
    if isinstance(entry, dict) and isinstance(entry.get("type"), str):
        return {**entry, "type": cbv_name(entry["type"], kind)}
    return entry
