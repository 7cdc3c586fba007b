"""The APIs' JSON renderer: orjson, several times faster than the standard library's encoder."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

# Types orjson does not know (Decimal, lazy translations, ...) go through DRF's own encoder.
_fallback = JSONEncoder().default


class FastJSONRenderer(JSONRenderer):
    """Same output as DRF's compact, UTF-8 JSONRenderer for the data the APIs render (plain
    dicts, lists, strings and numbers); an indented response (`Accept: application/json;
    indent=N`) and anything orjson refuses still go through DRF's renderer."""

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        if data is None:
            return b""
        if self.get_indent(accepted_media_type or "", renderer_context or {}):
            return super().render(data, accepted_media_type, renderer_context)
        try:
            return orjson.dumps(data, default=_fallback, option=orjson.OPT_NON_STR_KEYS)
        except orjson.JSONEncodeError:
            # What orjson refuses and the standard library writes: integers beyond 64 bits
            # (a shop's metadata may hold any JSON number).
            return super().render(data, accepted_media_type, renderer_context)


class _StreamedRenderer(BaseRenderer):
    """A media type a view streams itself (an export): named here so that content negotiation
    (`?format=` or Accept) can choose it; the view never hands it data to render."""

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        raise NotImplementedError("streamed by the view")


class CSVRenderer(_StreamedRenderer):
    media_type = "text/csv"
    format = "csv"


class XLSXRenderer(_StreamedRenderer):
    media_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    format = "xlsx"
    charset = None
