"""Sending rejected records through the pipeline again: after a fix, nothing is recorded twice.

- `rejected_records_replay`: rejected records (their corrected text when there is one) as a new
  run of their feed, one record per line;
- `feed_run_rerun`: a stored payload run again (formats whose records cannot be sent one by
  one);
- `feed_code_map`: onboarding a partner's codes, which maps an unknown code on its feed and then
  replays what it rejected. The rule that applies a mapping is warehouses/normalize/codes.py
  (docs/mapping.md).

Events dedupe against what is stored, so replaying twice creates nothing new.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction

from shipments.statuses import EVENT_CODES
from warehouses.ingest.runs import feed_run_create
from warehouses.models import Feed, FeedRun, RejectedRecord
from warehouses.parsers import encodings

# Formats whose records are one line each under one header line: a replay payload is the
# original header plus the corrected lines.
_HEADER_FORMATS = frozenset(
    {Feed.Format.HUB_CSV, Feed.Format.PARTNER_CSV, Feed.Format.MANIFEST_CSV}
)
# Raw text over the parser's limit is stored clipped (parsers.encodings.clip): not replayable.
_CLIPPED = re.compile(r"… \[\d+ more chars\]\Z")


class ReplayError(Exception):
    pass


@dataclass(frozen=True)
class ReplayResult:
    runs: list[FeedRun]
    replayed: int
    skipped: list[tuple[int, str]]  # (reject id, why)


def _replay_encoding(run: FeedRun) -> encodings.Decoding:
    """The encoding the run's payload was read in (a run executed before runs stated it: the
    feed's, which was then always explicit)."""
    name = run.encoding or run.feed.encoding
    return encodings.Decoding(encodings.UTF8 if name == encodings.AUTO else name, detected=False)


def _payload_header(run: FeedRun, decoding: encodings.Decoding) -> bytes:
    """The first line of the run's stored payload as its parser read it (BOM kept; a UTF-16
    payload transcoded to UTF-8)."""
    try:
        with default_storage.open(run.payload_name, "rb") as raw:
            stream = encodings.reader(raw, decoding)
            line = stream.readline(settings.INGEST_MAX_LINE_BYTES + 1)
    except FileNotFoundError:
        raise ReplayError(f"payload of run {run.pk} is missing from storage") from None
    return line if line.endswith(b"\n") else line + b"\n"


def _replay_line(text: str, fmt: str) -> str:
    if fmt == Feed.Format.JSON:
        # JSON Lines: one object per line, even if the original sat pretty-printed in an array.
        try:
            return json.dumps(json.loads(text), ensure_ascii=False)
        except ValueError:
            return " ".join(text.splitlines())  # rejected again, with the parser's reason
    return text


def rejected_records_replay(
    *, rejects: Iterable[RejectedRecord], enqueue: bool = True
) -> ReplayResult:
    """Send rejected records (their corrected text when there is one) through the pipeline again.

    1. Group them by their run: a payload belongs to one feed, and CSV needs that run's header.
    2. Payload = the original file's header line (CSV formats) + one record per line, encoded
       in the feed's encoding.
    3. `feed_run_create(source=REPLAY, reprocess=True)`: the same parser, normalizer and
       recorder; events dedupe against what is stored, so replaying twice creates nothing new.
    4. Mark the records `replayed_in` the new run.
    Records with nothing to replay (a file-level reject, clipped text not corrected) are skipped.
    """
    groups: dict[int, list[RejectedRecord]] = {}
    skipped: list[tuple[int, str]] = []
    for reject in sorted(rejects, key=lambda r: (r.run_id, r.line, r.pk)):
        text = reject.corrected_raw or reject.raw
        if not text.strip():
            skipped.append((reject.pk, "no raw text to replay"))
        elif not reject.corrected_raw and _CLIPPED.search(text):
            skipped.append((reject.pk, "raw text was clipped: correct it first"))
        else:
            groups.setdefault(reject.run_id, []).append(reject)
    runs: list[FeedRun] = []
    replayed = 0
    for run_id, group in groups.items():
        original = FeedRun.objects.select_related("feed").get(pk=run_id)
        feed = original.feed
        if feed.format not in _HEADER_FORMATS and feed.format != Feed.Format.JSON:
            skipped += [
                (r.pk, f"{feed.format} records cannot be replayed one by one: re-run the run")
                for r in group
            ]
            continue
        # The replay is written in the encoding the original was read in, and says so.
        decoding = _replay_encoding(original)
        target = decoding.parser_encoding
        header = _payload_header(original, decoding) if feed.format in _HEADER_FORMATS else b""
        body = "".join(
            _replay_line(r.corrected_raw or r.raw, feed.format).rstrip("\r\n") + "\n" for r in group
        )
        try:
            encoded = body.encode(target)
        except UnicodeEncodeError as exc:
            raise ReplayError(f"corrected text does not fit the run's {target}") from exc
        lines = ",".join(str(r.line) for r in group[:20]) + ("…" if len(group) > 20 else "")
        with transaction.atomic():
            run = feed_run_create(
                feed=feed,
                content=io.BytesIO(header + encoded),
                original_name=f"replay of run {run_id} lines {lines}",
                source=FeedRun.Source.REPLAY,
                reprocess=True,
                enqueue=enqueue,
                encoding=target,
            )
            RejectedRecord.objects.filter(pk__in=[r.pk for r in group]).update(replayed_in=run)
        runs.append(run)
        replayed += len(group)
    return ReplayResult(runs=runs, replayed=replayed, skipped=skipped)


def feed_run_rerun(*, run_id: int, enqueue: bool = True) -> FeedRun:
    """Run a stored payload again (after fixing the feed's mapping); events dedupe."""
    original = FeedRun.objects.select_related("feed").get(pk=run_id)
    if not original.payload_name:
        raise ReplayError(f"run {run_id} has no stored payload")
    try:
        with transaction.atomic(), default_storage.open(original.payload_name, "rb") as stream:
            run = feed_run_create(
                feed=original.feed,
                content=stream,
                original_name=original.original_name,
                source=FeedRun.Source.REPLAY,
                reprocess=True,
                enqueue=enqueue,
            )
            RejectedRecord.objects.filter(run_id=run_id, replayed_in__isnull=True).update(
                replayed_in=run
            )
    except FileNotFoundError:
        raise ReplayError(f"payload of run {run_id} is missing from storage") from None
    return run


# --- onboarding a partner's codes -------------------------------------------------------------

# Formats whose rejected records can be sent again one by one (rejected_records_replay);
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
            result = rejected_records_replay(rejects=rejects, enqueue=enqueue)
            return CodeMapped(
                partner, event_code, len(rejects), runs=result.runs, skipped=result.skipped
            )
        runs: list[FeedRun] = []
        skipped: list[tuple[int, str]] = []
        for run_id in sorted({r.run_id for r in rejects}):
            try:
                runs.append(feed_run_rerun(run_id=run_id, enqueue=enqueue))
            except ReplayError as exc:
                # The mapping stands; the other runs are still re-run.
                skipped += [(r.pk, str(exc)) for r in rejects if r.run_id == run_id]
        return CodeMapped(partner, event_code, len(rejects), runs=runs, skipped=skipped)
