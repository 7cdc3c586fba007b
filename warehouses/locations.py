"""UN/LOCODEs the hub meets often, hand-checked, with their IANA zones: the gazetteer's first
answer (warehouses/places.py), ahead of the packaged lists (Khorgos keeps Beijing time, which the
tz database's Xinjiang zone would not give; Ussuriysk is in no packaged list)."""

from __future__ import annotations

from typing import NamedTuple


class Place(NamedTuple):
    name: str
    country: str
    timezone: str


LOCODES: dict[str, Place] = {
    "CNHEK": Place("Heihe", "CN", "Asia/Shanghai"),
    "CNSFH": Place("Suifenhe", "CN", "Asia/Shanghai"),
    "CNHRB": Place("Harbin", "CN", "Asia/Shanghai"),
    "CNMZL": Place("Manzhouli", "CN", "Asia/Shanghai"),
    "CNERL": Place("Erenhot", "CN", "Asia/Shanghai"),
    "CNSHA": Place("Shanghai", "CN", "Asia/Shanghai"),
    "CNSZX": Place("Shenzhen", "CN", "Asia/Shanghai"),
    "CNCAN": Place("Guangzhou", "CN", "Asia/Shanghai"),
    "CNNGB": Place("Ningbo", "CN", "Asia/Shanghai"),
    "CNYIW": Place("Yiwu", "CN", "Asia/Shanghai"),
    "CNZZU": Place("Zhengzhou", "CN", "Asia/Shanghai"),
    "CNXIY": Place("Xi'an", "CN", "Asia/Shanghai"),
    "CNKSH": Place("Khorgos", "CN", "Asia/Shanghai"),
    "RUBQS": Place("Blagoveshchensk", "RU", "Asia/Yakutsk"),
    "RUPGS": Place("Pogranichny", "RU", "Asia/Vladivostok"),
    "RUGDX": Place("Grodekovo", "RU", "Asia/Vladivostok"),
    "RUVVO": Place("Vladivostok", "RU", "Asia/Vladivostok"),
    "RUUSS": Place("Ussuriysk", "RU", "Asia/Vladivostok"),
    "RUZAB": Place("Zabaikalsk", "RU", "Asia/Chita"),
    "RUMOW": Place("Moscow", "RU", "Europe/Moscow"),
    "RULED": Place("Saint Petersburg", "RU", "Europe/Moscow"),
    "RUOVB": Place("Novosibirsk", "RU", "Asia/Novosibirsk"),
    "RUYEK": Place("Yekaterinburg", "RU", "Asia/Yekaterinburg"),
    "BYBRS": Place("Brest", "BY", "Europe/Minsk"),
    "PLMAL": Place("Małaszewicze", "PL", "Europe/Warsaw"),
    "PLWAW": Place("Warsaw", "PL", "Europe/Warsaw"),
    "DEDUI": Place("Duisburg", "DE", "Europe/Berlin"),
    "DEHAM": Place("Hamburg", "DE", "Europe/Berlin"),
    "KZDOS": Place("Dostyk", "KZ", "Asia/Almaty"),
    "USLAX": Place("Los Angeles", "US", "America/Los_Angeles"),
    "USJFK": Place("New York", "US", "America/New_York"),
    "USORD": Place("Chicago", "US", "America/Chicago"),
    "USONT": Place("Ontario", "US", "America/Los_Angeles"),
    "NLAMS": Place("Amsterdam", "NL", "Europe/Amsterdam"),
    "BELGG": Place("Liège", "BE", "Europe/Brussels"),
}
