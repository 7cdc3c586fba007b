from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from shipments.notifications import views as notification_views
from shipments.readers import tracking_page

urlpatterns: list[URLPattern | URLResolver] = [
    # The buyers' public tracking page (issue 5): no login, rate limited per client IP.
    path("track/", tracking_page.track_search, name="track-search"),
    # `path`: a GS1 Digital Link identifier contains "/" (docs/identifiers.md).
    path(
        "track/<tracking_number:tracking_number>", tracking_page.track_detail, name="track-detail"
    ),
    # A buyer email's signed one-click unsubscribe link (docs/notifications.md).
    path(
        "notifications/unsubscribe/<str:token>",
        notification_views.unsubscribe,
        name="notify-unsubscribe",
    ),
]
