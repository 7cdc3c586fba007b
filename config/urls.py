from __future__ import annotations

from django.contrib import admin
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


# Unknown URLs under /api/ answer in the API's JSON error shape; others get the normal page.
handler404 = "shipments.api.errors.not_found"
handler400 = "shipments.api.errors.bad_request"
handler500 = "shipments.api.errors.internal_error"

urlpatterns = [
    # The shops' API first: its detail read is the hottest path, and Django tries patterns in
    # order.
    path("api/v1/", include("shipments.api.urls")),
    path("api/v1/", include("warehouses.api.urls")),
    # The operations dashboard lives inside the admin (staff only, admin_view); before the
    # admin's own patterns so /admin/operations/dashboard/ is not taken for a model URL.
    path("admin/operations/", include("operations.urls")),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("shipments.urls")),
]
