"""The URL converter for a tracking number in a path (the shops' API and the buyers' page).

Like Django's `path` converter it takes "/" (a GS1 Digital Link URI, a carrier's "ABC/123"), but
never a NUL: no tracking number holds one (PostgreSQL text cannot), so `/track/AAA%00X` is a URL
that matches nothing and answers 404 before a query could fail on it. Registered as
`<tracking_number:...>` by the app config.
"""

from __future__ import annotations


class TrackingNumberConverter:
    regex = r"[^\x00]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value
