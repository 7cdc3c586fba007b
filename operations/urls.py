"""Mounted at /admin/operations/ before the admin's own URLs (config/urls.py)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

from operations import views

app_name = "operations"

urlpatterns = [
    path("dashboard/", admin.site.admin_view(views.dashboard), name="dashboard"),
    path("dashboard/refresh/", admin.site.admin_view(views.refresh_now), name="refresh"),
    path("dashboard/export/<slug:table>/", admin.site.admin_view(views.export), name="export"),
]
