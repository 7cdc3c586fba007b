from __future__ import annotations

from django.urls import URLPattern, path

from warehouses.api import views

urlpatterns: list[URLPattern] = [
    path("feeds/<slug:feed_code>/payloads", views.PayloadView.as_view(), name="api-feed-payloads"),
    path("feeds/<slug:feed_code>/runs/<int:run_id>", views.RunView.as_view(), name="api-feed-run"),
]
