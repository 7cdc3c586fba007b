"""The shipment list as a sync walk (docs/api-sync.md): a shop that walks it while shipments
change sees every shipment that existed when it began and every later change, at least once.

Each change here commits on its own (as the recorder's and the API's writes do), so the tests
use transactional databases.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from shipments.models import Shipment
from tests.conftest import ShipmentFactory
from tests.shipments.conftest import ShopClient

pytestmark = pytest.mark.django_db(transaction=True)

LIST = reverse("api-shipments")


def _page(shop: ShopClient, **params: Any) -> dict[str, Any]:
    response = shop.client.get(LIST, params)
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    return body


def _numbers(body: dict[str, Any]) -> list[str]:
    return [r["tracking_number"] for r in body["results"]]


def _touch(number: str, order_number: str) -> None:
    """A change committed on its own (autocommit), stamped as every writer stamps it."""
    Shipment.objects.filter(tracking_number=number).update(
        order_number=order_number, updated_at=timezone.now()
    )


@pytest.fixture
def six(shop_a: ShopClient) -> list[str]:
    numbers = [f"S{i}" for i in range(6)]
    for number in numbers:
        ShipmentFactory(shop=shop_a.shop, tracking_number=number)
    return numbers


@pytest.mark.parametrize("ordering", ["-updated_at", "updated_at"])
def test_rows_changed_ahead_of_the_walk_are_seen_once_and_nothing_is_lost(
    shop_a: ShopClient, six: list[str], ordering: str
) -> None:
    first = _page(shop_a, page_size=2, ordering=ordering)
    seen = _numbers(first)
    # Two shipments the walk has not reached yet change: in either order, by updated_at, they
    # would jump behind the cursor (descending) or be handed out twice (ascending).
    ahead = [n for n in six if n not in seen][-2:]
    for number in ahead:
        _touch(number, "changed")
    body = first
    while body["next"]:
        body = _page(shop_a, page_size=2, ordering=ordering, cursor=body["next_cursor"])
        seen += _numbers(body)
    assert sorted(seen) == six
    # Each was seen once, and as changed.
    changed = {r["tracking_number"]: r["order_number"] for r in body["results"]}
    assert all(changed.get(n, "changed") == "changed" for n in ahead)


@pytest.mark.parametrize("ordering", ["-updated_at", "updated_at"])
def test_a_row_changed_after_it_was_seen_comes_again_as_changed(
    shop_a: ShopClient, six: list[str], ordering: str
) -> None:
    first = _page(shop_a, page_size=3, ordering=ordering)
    _touch(_numbers(first)[0], "again")
    seen: list[tuple[str, str]] = []
    body = first
    seen += [(r["tracking_number"], r["order_number"]) for r in body["results"]]
    while body["next"]:
        body = _page(shop_a, page_size=3, ordering=ordering, cursor=body["next_cursor"])
        seen += [(r["tracking_number"], r["order_number"]) for r in body["results"]]
    assert sorted({n for n, _ in seen}) == six
    assert len(seen) == 7
    assert seen[-1] == (_numbers(first)[0], "again")


def test_the_resume_cursor_hands_out_later_changes_and_new_shipments(
    shop_a: ShopClient, six: list[str]
) -> None:
    body = _page(shop_a, page_size=100)
    assert (sorted(_numbers(body)), body["next"], body["next_cursor"]) == (six, None, None)
    resume = body["resume_cursor"]
    quiet = _page(shop_a, cursor=resume)
    assert (quiet["results"], quiet["next"]) == ([], None)
    _touch("S3", "later")
    ShipmentFactory(shop=shop_a.shop, tracking_number="S9")
    later = _page(shop_a, cursor=quiet["resume_cursor"])
    assert _numbers(later) == ["S3", "S9"]
    assert later["results"][0]["order_number"] == "later"
    assert _page(shop_a, cursor=later["resume_cursor"])["results"] == []


@pytest.fixture
def other_connection() -> Iterator[psycopg.Connection[Any]]:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params) as conn:
        yield conn


def test_a_transaction_that_commits_after_a_later_one_is_waited_for_not_skipped(
    shop_a: ShopClient, six: list[str], other_connection: psycopg.Connection[Any]
) -> None:
    walked = _page(shop_a, page_size=100)
    assert sorted(_numbers(walked)) == six
    resume = walked["resume_cursor"]
    # T1 takes its transaction id first (changing S1) and stays open ...
    with other_connection.cursor() as cursor:
        cursor.execute(
            "UPDATE shipments_shipment SET order_number = 'slow' WHERE tracking_number = 'S1'"
        )
    # ... while T2, with a later id, changes S2 and commits.
    _touch("S2", "fast")
    held = _page(shop_a, cursor=resume)
    # S2 is held back while T1 runs: handing it out would move the cursor past T1's id.
    assert (held["results"], held["resume_cursor"]) == ([], resume)
    other_connection.commit()
    after = _page(shop_a, cursor=held["resume_cursor"])
    assert [(r["tracking_number"], r["order_number"]) for r in after["results"]] == [
        ("S1", "slow"),
        ("S2", "fast"),
    ]


def test_a_cursor_from_before_walks_had_phases_still_walks_on(
    shop_a: ShopClient, six: list[str]
) -> None:
    row = Shipment.objects.order_by("-updated_at", "-id")[1]
    legacy = base64.urlsafe_b64encode(f"{row.updated_at.isoformat()}|{row.pk}".encode()).decode()
    body = _page(shop_a, page_size=100, cursor=legacy)
    expected = list(
        Shipment.objects.order_by("-updated_at", "-id").values_list("tracking_number", flat=True)
    )[2:]
    assert _numbers(body) == expected
    for bad in ("not-a-cursor", "Mnx4fGR8fDF8Mg=="):
        response = shop_a.client.get(LIST, {"cursor": bad})
        assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_cursor")
    # Numbers beyond any stamp or id (past bigint) are compared, not an error.
    for text in (f"2|{10**30}|d||-1|{10**30}", f"2|1|a||{10**30}|{-(10**30)}"):
        far = base64.urlsafe_b64encode(text.encode()).decode()
        assert shop_a.client.get(LIST, {"cursor": far}).status_code == 200
    past = base64.urlsafe_b64encode(f"2|1|a||{10**30}|0".encode()).decode()
    assert _page(shop_a, cursor=past)["results"] == []
