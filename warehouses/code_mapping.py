"""Onboarding a partner's codes: map an unknown code on its feed and replay what it rejected.

The rule that applies a mapping lives in warehouses/normalize/codes.py (`event_code_of`); this
module only writes the mapping and sends the affected records through the pipeline again
(docs/mapping.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction

from shipments.statuses import EVENT_CODES
from warehouses import services
from warehouses.models import Feed, FeedRun, RejectedRecord

# Formats whose rejected records can be sent again one by one (services.rejected_records_replay);
# the others (X12, EDIFACT, EPCIS, CEB) carry envelopes or documents around each record, so
# their runs are re-run whole (their events dedupe).
LINE_FORMATS = frozenset(
    {Feed.Format.HUB_CSV, Feed.Format.PARTNER_CSV, Feed.Format.MANIFEST_CSV, Feed.Format.JSON}
)


class CodeMappingError(ValueError):
    pass


@dataclass(frozen=True)
class CodeMapped:
    partner_code: str
    event_code: str
    affected: int  # rejects of this code not replayed before
    runs: list[FeedRun] = field(default_factory=list)  # replays and re-runs, queued
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (reject id, why)


def feed_code_map(
    *, feed_id: int, partner_code: str, event_code: str, enqueue: bool = True
) -> CodeMapped:
    """Map a partner code to an event code on the feed, then replay the rejects it caused.

    1. Check the event code is in the hub's vocabulary.
    2. Save `partner_code -> event_code` in the feed's code mapping, the row locked, so two
       operators mapping two codes at once both keep theirs.
    3. The feed's rejects for this code that were not replayed yet: CSV/JSON records are
       replayed line by line; for other formats each affected run is re-run from its stored
       payload. Runs are queued after commit; events dedupe, so nothing is recorded twice.
    """
    partner = partner_code.strip()
    if not partner or len(partner) > 200:
        raise CodeMappingError("the partner code must be 1-200 characters")
    if event_code not in EVENT_CODES:
        raise CodeMappingError(f"{event_code!r} is not an event code")
    with transaction.atomic():
        feed = Feed.objects.select_for_update().get(pk=feed_id)
        mapping = dict(feed.code_mapping or {})
        mapping[partner] = event_code
        Feed.objects.filter(pk=feed.pk).update(code_mapping=mapping)
        rejects = list(
            RejectedRecord.objects.filter(
                run__feed_id=feed.pk, unknown_code=partner, replayed_in__isnull=True
            ).order_by("run_id", "line")
        )
        if not rejects:
            return CodeMapped(partner, event_code, affected=0)
        if feed.format in LINE_FORMATS:
            result = services.rejected_records_replay(rejects=rejects, enqueue=enqueue)
            return CodeMapped(
                partner, event_code, len(rejects), runs=result.runs, skipped=result.skipped
            )
        runs: list[FeedRun] = []
        skipped: list[tuple[int, str]] = []
        for run_id in sorted({r.run_id for r in rejects}):
            try:
                runs.append(services.feed_run_rerun(run_id=run_id, enqueue=enqueue))
            except services.ReplayError as exc:
                # The mapping stands; the other runs are still re-run.
                skipped += [(r.pk, str(exc)) for r in rejects if r.run_id == run_id]
        return CodeMapped(partner, event_code, len(rejects), runs=runs, skipped=skipped)
