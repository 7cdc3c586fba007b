"""The fast negotiation must choose exactly what DRF's own negotiation chooses."""

from __future__ import annotations

import pytest
from django.http import Http404
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from config.negotiation import FastContentNegotiation
from config.renderers import FastJSONRenderer

ACCEPTS = [
    None,
    "*/*",
    "application/json",
    "application/json; indent=4",
    "application/*",
    "text/html",
    "text/html, application/json;q=0.9",
    "application/xml",
]


def _request(accept: str | None, query: str = "") -> Request:
    factory = APIRequestFactory()
    path = f"/api/v1/shipments{query}"
    request = factory.get(path) if accept is None else factory.get(path, HTTP_ACCEPT=accept)
    return Request(request)


def _choose(negotiation: DefaultContentNegotiation, request: Request, renderers: list) -> object:
    try:
        renderer, media_type = negotiation.select_renderer(request, renderers)
    except NotAcceptable:
        return "406"
    except Http404:  # an unknown ?format=
        return "404"
    return type(renderer), media_type


@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize("query", ["", "?format=json", "?format=api", "?status=delivered"])
@pytest.mark.parametrize(
    "renderer_classes",
    [
        [FastJSONRenderer],
        [JSONRenderer, BrowsableAPIRenderer],
        [BrowsableAPIRenderer, JSONRenderer],
    ],
)
def test_same_choice_as_drf(accept: str | None, query: str, renderer_classes: list) -> None:
    renderers = [cls() for cls in renderer_classes]
    expected = _choose(DefaultContentNegotiation(), _request(accept, query), renderers)
    assert _choose(FastContentNegotiation(), _request(accept, query), renderers) == expected


def test_plain_request_skips_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def parse(*args: object) -> list[str]:
        raise AssertionError("the Accept header was parsed")

    monkeypatch.setattr(FastContentNegotiation, "get_accept_list", parse)
    renderer = FastJSONRenderer()
    for accept in (None, "*/*", "application/json"):
        chosen = FastContentNegotiation().select_renderer(_request(accept), [renderer])
        assert chosen == (renderer, "application/json")
    with pytest.raises(AssertionError, match="parsed"):
        FastContentNegotiation().select_renderer(_request("text/html"), [renderer])
