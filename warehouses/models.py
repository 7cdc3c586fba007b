"""The sources side: warehouses, their feeds, every ingestion run and what it rejected."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone as dj_timezone
from django_celery_beat.models import PeriodicTask


class Warehouse(models.Model):
    class Kind(models.TextChoices):
        BONDED = "bonded", "Bonded warehouse"
        RAIL_YARD = "rail_yard", "Rail consolidation yard"
        AIR_TERMINAL = "air_terminal", "Air cargo terminal"
        FULFILMENT = "fulfilment", "Overseas fulfilment warehouse"
        CARRIER = "carrier", "Carrier"
        CUSTOMS = "customs", "Customs / broker"
        OTHER = "other", "Other"

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.OTHER)
    country = models.CharField(max_length=2)
    city = models.CharField(max_length=100, blank=True, default="")
    unlocode = models.CharField("UN/LOCODE", max_length=5, blank=True, default="")
    # Blank when unknown: then naive local times need a zone from the record or the feed.
    timezone = models.CharField("IANA time zone", max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=dj_timezone.now)

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Feed(models.Model):
    class Format(models.TextChoices):
        HUB_CSV = "hub-csv", "Hub CSV template"
        PARTNER_CSV = "partner-csv", "Partner CSV (column mapping)"
        JSON = "json", "JSON array / JSON Lines (field mapping)"
        MANIFEST_CSV = "manifest-csv", "Unit manifest CSV"
        X12 = "x12", "ANSI X12 214/945/856"
        EDIFACT = "edifact", "UN/EDIFACT IFTSTA"
        EPCIS = "epcis", "GS1 EPCIS 2.0 JSON-LD"
        CEB = "ceb", "China customs CEB XML"

    class Transport(models.TextChoices):
        UPLOAD = "upload", "Operator upload only"
        DIRECTORY = "directory", "Watched inbox directory"
        HTTP = "http", "HTTP pull"
        PUSH = "push", "Partner pushes to the API"

    class Encoding(models.TextChoices):
        AUTO = "auto", "Detect (BOM, else UTF-8 if valid, else GB18030)"
        UTF8 = "utf-8", "UTF-8 (BOM tolerated)"
        GB18030 = "gb18030", "GB18030 / GBK"

    class UnknownCodePolicy(models.TextChoices):
        REJECT = "reject", "Reject the record"
        EXCEPTION = "exception", "Record as an exception event"

    code = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=200)
    warehouse = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="feeds")
    format = models.CharField(max_length=20, choices=Format.choices, default=Format.HUB_CSV)
    transport = models.CharField(max_length=20, choices=Transport.choices, default=Transport.UPLOAD)
    source_location = models.CharField(
        max_length=500,
        blank=True,
        default="",
        help_text="URL for HTTP pull; folder for inbox",
    )
    schedule = models.OneToOneField(
        PeriodicTask,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="feed",
    )
    default_timezone = models.CharField(max_length=64, blank=True, default="")
    encoding = models.CharField(max_length=20, choices=Encoding.choices, default=Encoding.AUTO)
    code_mapping = models.JSONField(
        default=dict, blank=True, help_text="partner status code → hub event code"
    )
    column_mapping = models.JSONField(
        default=dict, blank=True, help_text="hub field → partner column / JSON field"
    )
    identifier_mapping = models.JSONField(
        default=dict,
        blank=True,
        help_text="partner identifier (EPC, SSCC) → tracking number",
    )
    unknown_code_policy = models.CharField(
        max_length=12,
        choices=UnknownCodePolicy.choices,
        default=UnknownCodePolicy.REJECT,
    )
    auth_secret_name = models.CharField(
        max_length=64,
        blank=True,
        default="",
        help_text="Name of the FEED_SECRET_<NAME> environment variable sent as Authorization",
    )
    active = models.BooleanField(default=True)
    # sha256 of the push API token (shown once); blank when the feed takes no pushes.
    push_token_hash = models.CharField(max_length=64, blank=True, default="", db_index=True)
    # HTTP pull state for conditional GET.
    http_etag = models.CharField(max_length=200, blank=True, default="")
    http_last_modified = models.CharField(max_length=100, blank=True, default="")
    last_checked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=dj_timezone.now)

    def __str__(self) -> str:
        return self.code


class FeedRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        PARTIAL = "partial"
        FAILED = "failed"
        DUPLICATE = "duplicate", "duplicate payload (no-op)"

    class Source(models.TextChoices):
        UPLOAD = "upload"
        DIRECTORY = "directory"
        HTTP = "http"
        PUSH = "push"
        CLI = "cli"
        REPLAY = "replay"

    feed = models.ForeignKey(Feed, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.UPLOAD)
    original_name = models.CharField(max_length=300, blank=True, default="")
    payload_name = models.CharField(max_length=300, blank=True, default="")
    payload_sha256 = models.CharField(max_length=64, blank=True, default="")
    payload_size = models.BigIntegerField(default=0)
    duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Asked for: blank = the feed's setting, or "auto"/an encoding (CLI --encoding, replays).
    # Once executed: the encoding the payload was read in ("gb18030", "utf-16-le", ...), and
    # whether it was detected (a BOM, the format's own declaration, or a scan under auto).
    encoding = models.CharField(max_length=20, blank=True, default="")
    encoding_detected = models.BooleanField(default=False)
    records = models.IntegerField(default=0)
    events_created = models.IntegerField(default=0)
    duplicates = models.IntegerField(default=0)
    rejected = models.IntegerField(default=0)
    shipments_touched = models.IntegerField(default=0)
    # Checkpoint: records fully committed. A retried run resumes after it (nothing twice).
    records_processed = models.IntegerField(default=0)
    # Claims of the run by a worker (an attempt that died or raised counts; a busy feed's wait
    # does not); INGEST_MAX_ATTEMPTS of them and the run fails (warehouses/ingest/lifecycle.py).
    attempts = models.SmallIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=dj_timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Written by the worker holding the run (claim, every batch, every few seconds of parsing):
    # a `running` run whose heartbeat stops is taken over by the stuck-run sweep.
    heartbeat_at = models.DateTimeField("last heartbeat", null=True, blank=True)
    # When its ingest message was published (or, for a retry, falls due); null while no message
    # is known to be on its way (the broker was down): the sweep sends one.
    enqueued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["feed", "-created_at"], name="feedrun_feed_created"),
            # The stuck-run sweep reads only unfinished runs; this keeps it off the history.
            models.Index(
                fields=["id"],
                condition=Q(status__in=["queued", "running"]),
                name="feedrun_unfinished",
            ),
            # Feed health's "last failure" per feed (operations dashboard).
            models.Index(
                fields=["feed", "-created_at"],
                condition=Q(status="failed"),
                name="feedrun_feed_failed",
            ),
        ]
        constraints = [
            # The same payload twice on one feed is recognised by the database, even when two
            # deliveries race: the loser becomes a `duplicate` run pointing at the winner.
            models.UniqueConstraint(
                fields=["feed", "payload_sha256"],
                condition=Q(duplicate_of__isnull=True) & ~Q(payload_sha256=""),
                name="feedrun_unique_payload",
            ),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} of {self.feed_id}"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class RejectedRecord(models.Model):
    run = models.ForeignKey(FeedRun, on_delete=models.CASCADE, related_name="rejects")
    line = models.IntegerField()
    field = models.CharField(max_length=100, blank=True, default="")
    reason = models.TextField()
    raw = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=dj_timezone.now)
    # Triage (issue 5): the operator's corrected text, and the run that replayed the record.
    corrected_raw = models.TextField(
        "corrected raw",
        blank=True,
        default="",
        help_text="The record as it should have been; replay sends it through the pipeline",
    )
    replayed_in = models.ForeignKey(
        FeedRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="replayed_rejects"
    )
    # The partner code as the feed's code mapping writes it ("VD", "bizstep:weighing"), when the
    # record was rejected because that code has no event code: the admin counts these per feed
    # without parsing reasons, and maps them in one click (docs/mapping.md).
    unknown_code = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        indexes = [
            models.Index(fields=["run", "line"], name="rejected_run_line"),
            # Few rows are code rejects: a partial index keeps counting them cheap.
            models.Index(
                fields=["run", "unknown_code"],
                name="rejected_unknown_code",
                condition=~Q(unknown_code=""),
            ),
        ]
        constraints = [
            # A retried run re-reads its last unfinished batch; the same reject is kept once.
            models.UniqueConstraint(
                fields=["run", "line", "field", "reason"], name="rejected_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason[:80]}"


class InterchangeSeen(models.Model):
    """An EDI interchange (X12 ISA, EDIFACT UNB) a feed has delivered: a partner that re-sends
    an interchange under the same control number in a new file is sending it twice (X12.5)."""

    feed = models.ForeignKey(Feed, on_delete=models.CASCADE, related_name="+")
    # "x12:SENDER/RECEIVER/ISA13" or "edifact:SENDER/UNB05"
    interchange = models.CharField(max_length=200)
    run = models.ForeignKey(FeedRun, on_delete=models.CASCADE, related_name="+")
    first_line = models.IntegerField(default=0)
    seen_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["feed", "interchange"], name="interchange_seen_unique")
        ]

    def __str__(self) -> str:
        return self.interchange


class CustomsDocument(models.Model):
    """One China customs (CEB) document: order 311/303, payment 411/403, waybill 511/505, draft
    inventories, cancel/refund applications and their receipts.

    Documents are filed under (doc_type, number), not per feed: the order, the payment and the
    waybill of one order come from three different senders (platform, payment company, carrier)
    and customs matches them by number. A re-delivered document replaces the stored one, as a
    re-declaration does at customs.
    """

    doc_type = models.CharField(max_length=40)
    # order_no for orders and payments, logistics_no for waybills, else the declaration's number
    number = models.CharField(max_length=200)
    message = models.CharField(max_length=10, blank=True, default="")  # "CEB311"
    direction = models.CharField(max_length=6, blank=True, default="")  # import / export
    order_no = models.CharField(max_length=64, blank=True, default="", db_index=True)
    logistics_no = models.CharField(max_length=64, blank=True, default="", db_index=True)
    cop_no = models.CharField(max_length=64, blank=True, default="", db_index=True)
    invt_no = models.CharField(max_length=64, blank=True, default="", db_index=True)
    pre_no = models.CharField(max_length=64, blank=True, default="")
    pay_transaction_id = models.CharField(max_length=100, blank=True, default="", db_index=True)
    data = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField(null=True, blank=True)
    feed = models.ForeignKey(
        Feed, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    run = models.ForeignKey(
        FeedRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    line = models.IntegerField(default=0)
    created_at = models.DateTimeField(default=dj_timezone.now)
    updated_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["doc_type", "number"], name="customs_document_unique")
        ]

    def __str__(self) -> str:
        return f"{self.message or self.doc_type} {self.number}"


class CustomsMatch(models.Model):
    """The three-document match (三单对碰) of one order: what customs would decide right now.

    Recomputed whenever the order, its payment or its waybill arrives; `shipment` is the parcel
    the waybill names (or, without a waybill, a shipment carrying the order number).
    """

    class Result(models.TextChoices):
        MATCHED = "matched"
        MISSING = "missing"
        MISMATCH = "mismatch"

    order_no = models.CharField(max_length=64, unique=True)
    direction = models.CharField(max_length=6, blank=True, default="")
    result = models.CharField(max_length=10, choices=Result.choices)
    missing = models.JSONField(default=list, blank=True)  # ["payment", "waybill"]
    mismatched = models.JSONField(default=list, blank=True)  # ["amount", "consignee"]
    logistics_no = models.CharField(max_length=64, blank=True, default="")
    shipment = models.ForeignKey(
        "shipments.Shipment",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    checked_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        indexes = [models.Index(fields=["result", "-checked_at"], name="customsmatch_result")]

    def __str__(self) -> str:
        return f"{self.order_no}: {self.result}"

    @property
    def would_be_refused(self) -> bool:
        return self.result != self.Result.MATCHED


class RetractedEvent(models.Model):
    """Audit of an event withdrawn by its source (an EPCIS error declaration): the event row is
    deleted from the timeline and its full data is kept here."""

    feed = models.ForeignKey(
        Feed, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    run = models.ForeignKey(
        FeedRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source_event_id = models.CharField(max_length=500, db_index=True)  # the EPCIS eventID
    # The withdrawn row's id: a TrackingEvent's, or for code membership_load / membership_unload
    # (a load deleted, an unload reopened) a UnitMembership's.
    event_pk = models.BigIntegerField()
    shipment_id = models.BigIntegerField(null=True, blank=True)
    unit_id = models.BigIntegerField(null=True, blank=True)
    code = models.CharField(max_length=40)
    occurred_at = models.DateTimeField()
    event_data = models.JSONField(default=dict)
    reason = models.CharField(max_length=500, blank=True, default="")
    declared_at = models.DateTimeField(null=True, blank=True)
    line = models.IntegerField(default=0)
    retracted_at = models.DateTimeField(default=dj_timezone.now)

    def __str__(self) -> str:
        return f"retracted {self.code} ({self.source_event_id})"
