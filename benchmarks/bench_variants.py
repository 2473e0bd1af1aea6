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

Last run (2 vCPU VM, load ~1, all 312, m0009; baseline ``python -c
"import typer"`` 0.11 s; the 2.92 GB database is larger than the ~3 GB
page cache, so a full pass reads cold pages): 14 over 2 s; run again at
once (``--again``), 13 of those, 9 of them ``report stats --by customer``
with a channel, category or salesperson filter (2.1-7.7 s: the one pass
was 3.4 s, the next 7.7 s for line values online).  Such a filter cannot
read the kept figures (m0009), so each customer's values are read and its
17 figures computed: about 0.5 s of SQL, 0.3 parsing, 0.5 figuring, 0.5
looking up 100,000 extremes' orders and 0.5 writing 50,000 rows.  Without
a filter, or with ``--region`` or ``--customer``, they are kept: 1.0-1.8 s.
The other four, run alone three times each just after: ``report orders
open`` with no ``--limit`` (111,000 rows) 2.15-2.64 s, shipped by customer
over 400 days 1.89-2.36 s, booked category by month online 1.63-1.84 s,
shipped by month online 1.03-1.30 s.  Each is one run, so any of them can
be 30% off.

The run before (m0008, a noisier host): 40 over 2 s, 29 again, 14 of
them ``report stats --by customer`` unfiltered or filtered (2.7-5.7 s).
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
