"""The dashboard's tables as CSV or XLSX (docs/exports.md): the lane table, the warehouse table
and the whole exceptions queue, through the shops' export writer (shipments.exports).

The lane and warehouse tables are the dashboard's own reads (a few hundred rows of the
pre-aggregated tables); the queue is read in keyset batches like the shops' export, since it can
hold every stuck parcel of a bad week."""

from __future__ import annotations

from collections.abc import Callable

from django.utils import timezone

from operations import selectors
from operations.models import ExceptionItem
from shipments.exports import Cell, Export, keyset_rows
from shipments.statuses import STAGE_ORDER, Status

_Row = list[Cell]


def _p(p: selectors.Percentiles | None) -> _Row:
    return [None, None] if p is None else [p.p50, p.p90]


def lanes_export(params: dict[str, str]) -> Export:
    header = [
        "origin_country",
        "destination_country",
        "transport_mode",
        "delivered",
        "transit_p50_hours",
        "transit_p90_hours",
    ]
    for stage in STAGE_ORDER:
        header += [f"{stage}_p50_hours", f"{stage}_p90_hours"]
    rows: list[_Row] = []
    for lane in selectors.lane_stats():
        row: _Row = [lane.origin, lane.destination, lane.mode]
        row += [lane.total.samples if lane.total else 0, *_p(lane.total)]
        for stage in STAGE_ORDER:
            row += _p(lane.stages.get(stage))
        rows.append(row)
    return Export(name="lanes", header=header, batches=[rows])


def warehouses_export(params: dict[str, str]) -> Export:
    """Per warehouse: dwell (received -> dispatched) and current shipments per status, as the
    dashboard's dwell and "status by warehouse of the latest event" tables show them."""
    # (No weekly trend wanted: from today on there is none to read.)
    dwell, _ = selectors.dwell_stats(trend_since=timezone.now().date())
    _, by_status, _ = selectors.status_snapshot()
    statuses = [str(s) for s in Status.values]
    header = ["warehouse", "dwell_samples", "dwell_p50_hours", "dwell_p90_hours"]
    header += [f"shipments_{s}" for s in statuses]
    dwell_of = dict(dwell)
    names = [name for name, _ in dwell] + sorted(set(by_status) - set(dwell_of))
    rows: list[_Row] = []
    for name in names:
        p = dwell_of.get(name)
        counts = by_status.get(name, {})
        rows.append([name, p.samples if p else None, *_p(p), *[counts.get(s, 0) for s in statuses]])
    return Export(name="warehouses", header=header, batches=[rows])


EXCEPTION_COLUMNS = {
    "tracking_number": "shipment__tracking_number",
    "kind": "kind",
    "stage": "stage",
    "lane": "lane",
    "since": "since",
    "detail": "detail",
    "note": "note",
}


def exceptions_export(params: dict[str, str]) -> Export:
    """The open queue (every item, not the dashboard's first 50), `?kind=` for one kind."""
    kind = params.get("kind") or None
    if kind is not None and kind not in ExceptionItem.Kind.values:
        raise ValueError(f"kind must be one of {', '.join(ExceptionItem.Kind.values)}.")
    items = selectors.open_exceptions()
    if kind:
        items = items.filter(kind=kind)
    return Export(
        name=f"exceptions-{kind}" if kind else "exceptions",
        header=list(EXCEPTION_COLUMNS),
        batches=keyset_rows(items, list(EXCEPTION_COLUMNS.values())),
    )


TABLES: dict[str, Callable[[dict[str, str]], Export]] = {
    "lanes": lanes_export,
    "warehouses": warehouses_export,
    "exceptions": exceptions_export,
}
