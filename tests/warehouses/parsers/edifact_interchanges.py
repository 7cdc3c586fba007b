"""EDIFACT interchanges built in tests, the parser run over them, and the inline fixtures the
EDIFACT test modules share."""

from __future__ import annotations

import io
from pathlib import Path

from warehouses.parsers.base import ParseItem, ParseOptions, Record, RecordError
from warehouses.parsers.edifact import parse

EDIFACT = Path(__file__).parent / "fixtures" / "edifact"


def run(payload: bytes, options: ParseOptions | None = None) -> list[ParseItem]:
    return list(parse(io.BytesIO(payload), options or ParseOptions()))


def run_file(name: str) -> list[ParseItem]:
    with (EDIFACT / name).open("rb") as stream:
        return list(parse(stream, ParseOptions()))


def records(items: list[ParseItem]) -> list[Record]:
    return [item for item in items if isinstance(item, Record)]


def errors(items: list[ParseItem]) -> list[RecordError]:
    return [item for item in items if isinstance(item, RecordError)]


def edi(text: str, encoding: str = "utf-8") -> bytes:
    """Fixture text written one segment per line; the parser must tolerate the line breaks."""
    return text.strip().encode(encoding)


UNA_D21A = """
UNA^*,! ~
UNB*UNOW^4*HEIHEWH^ZZ*HUB^ZZ*20240305^1200*ICR1~
UNH*M1*IFTSTA^D^21A^UN~
BGM*23*RPT-1*9~
DTM*137^202403051200^203~
CNI*1*HEX2024000001~
STS*1*24~
RFF*ON^SO-778~
DTM*334^202403050830^203~
LOC*5*CNHEK^139^6^Heihe!*Port~
TDT*20**3**CARRIER-A~
STS*1*16^^^Crossed into Russia~
DTM*334^202403051630+08^303~
LOC*16*RU BQS^139^6^Благовещенск!~таможня~
UNT*13*M1~
UNZ*1*ICR1~
"""


SEVERAL = """
UNB+UNOC:3+SENDER:ZZ+HUB:ZZ+240305:1200+ICR2'
UNH+1+IFTSTA:D:96A:UN'
BGM+23+R2+9'
CNI+1+TRK001'
STS+1+13'
RFF+CU:SHOP-42'
DTM+334:202403050830:203'
LOC+5+CNHRB:139:6:Harbin'
NAD+CA+RAILCO::9'
TDT+20++2'
MEA+WT+AAB+KGM:12,5'
STS+1+24'
DTM+334:202403051230?+0300:205'
LOC+5+CNSFH:139:6:Suifenhe?+Port?'s yard in Zürich?:'
CNI+2'
STS+1+21'
DTM+334:20240306101500?+03:304'
GID+1+2:CT'
GIN+BJ+340123450000000017+340123450000000024'
CNI+3+TRK003'
STS+1+999'
DTM+334:202403061000:203'
UNT+22+1'
UNH+2+IFTSTA:D:01A:UN:EAN004'
BGM+23+R3+9'
CNI+1+TRK004'
STS+1+21'
DTM+334:202403061000:203'
UNT+99+2'
UNZ+2+ICR2'
"""


def several() -> bytes:
    # UTF-8 BOM, CRLF line breaks and a Latin-1 payload (UNOC) at once.
    text = SEVERAL.strip().replace("\n", "\r\n")
    return b"\xef\xbb\xbf" + text.encode("latin-1")
