"""The APIs' JSON renderer: orjson, several times faster than the standard library's encoder."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from rest_framework.renderers import JSONRenderer
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
