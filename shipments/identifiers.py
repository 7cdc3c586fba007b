"""Parcel identifiers: which ones compare case-insensitively and which keep their case.

The rule (docs/identifiers.md):
- A URI keeps its case: EPC URIs (`urn:epc:id:giai:952005385.w2`; GS1 Tag Data Standard: the
  serial part is case-sensitive, so `…w2` and `…W2` are two assets), any other URN, and GS1
  Digital Link URIs (`https://id.gs1.org/01/09520123456788/21/abc`; the path and its serial are
  case-sensitive). Only the parts their standards declare case-insensitive are lower-cased:
  the URN prefix up to the EPC scheme (`URN:EPC:ID:SGTIN:` -> `urn:epc:id:sgtin:`), or the
  scheme and host of an http(s) URI (RFC 3986 §6.2.2.1).
- Everything else is a carrier's or warehouse's tracking number: spaces removed and upper-cased
  (carriers print them both ways), as the hub always did.

Every path that stores or looks up a tracking number (ingest, shop registration, API detail,
tracking page, admin search) goes through `tracking_number_clean`, so a lookup finds an
EPC-identified shipment by its exact identifier and a CSV number in any case.
"""

from __future__ import annotations

import re

TRACKING_NUMBER_MAX = 64  # Shipment.tracking_number

# A carrier's tracking number after cleaning: upper-case letters, digits and a few separators.
_PLAIN = re.compile(r"[A-Z0-9][A-Z0-9\-_./:]{2,63}")
# A URI after cleaning: RFC 3986 unreserved, reserved and percent characters (EPC serials are
# percent-escaped, GS1 Digital Link paths may carry a query string).
_URI = re.compile(
    r"(?:urn:[a-z0-9][a-z0-9-]{0,31}:|https?://)[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+"
)
_URI_HEADS = ("urn:", "http://", "https://")


def is_case_sensitive(value: str) -> bool:
    """True for identifiers that keep their case: URNs (EPC) and http(s) URIs (Digital Link)."""
    return value[:8].lower().startswith(_URI_HEADS)


def _uri_canonical(value: str) -> str:
    lowered = value.lower()
    if lowered.startswith("urn:"):
        # urn:epc:<kind>:<scheme>: are fixed lower-case words of the Tag Data Standard; for
        # another URN only "urn" and its namespace id are case-insensitive (RFC 8141).
        fixed = 4 if lowered.startswith("urn:epc:") else 2
        parts = value.split(":", fixed)
        if len(parts) > fixed:
            return ":".join([p.lower() for p in parts[:fixed]] + parts[fixed:])
        return value
    scheme, _, rest = value.partition("://")
    host, slash, path = rest.partition("/")
    return f"{scheme.lower()}://{host.lower()}{slash}{path}"


def tracking_number_clean(value: str) -> str:
    """The stored form of a tracking number or identifier (see the module docstring)."""
    compact = "".join(value.split())
    if is_case_sensitive(compact):
        return _uri_canonical(compact)
    return compact.upper()


def tracking_number_valid(value: str) -> bool:
    """Whether a cleaned identifier may be stored as a tracking number."""
    if _PLAIN.fullmatch(value):
        return True
    return len(value) <= TRACKING_NUMBER_MAX and _URI.fullmatch(value) is not None


def tracking_number_problem(value: str) -> str:
    """Why a cleaned identifier cannot be a tracking number (the operator's reject reason)."""
    if is_case_sensitive(value):
        return (
            f"identifier {value[:80]!r} must be a URI of at most {TRACKING_NUMBER_MAX} "
            "characters (letters, digits and URI punctuation)"
        )
    return f"tracking number {value[:80]!r} must be 3-64 letters, digits or -_./:"
