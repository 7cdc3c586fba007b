"""Writes on the domain side that are not the bulk event path (see recording.py for that)."""

from __future__ import annotations

from django.db import transaction
from django.utils.text import slugify

from shipments.models import Shop, ShopAPIKey


def shop_create(*, name: str, slug: str = "") -> Shop:
    base = slugify(slug or name)[:70] or "shop"
    candidate, n = base, 1
    while Shop.objects.filter(slug=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return Shop.objects.create(name=name, slug=candidate)


@transaction.atomic
def shop_api_key_create(*, shop: Shop, name: str = "default") -> tuple[ShopAPIKey, str]:
    """A new key for the shop: the plain key is returned once and only its hash is stored."""
    api_key, key = ShopAPIKey.objects.create_key(shop=shop, name=name[:50])
    assert isinstance(api_key, ShopAPIKey)
    return api_key, key
