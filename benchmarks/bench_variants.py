"""Look for slow combinations: many reports x filters x ranges on the
benchmark database, each once in a fresh process with a time limit, listing
every one over the goal (2 s).  A planner choice that is fine on a small
database can be ruinous on a large one (a join walked from the wrong side
took 120 s); the test suite's databases are too small to show it.

    python benchmarks/bench_variants.py --db PATH [--limit 30] [--only TEXT] [--again EARLIER_OUTPUT]

PATH is a database built by ``bench_reports.py --keep``.  Printed: each
combination's wall time (or TIMEOUT), then the ones over 2 s.  ``--again``
runs only those listed over 2 s in an earlier run's output.  One run each,
so a figure can be 30% off; about ten minutes for all 312.

Last run (2 vCPU VM, load ~1, all 312, at the end of the session that
added the per-category shipped summary): 23 over 2 s, against about 50 at
the end of the session before.  17 of them are ``report stats --by
customer``: one row of 17 figures for each of 50,000 customers, 3.0-7.4 s
(reading and sorting each customer's values, the figures, looking up
100,000 extreme orders and writing 50,000 rows; the top 20 by ``--sort
-median --limit 20``: 1.75-2.5 s for order values).  The rest, 2.0-2.7 s:
``report orders open`` with no ``--limit`` (111,000 rows, 10.8 MB of
CSV), stats of line values by week or month over all 3M lines, or with an
order filter, and the shipped basis by region over 400 days.  Each is one
run, so any of them can be 30% off.
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import time
from pathlib import Path

# (values that the generated database holds)
FILTERS = [[], ["--channel", "online"], ["--category", "music"], ["--region", "East"], ["--salesperson", "emil"],
           ["--customer", "1"]]
RANGES = [[], ["--from", "-400d"]]


def variants() -> list[list[str]]:
    out = []
    for basis, by, flt, rng in itertools.product(
            ("booked", "shipped", "collected"),
            (["month"], ["product"], ["customer"], ["category", "month"], ["region"]), FILTERS, RANGES):
        if basis == "collected" and (set(by) & {"product", "category"} or "--category" in flt):
            continue
        out.append(["report", "sales", "--basis", basis, *sum((["--by", b] for b in by), []), *flt, *rng,
                    "--limit", "20"])
    for field, by, flt, rng in itertools.product(
            ("order_value", "line_value", "quantity", "margin"),
            ([], ["--by", "month"], ["--by", "week"], ["--by", "customer"], ["--by", "product"]), FILTERS, [[]]):
        if field in ("order_value", "margin") and by[1:] == ["product"]:
            continue
        out.append(["report", "stats", "--field", field, *by, *flt, *rng])
    for what, flt, rng in itertools.product(("top", "new", "rfm", "abc", "inactive"), FILTERS, [[]]):
        out.append(["report", "customers", what, *flt, *rng])
    for what, flt in itertools.product(("funnel", "open", "ageing", "cycle"), FILTERS):
        out.append(["report", "orders", what, *flt])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, required=True)
    ap.add_argument("--limit", type=float, default=30.0, help="seconds before a run is stopped")
    ap.add_argument("--only", help="run only combinations whose command line contains this text")
    ap.add_argument("--again", type=Path, help="run only the combinations listed over 2 s in this earlier output")
    ns = ap.parse_args()
    slow = []
    runs = [v for v in variants() if not ns.only or ns.only in " ".join(v)]
    if ns.again:
        text = ns.again.read_text()
        listed = {line.split(None, 1)[1].replace("  TIMEOUT", "").strip()
                  for line in text.split("over 2 s:", 1)[-1].splitlines()[1:] if line.strip()}
        runs = [v for v in runs if " ".join(v) in listed]
    print(f"{len(runs)} combinations", flush=True)
    for args in runs:
        t = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, "-m", "salescrm", "--db", str(ns.db), *args, "--format", "csv"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=ns.limit)
            took = time.perf_counter() - t
            mark = "" if proc.returncode == 0 else f"  exit {proc.returncode}: {proc.stderr.strip()[:120]}"
        except subprocess.TimeoutExpired:
            took, mark = ns.limit, "  TIMEOUT"
        print(f"{took:7.2f}  {' '.join(args)}{mark}", flush=True)
        if took > 2.0:
            slow.append((took, args))
    print(f"\nover 2 s: {len(slow)} of {len(runs)}")
    for took, args in sorted(slow, reverse=True):
        print(f"{took:7.2f}  {' '.join(args)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
