"""The APIs' orjson renderer writes what DRF's JSONRenderer writes."""

from __future__ import annotations

import json
from decimal import Decimal

from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer

from config.renderers import FastJSONRenderer

DATA = {
    "tracking_number": "HB001",
    "description": "入库 · прибыл",
    "weight_kg": Decimal("1.250"),
    "label": gettext_lazy("Shipment"),
    "metadata": {"n": 1, "f": 1.5, "ok": True, "none": None, "list": [1, "a"]},
    "timeline": [{"occurred_at": "2026-05-02T02:00:00Z", "sources": []}],
}


def test_output_is_drfs() -> None:
    assert FastJSONRenderer().render(DATA) == JSONRenderer().render(DATA)


def test_integers_beyond_64_bits_fall_back_to_drf() -> None:
    data = {"metadata": {"big": 2**70, "small": -(2**65)}}
    assert json.loads(FastJSONRenderer().render(data)) == data


def test_an_indented_response_is_drfs() -> None:
    media = "application/json; indent=2"
    assert FastJSONRenderer().render(DATA, media) == JSONRenderer().render(DATA, media)


def test_no_data_is_an_empty_body() -> None:
    assert FastJSONRenderer().render(None) == b""
