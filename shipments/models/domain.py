"""Shops, shipments, their events and status history, consolidation units, claims."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from rest_framework_api_key.models import AbstractAPIKey

from shipments.statuses import EVENT_CODE_CHOICES, Stage, Status


class Shop(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Set by an operator: a parcel any of these warehouses reported is this shop's, so the shop
    # claims it with its full history (docs/claiming.md).
    warehouses = models.ManyToManyField(
        "warehouses.Warehouse",
        blank=True,
        related_name="shops",
        help_text="Parcels these warehouses report belong to this shop: registering one that a "
        "feed reported first shows the shop its whole history (docs/claiming.md).",
    )

    def __str__(self) -> str:
        return self.name


class ShopAPIKey(AbstractAPIKey):
    """Hashed API key of a shop; several per shop, named, revocable (the key is shown once)."""

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="api_keys")

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "shop API key"
        verbose_name_plural = "shop API keys"


class TransportUnit(models.Model):
    class Kind(models.TextChoices):
        CONTAINER = "container"
        ULD = "uld", "ULD"
        PALLET = "pallet"
        BAG = "bag"
        TRAIN = "train"
        FLIGHT = "flight"
        OTHER = "other"

    number = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.OTHER)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.kind} {self.number}"


class Shipment(models.Model):
    tracking_number = models.CharField(max_length=64, unique=True)
    order_number = models.CharField(max_length=64, blank=True, default="", db_index=True)
    # Null until a shop registers it: feeds often report a parcel before its shop does.
    # Indexed by shipment_shop_updated, which begins with it.
    shop = models.ForeignKey(
        Shop,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="shipments",
        db_index=False,
    )
    carrier = models.CharField(max_length=64, blank=True, default="")
    transport_mode = models.CharField(max_length=16, blank=True, default="")
    origin_country = models.CharField(max_length=2, blank=True, default="")
    destination_country = models.CharField(max_length=2, blank=True, default="")
    weight_kg = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True)
    declared_value = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)

    status = models.CharField(max_length=24, choices=Status.choices, default=Status.PENDING)
    stage = models.CharField(max_length=24, choices=Stage.choices, blank=True, default="")
    status_changed_at = models.DateTimeField(null=True, blank=True)
    # No database constraint: events are partitioned by occurred_at (shipments/partitions.py),
    # and a foreign key can only name a unique key, which there must include occurred_at. The
    # ORM still nulls it when the event is deleted; the recorder only names events it stores.
    status_event = models.ForeignKey(
        "TrackingEvent",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    # The occurred_at of status_event (null iff it is): a join of that event by id then reads
    # one partition of the events table instead of probing every month's primary key.
    status_event_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The warehouse of status_event (its warehouse_id, which a unit's event has too), kept by
    # every writer of status_event_id with it: the dashboard's status snapshot counts shipments
    # by it without reading the events table. status_warehouse_known (true only with a status
    # event) tells "the event has no warehouse" (null, known) from "not recorded" (a row written
    # before migration 0017, or by code that set status_event alone): the snapshot looks the
    # event up for those rows only (operations.services.STATUS_SNAPSHOT_SQL). No database
    # constraint, as TrackingEvent.warehouse; deleting a warehouse nulls both alike.
    status_warehouse = models.ForeignKey(
        "warehouses.Warehouse",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        db_constraint=False,
        editable=False,
    )
    status_warehouse_known = models.BooleanField(default=False, db_default=False, editable=False)
    # Bounds of the shipment's own events' times (shipment_id = id) for reads to prune months
    # by (shipments.readers.pruning): the latest event (own or through a unit) and the earliest.
    # Every writer of events keeps first_event_at <= and last_event_at >= each own event's
    # occurred_at; deleting an event leaves them wide, which is still correct. Null: unknown.
    last_event_at = models.DateTimeField(null=True, blank=True)
    first_event_at = models.DateTimeField(null=True, blank=True, editable=False)
    archived_at = models.DateTimeField(null=True, blank=True)
    # An unproven claim (docs/claiming.md): its shop registered the parcel after a feed had
    # reported it, without proof. While set, the shop sees only events that occurred from then on
    # and the order number it registered (claim_order_number), never the feed's.
    claim_limited_since = models.DateTimeField(null=True, blank=True)
    claim_order_number = models.CharField(max_length=64, blank=True, default="", db_default="")
    created_at = models.DateTimeField(default=timezone.now)
    # Lists are per shop (shipment_shop_updated); an index of its own only cost writes.
    updated_at = models.DateTimeField(default=timezone.now)
    # The transaction that last changed the row (its 64-bit id), set by a trigger on every
    # write whoever the writer is: the list's sync-safe walk orders on it (docs/api-sync.md).
    change_xid = models.BigIntegerField(db_default=0, editable=False)

    class Meta:
        indexes = [
            models.Index(fields=["shop", "updated_at", "id"], name="shipment_shop_updated"),
            models.Index(fields=["shop", "change_xid", "id"], name="shipment_shop_change"),
            models.Index(fields=["status", "stage"], name="shipment_status_stage"),
            models.Index(fields=["destination_country", "status"], name="shipment_dest_status"),
            # The rows whose status_warehouse is not recorded (the dashboard's snapshot looks
            # their event up): none once every row is, so it costs no write of a known row.
            models.Index(
                fields=["id"],
                name="shipment_status_wh_unknown",
                condition=Q(status_warehouse_known=False, status_event__isnull=False),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=Status.values), name="shipment_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.tracking_number


class ShipmentClaim(models.Model):
    """A shop's registration of a parcel a feed had reported first: what proved it, and how it
    ended (docs/claiming.md). One row per (parcel, shop), the latest state; the operator reviews
    the unproven, displaced and refused ones in the admin."""

    class Proof(models.TextChoices):
        ORDER_NUMBER = "order_number", "Order number equals the feed's"
        WAREHOUSE = "warehouse", "Shop assigned to a warehouse of the parcel's events"
        OPERATOR = "operator", "Approved by an operator"
        NONE = "none", "No proof"

    class Outcome(models.TextChoices):
        ATTACHED = "attached", "Attached with its history"
        LIMITED = "limited", "Attached, events from the registration on (unproven)"
        DISPLACED = "displaced", "Displaced by a proven claim"
        REFUSED = "refused", "Refused: another shop holds the parcel"

    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="claims")
    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="claims")
    proof = models.CharField(max_length=16, choices=Proof.choices)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    order_number = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["shipment", "shop"], name="claim_unique_shop"),
        ]
        indexes = [models.Index(fields=["outcome", "-updated_at"], name="claim_outcome")]

    def __str__(self) -> str:
        return f"{self.shop_id} on {self.shipment_id}: {self.outcome}"


class TrackingEvent(models.Model):
    """One event as one source reported it. Either on a shipment or on a transport unit.

    The table is partitioned by month of occurred_at (shipments/partitions.py); its primary key
    in the database is (id, occurred_at), and id alone stays unique (one identity draws them).
    """

    class TzSource(models.TextChoices):
        """How a local time's zone was known (docs/places.md)."""

        EXPLICIT = "explicit", "Offset in the value"
        SEPARATE_FIELD = "separate_field", "Zone field in the record"
        LOCODE = "locode", "Zone of the event's UN/LOCODE"
        CITY = "city", "Zone of the event's city"
        AIRPORT = "airport", "Zone of the event's airport"
        COORDINATES = "coordinates", "Zone at the event's coordinates"
        COUNTRY = "country", "Zone of the event's country (one zone)"
        WAREHOUSE = "warehouse", "Zone of the warehouse the event happened at"
        FEED_DEFAULT = "feed_default", "Default zone of a single-place feed"
        # Written before the gazetteer (place or warehouse zone, not told apart); kept readable.
        LOCATION = "location", "Place or warehouse (before the gazetteer)"

    # The composite (shipment, occurred_at) and (unit, occurred_at) indexes serve these FKs; a
    # second single-column index would only slow the bulk insert path.
    shipment = models.ForeignKey(
        Shipment,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="events",
        db_index=False,
    )
    unit = models.ForeignKey(
        TransportUnit,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="events",
        db_index=False,
    )
    code = models.CharField(max_length=40, choices=EVENT_CODE_CHOICES)
    status = models.CharField(max_length=24, blank=True, default="")
    stage = models.CharField(max_length=24, blank=True, default="")
    occurred_at = models.DateTimeField()
    utc_offset_minutes = models.SmallIntegerField()
    tz_source = models.CharField(max_length=16, choices=TzSource.choices)
    location_name = models.CharField(max_length=200, blank=True, default="")
    location_code = models.CharField(max_length=10, blank=True, default="")
    country = models.CharField(max_length=2, blank=True, default="")
    description = models.TextField(blank=True, default="")
    # Provenance links without database constraints: PostgreSQL checks deferred foreign keys at
    # COMMIT, one lookup per row and key, and three of them per event cost more than the bulk
    # insert itself. The ORM still nulls them when a feed, run or warehouse is deleted.
    warehouse = models.ForeignKey(
        "warehouses.Warehouse",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    feed = models.ForeignKey(
        "warehouses.Feed",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    run = models.ForeignKey(
        "warehouses.FeedRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    source_line = models.IntegerField(default=0)
    raw = models.TextField(blank=True, default="")
    extra = models.JSONField(default=dict, blank=True)
    # 128 bits of sha256(source, tracking number or unit, code, occurred_at, location):
    # re-delivery of the same event by the same source can never insert a second row. Unique
    # with occurred_at (event_dedupe_key_time), as a partitioned table's keys must include its
    # partition key; the same rule, since occurred_at is part of what the key hashes.
    dedupe_key = models.UUIDField()
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["shipment", "occurred_at"], name="event_shipment_time"),
            # Only unit events: a parcel's event has no unit (event_on_shipment_xor_unit), and
            # every lookup by unit is an equality, which a partial index serves.
            models.Index(
                fields=["unit", "occurred_at"],
                name="event_unit_time",
                condition=models.Q(unit__isnull=False),
            ),
        ]
        constraints = [
            # Per monthly partition (migration 0014): see dedupe_key.
            models.UniqueConstraint(
                fields=["dedupe_key", "occurred_at"], name="event_dedupe_key_time"
            ),
            models.CheckConstraint(
                condition=(Q(shipment__isnull=False) & Q(unit__isnull=True))
                | (Q(shipment__isnull=True) & Q(unit__isnull=False)),
                name="event_on_shipment_xor_unit",
            ),
            models.CheckConstraint(
                condition=Q(utc_offset_minutes__gte=-18 * 60) & Q(utc_offset_minutes__lte=18 * 60),
                name="event_offset_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} @ {self.occurred_at:%Y-%m-%d %H:%M}Z"


class StatusChange(models.Model):
    """History of a shipment's status; every row names the event that caused it."""

    # Indexed by statuschange_shipment, which begins with it.
    shipment = models.ForeignKey(
        Shipment, on_delete=models.CASCADE, related_name="status_changes", db_index=False
    )
    from_status = models.CharField(max_length=24)
    to_status = models.CharField(max_length=24)
    from_stage = models.CharField(max_length=24, blank=True, default="")
    to_stage = models.CharField(max_length=24, blank=True, default="")
    # No database constraint, as Shipment.status_event: events are partitioned.
    event = models.ForeignKey(
        TrackingEvent,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["shipment", "changed_at"], name="statuschange_shipment")]


class UnitMembership(models.Model):
    """A shipment inside a transport unit from loaded_at until unloaded_at (open while null)."""

    unit = models.ForeignKey(TransportUnit, on_delete=models.CASCADE, related_name="memberships")
    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="memberships")
    loaded_at = models.DateTimeField()
    unloaded_at = models.DateTimeField(null=True, blank=True)
    # The source event that loaded / unloaded the parcel (an EPCIS AggregationEvent's feed and
    # eventID), so that its source can withdraw it (an error declaration). Plain ids, as the
    # events' provenance: deleting a feed keeps the history. Empty for manifests.
    load_feed_id = models.BigIntegerField(null=True, blank=True)
    load_event_id = models.CharField(max_length=500, blank=True, default="", db_default="")
    unload_feed_id = models.BigIntegerField(null=True, blank=True)
    unload_event_id = models.CharField(max_length=500, blank=True, default="", db_default="")

    class Meta:
        indexes = [
            models.Index(fields=["unit", "loaded_at"], name="membership_unit_loaded"),
            models.Index(
                fields=["load_feed_id", "load_event_id"],
                name="membership_load_event",
                condition=~Q(load_event_id=""),
            ),
            models.Index(
                fields=["unload_feed_id", "unload_event_id"],
                name="membership_unload_event",
                condition=~Q(unload_event_id=""),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["unit", "shipment", "loaded_at"], name="membership_unique_load"
            ),
            models.CheckConstraint(
                condition=Q(unloaded_at__isnull=True) | Q(unloaded_at__gte=models.F("loaded_at")),
                name="membership_unload_after_load",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.shipment_id} in {self.unit_id} from {self.loaded_at:%Y-%m-%d %H:%M}"
