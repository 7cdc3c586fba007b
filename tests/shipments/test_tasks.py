"""Each task gets one thin test; the cases live with the services."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from shipments import tasks
from shipments.models import IdempotencyRecord
from tests.shipments.conftest import ShopClient

pytestmark = pytest.mark.django_db


def test_relay_with_nothing_due_sends_nothing() -> None:
    assert tasks.relay_webhooks() == 0


def test_prune_drops_idempotency_records_older_than_a_day(shop_a: ShopClient) -> None:
    old = IdempotencyRecord.objects.create(
        shop=shop_a.shop, key="old", fingerprint="x", status_code=201, body={}
    )
    IdempotencyRecord.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=2)
    )
    IdempotencyRecord.objects.create(
        shop=shop_a.shop, key="new", fingerprint="x", status_code=201, body={}
    )
    assert tasks.prune_idempotency_keys() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]
