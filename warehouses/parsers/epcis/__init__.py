"""GS1 EPCIS 2.0 JSON / JSON-LD documents (EPCISDocument and EPCISQueryDocument).

What comes out, per event of the document's eventList:

- ObjectEvent: one Record of kind "event" per EPC in epcList (tracking_number = the EPC exactly as
  given; extra["epc_key"] = `epc_to_key(epc)` for the feed's identifier mapping). The event code
  comes from bizStep and disposition through `codes` as a suggestion: partner_code is
  "bizstep:<name>" or "disp:<name>" and the normalizer applies the feed's code mapping and
  unknown-code policy first (docs/mapping.md); a value outside the CBV has no suggestion, a CBV
  step that tracks nothing (commissioning) is rejected unless mapped. An event with only a
  quantityList (class-level quantities, no EPCs) names no parcel and yields nothing, without
  an error.
- AggregationEvent:
  - ADD: one Record of kind "membership" per childEPC (unit_id = parentID, event_time = the time
    the child was loaded, extra["action"] = "ADD");
  - DELETE: the same with `unloaded_at` = eventTime (event_time left empty) and
    extra["action"] = "DELETE"; a DELETE without childEPCs means "every child" in EPCIS and gives
    one membership Record with an empty tracking_number and extra["all_children"] = True;
  - ADD and DELETE also give an "event" Record on the unit (unit_id = parentID, empty
    tracking_number) when their bizStep maps to an event code (loading -> loaded, unloading ->
    unloaded) or is outside the CBV (the feed's mapping or policy decides); a CBV step without
    an event (packing) adds nothing;
  - OBSERVE: one "event" Record on the unit (unit_id = parentID, empty tracking_number); the
    pipeline spreads it to the parcels inside the unit at that moment. Without a parentID the
    children are reported one by one, like an ObjectEvent.
- TransactionEvent: for every bizTransaction of type po, one Record of kind "shipment" per EPC
  (order_number = the bizTransaction identifier as given, unit_id = parentID if any). If the event
  also has a bizStep/disposition with an event code, "event" Records per EPC as for ObjectEvent.
- An event carrying an errorDeclaration is a retraction of the event with that eventID (in EPCIS
  2.0 an error declaration repeats the erroneous event, eventID included, and adds the
  declaration): one Record of kind "retraction", nothing else. Every other Record carries
  extra["event_id"] when the event has an eventID, so the pipeline can find what a later
  retraction withdraws.
- TransformationEvent, AssociationEvent and extension event types: a RecordError "unsupported
  EPCIS event type". Association links things (a sensor and a pallet) without containing them,
  so treating it as a unit membership would put a data logger on a parcel's timeline.

extra keys on Records: event_id, event_type, action, biz_step, disposition (as given),
local_offset, offset_disagrees, tz_source, read_point, biz_location, epc_key, unit_key,
biz_transactions ([{"type", "id"}]), child_epcs (OBSERVE aggregation), schema_validated;
retractions: event_id, corrective_event_ids, reason, declaration_time.

Times: `eventTime` is an instant; `eventTimeZoneOffset` is the local offset where it happened.
They legitimately differ (eventTime in Z) and in the wild also disagree (a +08:00 eventTime with
a +01:00 local offset). The instant always comes from eventTime and is expressed in the local
offset, so the datetime carries both; extra["local_offset"] keeps the declared offset and
extra["offset_disagrees"] says whether eventTime carried a different non-UTC offset of its own.
An eventTime without any offset takes eventTimeZoneOffset; with neither it stays naive.

Locations: readPoint (where the event was seen) is preferred over bizLocation. location_name is
the master-data name from the document header when present, else the id as given; location_code
is a UN/LOCODE when the master data carries one or the id spells one (".../locode/CNSFH").

Line numbers: every Record and RecordError of an event carries the 1-based physical line on which
that event's JSON object starts; RecordError.field is a JSON pointer into the document
("/epcisBody/eventList/3/bizStep").

Read in this order: `document` (decoding, the eventList, where each event starts; `parse` is
here), `schema` (the official JSON Schema in `json_schema/`), `events` (one function per event
type), `fields` (times, places), `codes` (the CBV tables and how an event's codes are read) and
`identifiers` (`epc_to_key`).
"""

from warehouses.parsers.epcis.document import parse
from warehouses.parsers.epcis.identifiers import epc_to_key
from warehouses.parsers.epcis.schema import SCHEMA_DIR, EpcisValidator, load_validator

__all__ = ["SCHEMA_DIR", "EpcisValidator", "epc_to_key", "load_validator", "parse"]
