"""Without DATABASE_REPLICA_URL (the tests' settings) the replica machinery does nothing.

With a real replica: tests/deploy/test_replica.py."""

from __future__ import annotations

import pytest
from django.core.exceptions import MiddlewareNotUsed
from django.db import router
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from config.replica import ReadYourWritesMiddleware, read_alias, reads_from_replica


def test_the_middleware_removes_itself_and_no_router_is_installed() -> None:
    with pytest.raises(MiddlewareNotUsed):
        ReadYourWritesMiddleware(lambda request: HttpResponse())
    assert router.routers == []


def test_an_opted_in_read_goes_to_the_primary(db: None) -> None:
    request: HttpRequest = RequestFactory().get("/", HTTP_AUTHORIZATION="Api-Key a.b")
    with reads_from_replica(request) as alias:
        assert alias == "default"
        assert read_alias() == "default"
