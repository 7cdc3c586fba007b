"""The shipments app's models, by subject: `domain` (shops, shipments, events, status history,
units, claims), `api` (idempotency, webhooks), `estimates`, and the buyer notifications'
(shipments/notifications/models.py). Import them from here."""

from shipments.models.api import (
    IdempotencyRecord,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEventType,
    WebhookSequence,
)
from shipments.models.domain import (
    Shipment,
    ShipmentClaim,
    Shop,
    ShopAPIKey,
    StatusChange,
    TrackingEvent,
    TransportUnit,
    UnitMembership,
)
from shipments.models.estimates import (
    DeliveryEstimateStat,
    EstimateBasis,
    EstimateConfidence,
    ShipmentEstimate,
)
from shipments.notifications.models import (
    BuyerContact,
    NotificationMessage,
    NotificationMoment,
    NotificationOptOut,
    ShopNotificationSettings,
)

__all__ = [
    "BuyerContact",
    "DeliveryEstimateStat",
    "EstimateBasis",
    "EstimateConfidence",
    "IdempotencyRecord",
    "NotificationMessage",
    "NotificationMoment",
    "NotificationOptOut",
    "Shipment",
    "ShipmentClaim",
    "ShipmentEstimate",
    "Shop",
    "ShopAPIKey",
    "ShopNotificationSettings",
    "StatusChange",
    "TrackingEvent",
    "TransportUnit",
    "UnitMembership",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEventType",
    "WebhookSequence",
]
