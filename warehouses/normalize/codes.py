"""A record's partner code -> the hub's event code: the one rule of docs/mapping.md, every format.

1. The feed's code mapping (exact spelling first, then any case); 2. the format's standard table
(the parser's suggestion, or for CSV/JSON a code of the hub's own vocabulary); 3. the feed's
unknown-code policy. Writing a mapping and replaying what it rejected is
`warehouses.ingest.replay.feed_code_map`.
"""

from __future__ import annotations

from shipments.statuses import EVENT_CODES
from warehouses.normalize.context import MEMO_LIMIT, FeedContext
from warehouses.parsers.base import Record, RecordRejected


def event_code_of(record: Record, ctx: FeedContext) -> tuple[str, str]:
    """(event code, description addition) of a record, or RecordRejected saying why none."""
    key = (record.partner_code, record.event_code, record.code_note, record.code_untracked)
    known = ctx.code_memo.get(key)
    if known is None:
        try:
            known = _code_resolve(record, ctx)
        except RecordRejected as exc:
            # Kept without its traceback, which would hold the first bad record's frame.
            known = exc.with_traceback(None)
        if len(ctx.code_memo) < MEMO_LIMIT:
            ctx.code_memo[key] = known
    if isinstance(known, RecordRejected):
        # The field is the record's own (an EPCIS pointer names the event's index).
        raise RecordRejected(
            known.reason,
            field=record.code_field or known.field,
            unknown_code=known.unknown_code,
        )
    return known


def _mapped(mapping: dict[str, str], partner: str) -> str | None:
    """The feed's event code for a partner code: exact spelling first, then any case."""
    found = mapping.get(partner) or mapping.get(partner.upper())
    if found is None:
        lowered = partner.lower()
        found = next((v for k, v in mapping.items() if k.lower() == lowered), None)
    return found


def _code_resolve(record: Record, ctx: FeedContext) -> tuple[str, str]:
    """1. the feed's code mapping; 2. the format's standard table (the parser's suggestion,
    or for CSV/JSON a code of the hub's own vocabulary); 3. the feed's unknown-code policy."""
    partner = record.partner_code.strip()
    if partner and ctx.code_mapping:
        mapped = _mapped(ctx.code_mapping, partner)
        if mapped:
            if mapped not in EVENT_CODES:
                raise RecordRejected(
                    f"the feed maps {partner!r} to {mapped!r}, which is not an event code",
                    field="event_code",
                )
            return mapped, ""
    if record.event_code:
        if record.event_code not in EVENT_CODES:
            raise RecordRejected(f"unknown event code {record.event_code!r}", field="event_code")
        return record.event_code, ""
    if not partner:
        raise RecordRejected("missing event code", field="event_code")
    if not record.code_note and partner.lower() in EVENT_CODES:
        return partner.lower(), ""
    note = record.code_note or f"unknown partner code {partner!r}"
    how = f"map {partner!r} to an event code in the feed's code mapping"
    if record.code_untracked:
        # A code the standard knows as no tracking event: never an exception by policy.
        raise RecordRejected(
            f"{note}; to record it, {how}", field="event_code", unknown_code=partner
        )
    if ctx.unknown_code_policy == "exception":
        return "exception", f"unmapped partner code {partner!r}"
    raise RecordRejected(
        f"{note}: {how}, or set the feed's unknown-code policy to exception",
        field="event_code",
        unknown_code=partner,
    )
