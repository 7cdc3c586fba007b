"""The buyer's unsubscribe link: GET shows a confirmation, POST unsubscribes (RFC 8058: mail
clients POST `List-Unsubscribe=One-Click` to the List-Unsubscribe URL without a page)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from shipments.models import Shop
from shipments.notifications import services
from shipments.notifications.compose import unsubscribe_read


# The signed token is the authority, so no CSRF token: a mail client's one-click POST has none.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    found = unsubscribe_read(token)
    shop = Shop.objects.filter(pk=found[0]).first() if found else None
    if found is None or shop is None:
        return render(request, "notifications/unsubscribe.html", {"invalid": True}, status=404)
    done = False
    if request.method == "POST":
        done = services.unsubscribe(shop_id=shop.pk, email_hash_value=found[1])
    response = render(
        request, "notifications/unsubscribe.html", {"shop_name": shop.name, "done": done}
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    return response
