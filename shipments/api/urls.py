from __future__ import annotations

from django.urls import URLPattern, path

from shipments.api import exports, views

urlpatterns: list[URLPattern] = [
    path("shipments", views.ShipmentCollectionView.as_view(), name="api-shipments"),
    path("shipments/bulk", views.ShipmentBulkView.as_view(), name="api-shipments-bulk"),
    # Before the detail route, which would read "export" as a tracking number.
    path("shipments/export", exports.ShipmentExportView.as_view(), name="api-shipments-export"),
    # `path`, not `str`: a tracking number may contain "/" (a GS1 Digital Link URI, a carrier's
    # "ABC/123"); the archive route comes first so that its suffix is not read as part of one.
    path(
        "shipments/<tracking_number:tracking_number>/archive",
        views.ShipmentArchiveView.as_view(),
        name="api-shipment-archive",
    ),
    path(
        "shipments/<tracking_number:tracking_number>",
        views.ShipmentDetailView.as_view(),
        name="api-shipment",
    ),
    path(
        "notifications/settings",
        views.NotificationSettingsView.as_view(),
        name="api-notification-settings",
    ),
    path(
        "webhooks/endpoints",
        views.WebhookEndpointCollectionView.as_view(),
        name="api-webhook-endpoints",
    ),
    path(
        "webhooks/endpoints/<int:endpoint_id>",
        views.WebhookEndpointDetailView.as_view(),
        name="api-webhook-endpoint",
    ),
    path(
        "webhooks/endpoints/<int:endpoint_id>/rotate-secret",
        views.WebhookEndpointRotateView.as_view(),
        name="api-webhook-endpoint-rotate",
    ),
    path(
        "webhooks/endpoints/<int:endpoint_id>/enable",
        views.WebhookEndpointEnableView.as_view(),
        name="api-webhook-endpoint-enable",
    ),
    path(
        "webhooks/endpoints/<int:endpoint_id>/log",
        views.WebhookEndpointLogView.as_view(),
        name="api-webhook-endpoint-log",
    ),
]
