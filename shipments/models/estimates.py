"""Delivery estimates (issue 5): lane statistics and each open shipment's estimate."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from shipments.models.domain import Shipment
from shipments.statuses import Stage


class EstimateBasis(models.TextChoices):
    """How coarse the history behind an estimate is: the narrowest lane with enough deliveries."""

    LANE = "lane", "Lane (origin → destination × mode)"
    DESTINATION = "destination", "Destination country"
    GLOBAL = "global", "All lanes"


class EstimateConfidence(models.TextChoices):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class DeliveryEstimateStat(models.Model):
    """Remaining time to delivery from entering a stage, over recently delivered shipments.

    Rebuilt set-based by `shipments.recording.estimates.estimate_stats_refresh` (scheduled); one
    row per (basis, lane key, stage). Coarser bases leave the finer key columns empty.
    """

    basis = models.CharField(max_length=12, choices=EstimateBasis.choices)
    origin_country = models.CharField(max_length=2, blank=True, default="")
    destination_country = models.CharField(max_length=2, blank=True, default="")
    transport_mode = models.CharField(max_length=16, blank=True, default="")
    stage = models.CharField(max_length=24, choices=Stage.choices)
    samples = models.IntegerField()
    p50_hours = models.FloatField()
    p80_hours = models.FloatField()
    p90_hours = models.FloatField()
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "basis",
                    "origin_country",
                    "destination_country",
                    "transport_mode",
                    "stage",
                ],
                name="estimatestat_unique_key",
            ),
        ]

    def __str__(self) -> str:
        lane = f"{self.origin_country or '*'}→{self.destination_country or '*'} "
        return f"{self.basis} {lane}{self.transport_mode or '*'} / {self.stage}"


class ShipmentEstimate(models.Model):
    """The current delivery estimate of an open shipment (none once delivered or returned).

    `stage_entered_at` anchors the estimate: the first event of the current stage. The recorder
    writes it when the status or stage changes; the scheduled refresh re-applies newer statistics
    to it without reading events again. Dates stay null while no history supports an estimate.
    """

    shipment = models.OneToOneField(
        Shipment, primary_key=True, on_delete=models.CASCADE, related_name="estimate"
    )
    stage = models.CharField(max_length=24, choices=Stage.choices)
    stage_entered_at = models.DateTimeField()
    earliest = models.DateTimeField(null=True, blank=True, help_text="p50 of the remaining time")
    latest = models.DateTimeField(null=True, blank=True, help_text="p80 of the remaining time")
    basis = models.CharField(max_length=12, choices=EstimateBasis.choices, blank=True, default="")
    confidence = models.CharField(
        max_length=8, choices=EstimateConfidence.choices, blank=True, default=""
    )
    samples = models.IntegerField(default=0)
    computed_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        if self.earliest is None or self.latest is None:
            return "no estimate yet"
        return f"{self.earliest:%Y-%m-%d} – {self.latest:%Y-%m-%d} ({self.confidence})"
