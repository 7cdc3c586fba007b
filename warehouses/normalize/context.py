"""What the normaliser knows about a run's feed and its warehouse, with its per-run memos."""

from __future__ import annotations

from dataclasses import dataclass, field

from warehouses.models import Feed, Warehouse
from warehouses.parsers.base import RecordRejected

# A bound on per-run memos, so a file of endlessly different bad values cannot grow them.
MEMO_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class FeedContext:
    """What the normalizer needs to know about the feed and its warehouse."""

    code_mapping: dict[str, str] = field(default_factory=dict)
    unknown_code_policy: str = "reject"
    warehouse_timezone: str = ""
    # Set only on a feed declared single-place: every event in it happens in this zone.
    feed_timezone: str = ""
    # Who the warehouse is, to tell an event at the warehouse from one elsewhere. A carrier or
    # customs "warehouse" is a sender, not a site: place-less events in its feeds are nowhere.
    warehouse_name: str = ""
    warehouse_city: str = ""
    warehouse_locode: str = ""
    warehouse_is_site: bool = True
    identifier_mapping: dict[str, str] = field(default_factory=dict)
    # (partner code, suggestion, note, untracked) -> what the code rule made of it: a feed uses
    # a handful of codes over millions of records, so each is resolved once per run.
    code_memo: dict[tuple[str, str, str, bool], tuple[str, str] | RecordRejected] = field(
        default_factory=dict, compare=False, repr=False
    )
    # Tracking number as given -> clean and valid (a parcel's events repeat it); only valid
    # ones are kept, so every reject still reports its own reason.
    tracking_memo: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    # The place as given -> (zone, tz_source) or why there is none: a feed names a few places
    # over millions of records, so each is looked up once per run.
    place_memo: dict[tuple[object, ...], tuple[str, str] | RecordRejected] = field(
        default_factory=dict, compare=False, repr=False
    )


# Warehouse rows that stand for a sender rather than a site: their events happen elsewhere.
_SENDER_KINDS = frozenset({Warehouse.Kind.CARRIER, Warehouse.Kind.CUSTOMS})


def feed_context(feed: Feed) -> FeedContext:
    warehouse: Warehouse = feed.warehouse
    return FeedContext(
        code_mapping={str(k): str(v) for k, v in (feed.code_mapping or {}).items()},
        unknown_code_policy=feed.unknown_code_policy,
        warehouse_timezone=warehouse.timezone,
        feed_timezone=feed.default_timezone,
        warehouse_name=warehouse.name,
        warehouse_city=warehouse.city,
        warehouse_locode=warehouse.unlocode,
        warehouse_is_site=warehouse.kind not in _SENDER_KINDS,
        identifier_mapping={str(k): str(v) for k, v in (feed.identifier_mapping or {}).items()},
    )
