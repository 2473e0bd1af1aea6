"""Interactive writes while a big import runs.

    python benchmarks/bench_concurrency.py               # 200,000 customers
    python benchmarks/bench_concurrency.py --rows 50000

``salescrm import customers`` of ROWS generated rows runs in its own
process while a second process writes (``customer log`` through the
library: BEGIN IMMEDIATE, insert, audit, COMMIT) every 50 ms, and a third
runs the real CLI (``salescrm customer log``) every 2 seconds.  Printed:
how long the import took, how long it held the write lock (its apply
phase), how many interactive writes were attempted, how many failed (the
promise: none), and the median, 95th percentile and longest wait.

Not a test (tests/test_reliability_concurrency.py holds the promise with
fewer rows); ``--json`` prints the figures as JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

WRITER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from salescrm import customers, db

    path, stop, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    conn = db.connect(path)
    with db.write_tx(conn):
        cid = customers.add(conn, "Interactive Writer", email="writer@example.org")
    Path(str(out) + ".ready").write_text("ok")
    waits, failures, n = [], [], 0
    while not stop.exists():
        t0 = time.monotonic()
        try:
            with db.write_tx(conn):
                customers.log(conn, cid, "note", f"tick {n}")
            waits.append(time.monotonic() - t0)
        except Exception as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
        n += 1
        time.sleep(0.05)
    out.write_text(json.dumps({"attempts": n, "waits": waits, "failures": failures}))
""")

# the apply phase, timed inside the importer process: write_tx around it
IMPORTER = textwrap.dedent("""
    import sys, time
    from contextlib import contextmanager
    from salescrm import db
    from salescrm.cli import main

    real = db.write_tx
    longest = [0.0]

    @contextmanager
    def timed(conn, **kw):
        t0 = time.monotonic()
        with real(conn, **kw) as c:
            yield c
        longest[0] = max(longest[0], time.monotonic() - t0)

    db.write_tx = timed
    try:
        main()
    finally:
        sys.stderr.write(f"LOCK_HELD {longest[0]:.3f}\\n")
""")


def generate(path: Path, rows: int) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["external_id", "name", "email", "phone", "city", "segment", "credit_limit", "tags"])
        for i in range(rows):
            w.writerow([f"B{i:07d}", f"Customer {i}", f"c{i}@example.com", f"+49 30 {i:08d}", f"City {i % 50}",
                        ("retail", "wholesale")[i % 2], f"{i % 5000}.00", "a,b" if i % 3 == 0 else ""])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    env = dict(os.environ, PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""), NO_COLOR="1")
    env.pop("SALESCRM_TEST_PAUSE", None)
    with tempfile.TemporaryDirectory(prefix="salescrm-bench-") as tmp_name:
        tmp = Path(tmp_name)
        dbp, src, stop, out = tmp / "crm.db", tmp / "big.csv", tmp / "stop", tmp / "writer.json"
        generate(src, args.rows)
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(dbp), str(stop), str(out)], env=env)
        while not Path(str(out) + ".ready").exists():
            if writer.poll() is not None:
                sys.exit("the writer could not start")
            time.sleep(0.05)
        t0 = time.monotonic()
        imp = subprocess.Popen([sys.executable, "-c", IMPORTER, "--db", str(dbp), "import", "customers", str(src)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        cli_codes = []
        while imp.poll() is None:
            time.sleep(2)
            if imp.poll() is None:
                r = subprocess.run([sys.executable, "-m", "salescrm", "--db", str(dbp), "customer", "log",
                                    "writer@example.org", "-t", "call", "-m", "from the CLI"],
                                   env=env, capture_output=True, text=True)
                cli_codes.append(r.returncode)
        _, imp_err = imp.communicate()
        took = time.monotonic() - t0
        stop.touch()
        writer.wait()
        res = json.loads(out.read_text())
    held = next((float(line.split()[1]) for line in imp_err.splitlines() if line.startswith("LOCK_HELD")), None)
    waits = sorted(res["waits"]) or [0.0]
    figures = {
        "rows": args.rows,
        "import_exit": imp.returncode,
        "import_seconds": round(took, 1),
        "write_lock_held_seconds": held,
        "interactive_writes": res["attempts"],
        "failures": len(res["failures"]),
        "failure_samples": res["failures"][:3],
        "wait_median_ms": round(waits[len(waits) // 2] * 1000, 1),
        "wait_p95_ms": round(waits[int(len(waits) * 0.95)] * 1000, 1),
        "wait_longest_s": round(waits[-1], 2),
        "cli_writes": len(cli_codes),
        "cli_failures": sum(1 for c in cli_codes if c != 0),
    }
    if args.json:
        print(json.dumps(figures))
        return
    print(f"import of {args.rows:,} customers: exit {imp.returncode}, {took:.1f} s, "
          f"write lock held {held} s")
    print(f"interactive writes every 50 ms: {res['attempts']} attempted, {len(res['failures'])} failed; "
          f"wait median {figures['wait_median_ms']} ms, p95 {figures['wait_p95_ms']} ms, "
          f"longest {figures['wait_longest_s']} s")
    print(f"CLI writes every 2 s: {len(cli_codes)}, {figures['cli_failures']} failed")


if __name__ == "__main__":
    main()
