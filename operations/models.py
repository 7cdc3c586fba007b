"""Pre-aggregated tables behind the operations dashboard, plus operators' acknowledgements.

Every table except `ExceptionAck` is rebuilt by `services.dashboard_refresh` (a scheduled Celery
job): the dashboard only reads these small tables, so it stays fast however many events exist.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class DashboardRefresh(models.Model):
    """One row per refresh: when the figures were computed and how long it took."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    seconds = models.FloatField()
    # Whether this refresh rebuilt the lane and dwell statistics too (see dashboard_refresh).
    stats = models.BooleanField(default=False, db_default=False)

    class Meta:
        get_latest_by = "finished_at"


class FeedHealth(models.Model):
    """Per feed: its last run, its last success and its recent reject rate."""

    feed = models.OneToOneField(
        "warehouses.Feed", primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    last_run_id = models.BigIntegerField(null=True)
    last_run_at = models.DateTimeField(null=True)
    last_run_status = models.CharField(max_length=12, blank=True, default="")
    last_success_at = models.DateTimeField(null=True)
    # The feed's schedule interval (django-celery-beat); null for feeds without one.
    every_seconds = models.IntegerField(null=True)
    runs_7d = models.IntegerField(default=0)
    records_7d = models.BigIntegerField(default=0)
    rejected_7d = models.BigIntegerField(default=0)


class DailyVolume(models.Model):
    """Events recorded per day (by when they happened), per warehouse and destination country."""

    day = models.DateField()
    warehouse = models.ForeignKey(
        "warehouses.Warehouse", null=True, on_delete=models.CASCADE, related_name="+"
    )
    destination_country = models.CharField(max_length=2, blank=True, default="")
    events = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["day"], name="dailyvolume_day")]


class DailyShipments(models.Model):
    """Shipments first seen per day, per destination country."""

    day = models.DateField()
    destination_country = models.CharField(max_length=2, blank=True, default="")
    shipments = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["day"], name="dailyshipments_day")]


class StatusSnapshot(models.Model):
    """Current shipments per status, per warehouse of the status event and destination country."""

    status = models.CharField(max_length=24)
    warehouse = models.ForeignKey(
        "warehouses.Warehouse", null=True, on_delete=models.CASCADE, related_name="+"
    )
    destination_country = models.CharField(max_length=2, blank=True, default="")
    shipments = models.BigIntegerField()


class LaneStageStat(models.Model):
    """Hours spent per stage (stage "" = whole transit to delivery) per lane.

    Lane = origin country -> destination country x transport mode; "*" in all three is every
    lane together (percentiles cannot be combined afterwards, so the refresh computes it).
    `week` is null for the whole window, else the Monday of the week the stage was entered.
    """

    origin_country = models.CharField(max_length=2)
    destination_country = models.CharField(max_length=2)
    transport_mode = models.CharField(max_length=16)
    stage = models.CharField(max_length=24, blank=True, default="")
    week = models.DateField(null=True)
    samples = models.IntegerField()
    p50_hours = models.FloatField()
    p90_hours = models.FloatField()

    class Meta:
        indexes = [
            models.Index(
                fields=["week", "origin_country", "destination_country"], name="lanestat_week"
            )
        ]


class WarehouseDwellStat(models.Model):
    """Hours between warehouse_received and warehouse_dispatched; warehouse null = all."""

    warehouse = models.ForeignKey(
        "warehouses.Warehouse", null=True, on_delete=models.CASCADE, related_name="+"
    )
    week = models.DateField(null=True)
    samples = models.IntegerField()
    p50_hours = models.FloatField()
    p90_hours = models.FloatField()


class ExceptionItem(models.Model):
    """A shipment that needs an operator, by kind. Kept stable across refreshes (upserted on
    (shipment, kind)) so a selection in the admin survives a refresh that runs meanwhile."""

    class Kind(models.TextChoices):
        STALE = "stale", "Stale for its lane and stage"
        CUSTOMS = "customs", "Customs held or rejected"
        FAILED_ATTEMPT = "failed_attempt", "Failed delivery attempt"
        DOCUMENTS = "documents", "Customs documents do not match"

    shipment = models.ForeignKey(
        "shipments.Shipment", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    # Since when the situation holds (entered the stage, status changed, match checked).
    since = models.DateTimeField()
    stage = models.CharField(max_length=24, blank=True, default="")
    lane = models.CharField(max_length=40, blank=True, default="")
    detail = models.CharField(max_length=300, blank=True, default="")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["shipment", "kind"], name="exceptionitem_unique")
        ]
        indexes = [models.Index(fields=["acknowledged_at", "since"], name="exceptionitem_open")]

    def __str__(self) -> str:
        return f"{self.kind}: shipment {self.shipment_id}"


class ExceptionAck(models.Model):
    """An operator's acknowledgement or note on a shipment's exception (never rebuilt).

    An acknowledgement hides the exception while the situation it saw lasts: one that starts
    later (a new `since`) shows up again.
    """

    shipment = models.ForeignKey("shipments.Shipment", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=ExceptionItem.Kind.choices)
    acknowledged = models.BooleanField(default=False)
    note = models.TextField(blank=True, default="")
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["shipment", "kind", "-at"], name="exceptionack_lookup")]

    def __str__(self) -> str:
        return f"{'ack' if self.acknowledged else 'note'} {self.kind} {self.shipment_id}"
