"""The API detail's p50 on two kept bench/scale.py databases, measured alternately.

    python bench/detail_pair.py [--base hub_bench_scale_1m] [--big hub_bench_scale]
                                [--rounds 3] [--requests 400]

Issue 16's detail target compares the p50 at 50M stored events with the p50 at 1M. Growing both
sizes in one bench/scale.py run takes most of an hour; this measures two databases that
bench/scale.py already grew and kept (`--reuse`), e.g. `BENCH_DB_NAME=hub_bench_scale_1m
python bench/scale.py --sizes 1M` and `python bench/scale.py --reuse --sizes 50M`. Each round
runs bench/scale.py's `detail_p50` (Django's test client, random stored shipments after a
warm-up) in a child process against the base, then against the big one, so that the machine's
other work weighs on both alike. Prints each round and the ratio of the best p50s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import database_url  # noqa: E402
from bench.scale import stored_shipments  # noqa: E402


def measure(name: str, requests: int) -> tuple[float, float]:
    """detail_p50 against the kept database `name`, in a child process."""
    key = json.loads((ROOT / ".local" / f"bench-scale-{name}.json").read_text())["shop"]["api_key"]
    url = database_url(name)
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); from bench import scale;"
        " scale.setup_django(sys.argv[2]);"
        " print(json.dumps(scale.detail_p50(sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))))"
    )
    shipments = stored_shipments(url)
    out = subprocess.run(
        [sys.executable, "-c", code, str(ROOT), url, key, str(shipments), str(requests)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    p50, p90 = json.loads(out.strip().splitlines()[-1])
    return float(p50), float(p90)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="hub_bench_scale_1m")
    parser.add_argument("--big", default="hub_bench_scale")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    sizes = {name: stored_shipments(database_url(name)) * 10 for name in (args.base, args.big)}
    best: dict[str, float] = {}
    for n in range(args.rounds):
        for name in (args.base, args.big):
            p50, p90 = measure(name, args.requests)
            best[name] = min(p50, best.get(name, p50))
            print(
                f"round {n + 1}: {name} ({sizes[name]:,} events) p50 {p50:.2f} ms, p90 {p90:.2f} ms"
            )
    ratio = best[args.big] / best[args.base]
    print(
        f"best p50: {best[args.base]:.2f} ms at {sizes[args.base]:,} events, {best[args.big]:.2f} ms"
        f" at {sizes[args.big]:,}: {ratio:.2f} x (target at 50M <= 1.3 x at 1M)"
    )


if __name__ == "__main__":
    main()
