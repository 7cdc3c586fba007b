"""EPC identifiers in any of their spellings (EPC URN, GS1 Digital Link, bare SSCC) -> one
canonical key, for the feed's identifier mapping."""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import unquote


def _gs1_check_digit(digits: str) -> str:
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return str((10 - total % 10) % 10)


_DIGITAL_LINK_RE: Final = re.compile(r"https?://[^/?#]+(/[^?#]*)", re.IGNORECASE)
_DL_SSCC_RE: Final = re.compile(r"/00/(\d{18})(?:/|$)")
_DL_SGTIN_RE: Final = re.compile(r"/01/(\d{8}|\d{12,14})/21/([^/]+)")
_DL_SGLN_RE: Final = re.compile(r"/414/(\d{13})(?:/254/([^/]+))?(?:/|$)")
_DL_GIAI_RE: Final = re.compile(r"/8004/([^/]+)")


def epc_to_key(epc: str) -> str:
    """A canonical key for an EPC in any of its spellings, for the feed's identifier mapping.

    - SSCC: "urn:epc:id:sscc:0614141.1234567890", "https://id.gs1.org/00/106141412345678908"
      (any Digital Link host) and a bare 18-digit SSCC all give "sscc:106141412345678908";
    - SGTIN: "urn:epc:id:sgtin:0614141.112345.400" and ".../01/80614141123458/21/400" give
      "sgtin:80614141123458.400";
    - SGLN: "sgln:<GLN-13>" plus ".<extension>" unless the extension is 0;
    - GIAI: "giai:<company prefix><asset reference>";
    - any other EPC URN "urn:epc:id:<scheme>:<rest>" gives "<scheme>:<rest>"; anything else comes
      back stripped and otherwise unchanged.

    Percent-escapes in serial numbers are decoded. Check digits are computed, not verified: this
    only normalises spellings, it does not judge whether an identifier is genuine.
    """
    value = epc.strip()
    if value.lower().startswith("urn:epc:id:"):
        scheme, _, body = value[len("urn:epc:id:") :].partition(":")
        return _urn_key(scheme.lower(), unquote(body))
    link = _DIGITAL_LINK_RE.fullmatch(value)
    if link:
        path = link.group(1)
        if m := _DL_SSCC_RE.search(path):
            return "sscc:" + m.group(1)
        if m := _DL_SGTIN_RE.search(path):
            return f"sgtin:{m.group(1).zfill(14)}.{unquote(m.group(2))}"
        if m := _DL_SGLN_RE.search(path):
            extension = unquote(m.group(2) or "0")
            return "sgln:" + m.group(1) + ("" if extension == "0" else "." + extension)
        if m := _DL_GIAI_RE.search(path):
            return "giai:" + unquote(m.group(1))
        return value
    if len(value) == 18 and value.isdigit():
        return "sscc:" + value
    return value


def _urn_key(scheme: str, body: str) -> str:
    parts = body.split(".")
    if scheme == "sscc" and len(parts) == 2 and "".join(parts).isdigit():
        prefix, serial = parts
        if len(prefix) + len(serial) == 17:
            digits = serial[:1] + prefix + serial[1:]
            return "sscc:" + digits + _gs1_check_digit(digits)
    if scheme == "sgtin" and len(parts) >= 3:
        prefix, item = parts[0], parts[1]
        serial = ".".join(parts[2:])
        if (prefix + item).isdigit() and len(prefix) + len(item) == 13:
            digits = item[:1] + prefix + item[1:]
            return f"sgtin:{digits}{_gs1_check_digit(digits)}.{serial}"
    if scheme == "sgln" and len(parts) >= 3:
        prefix, location = parts[0], parts[1]
        extension = ".".join(parts[2:])
        if (prefix + location).isdigit() and len(prefix) + len(location) == 12:
            gln = prefix + location + _gs1_check_digit(prefix + location)
            return "sgln:" + gln + ("" if extension == "0" else "." + extension)
    if scheme == "giai" and len(parts) >= 2 and parts[0].isdigit():
        return "giai:" + parts[0] + ".".join(parts[1:])
    return f"{scheme}:{body}"
