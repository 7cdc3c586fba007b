"""Content negotiation for the APIs: DRF's, with the everyday request answered without parsing."""

from __future__ import annotations

from collections.abc import Iterable

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

# Accept values that DRF's negotiation answers with the first renderer's own media type when
# that renderer is JSON: nothing to parse, no parameters to carry over.
_PLAIN_ACCEPTS = frozenset({None, "*/*", "application/json"})


class FastContentNegotiation(DefaultContentNegotiation):
    """Same choices as DRF's DefaultContentNegotiation; a request with no format override and an
    Accept header that is absent, `*/*` or exactly `application/json` skips the media-type
    parsing that otherwise runs on every request (about a tenth of a millisecond)."""

    def select_renderer(
        self,
        request: Request,
        renderers: Iterable[BaseRenderer],
        format_suffix: str | None = None,
    ) -> tuple[BaseRenderer, str]:
        renderers = list(renderers)
        first = renderers[0] if renderers else None
        override = self.settings.URL_FORMAT_OVERRIDE
        if (
            first is not None
            and first.media_type == "application/json"
            and not format_suffix
            and request.META.get("HTTP_ACCEPT") in _PLAIN_ACCEPTS
            and not (override and override in request.query_params)
        ):
            return first, first.media_type
        result: tuple[BaseRenderer, str] = super().select_renderer(
            request, renderers, format_suffix
        )
        return result
