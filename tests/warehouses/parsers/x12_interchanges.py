"""X12 interchanges built in tests, the parser run over them, and the fixture files the X12 test
modules share."""

from __future__ import annotations

import io
from pathlib import Path

from warehouses.parsers.base import ParseItem, ParseOptions, Record, RecordError
from warehouses.parsers.x12 import parse

FIXTURES = Path(__file__).parent / "fixtures" / "x12"
STATUS_ID = "HUBCARRIER/HUBRECEIVER/000000731"
DUPLICATE_ID = "HUBCARRIER/HUBRECEIVER/000000737"
FIXTURE_ID = "HUBSENDER/HUBRECEIVER/000000901"


def run(data: bytes) -> list[ParseItem]:
    return list(parse(io.BytesIO(data), ParseOptions()))


def run_file(path: Path) -> list[ParseItem]:
    with path.open("rb") as stream:
        return list(parse(stream, ParseOptions()))


def records(items: list[ParseItem]) -> list[Record]:
    return [item for item in items if isinstance(item, Record)]


def errors(items: list[ParseItem]) -> list[tuple[int, str, str]]:
    return [(i.line, i.field, i.reason) for i in items if isinstance(i, RecordError)]


def isa(control: str = "000000001", sender: str = "SENDER", sep: str = "*", end: str = "~") -> str:
    fields = ["ISA", "00", " " * 10, "00", " " * 10, "ZZ", sender.ljust(15), "ZZ"]
    fields += ["RECEIVER".ljust(15), "240305", "0930", "U", "00401", control, "0", "P", ">"]
    header = sep.join(fields) + end
    assert len(header) == 106
    return header


def tx(kind: str, control: str, *body: str, count: int | None = None) -> list[str]:
    segments = [f"ST*{kind}*{control}", *body]
    segments.append(f"SE*{count if count is not None else len(segments) + 1}*{control}")
    return segments


def interchange(*segments: str, control: str = "000000001", sender: str = "SENDER") -> bytes:
    return (isa(control, sender) + "\n" + "".join(s + "~\n" for s in segments)).encode()


def group(*sets: list[str], control: str = "1", count: int | None = None) -> list[str]:
    body = [segment for one in sets for segment in one]
    total = len(sets) if count is None else count
    return [f"GS*QM*S*R*20240305*0930*{control}*X*004010", *body, f"GE*{total}*{control}"]


STATUS_214 = (
    "B10*PRO1*SHIP1*HBCX",
    "LX*1",
    "AT7*X4*NS***20240306*0645*CS",
)


def status_interchange(*body: str, control: str = "000000001") -> bytes:
    return interchange(*group(tx("214", "0001", *body)), f"IEA*1*{control}", control=control)
