"""What the reports' summary tables cost the writes, on a 1M-order database.

    python benchmarks/bench_summaries.py --db PATH [--orders 200] [--rounds 3] [--no-rebuild]

PATH is a database built by ``bench_reports.py --keep`` (1M orders, 3M
lines); it is copied, never changed.  On the copy, rounds alternate between
two states of the same file: with the summary triggers (every write marks
what it changed and refreshes the summaries before COMMIT) and with the
triggers dropped (the baseline: a write then costs one EXISTS query more
than before m0005).  Each round creates, confirms and ships ``--orders``
orders (three lines, dated on the busiest day, so each refresh moves a day
of ~900 orders' products) through the library, one durable transaction
each, as the CLI does.  Printed: the median milliseconds per
create+confirm+ship in each state and their ratio, and the time of a full
``salescrm.salesfacts.rebuild`` (what an upgrade to m0005 or m0007 costs
once).

Each order of a round goes to a different customer (``--orders``
customers in turn): since m0009 a write recomputes its customer's kept
figures for ``report stats`` from all the customer's orders.

Last run (2 vCPU VM, Python 3.11, SQLite 3.40.1, load ~1-2 with a test run
beside it, the copy on the same disk; 3 rounds x 200 orders, ``--no-rebuild``;
this code on the m0009 database and the code before m0009 (bf95fec) on a
copy of it at m0008, run alternately, twice each): with the kept figures
8.3 and 8.8 ms per create+confirm+ship against 3.6 and 4.2 ms without
summaries (ratio 2.33, 2.10); before m0009 6.1 and 7.3 ms against 3.1 and
4.0 (ratio 1.94, 1.83).  So the kept figures cost a confirm about 1.5-2 ms
on this database (one customer's four fields recomputed in Python, about a
dozen statements; 1.4 ms measured alone).  A full rebuild earlier the same
day (one customer for every order, m0009): 336.5 s, against 316.0 s at
m0008; an upgrade from m0008 to m0009 took 15.9 s.

The run before (schema m0008: each summary line also
carries its order's customer, channel and salesperson, with an index by
customer; a slower host than the run before, whose baseline was 3.6 ms):
with summaries 8.1 ms per create+confirm+ship, without 3.8 ms (ratio
2.14).  Full rebuild 316.0 s.  (The run before, m0007 with the shipped
totals per category, the lines by product and payments by customer:
with summaries 7.0 ms per create+confirm+ship, without 3.6 ms (ratio 1.95).
Full rebuild 241.2 s.  The run before that, without the per-category shipped
summary and those indexes, on a quieter host: 4.3 ms against 2.6 ms, ratio
1.67, rebuild 117.8 s; an interleaved run of both versions of the code on
copies of one database put the per-category work at about 0.3 ms a write.
Before m0007, create+confirm alone: 4.4 ms against 3.1 ms, ratio 1.43;
the first version recomputed the order's whole day of products and
categories on every write: 23.3 ms, ratio 8.0; each order's own part,
``sales_order_products``, now moves the totals by the difference.)
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _pairs(conn, n: int, day: str, customers: list[str], skus: list[str]) -> list[float]:
    from salescrm import db, orders

    out = []
    for i in range(n):
        t = time.perf_counter()
        with db.write_tx(conn):
            ref = orders.create(conn, customer=customers[i % len(customers)], lines=[f"{s}:1" for s in skus],
                                order_date=day).number
        with db.write_tx(conn):
            orders.confirm(conn, ref)
        with db.write_tx(conn):
            orders.ship(conn, ref)
        out.append(time.perf_counter() - t)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, required=True, help="a database built by bench_reports.py --keep")
    ap.add_argument("--orders", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-rebuild", action="store_true", help="leave out the full rebuild (five minutes)")
    ns = ap.parse_args()
    from salescrm import db, salesfacts

    tmp = Path(tempfile.mkdtemp(prefix="salescrm-bench-"))
    copy = tmp / "copy.db"
    try:
        print(f"copying {ns.db} ...", flush=True)
        shutil.copyfile(ns.db, copy)
        conn = db.connect(copy)
        day = conn.execute("SELECT order_date FROM orders GROUP BY order_date ORDER BY count(*) DESC LIMIT 1"
                           ).fetchone()[0]
        # (a different customer for each order of a round: a customer's kept figures, m0009, are recomputed
        # from all its orders on each write, and one customer with every order of every round would grow)
        customers = [r[0] for r in conn.execute("SELECT email FROM customers WHERE email IS NOT NULL"
                                                " ORDER BY id LIMIT ? OFFSET 77",
                                                (ns.orders,))]
        skus = [r[0] for r in conn.execute("SELECT sku FROM products WHERE kind = 'goods'"
                                           " ORDER BY on_hand - reserved DESC LIMIT 3")]
        triggers = [r[0] for r in conn.execute(
            "SELECT sql FROM sqlite_schema WHERE type = 'trigger' AND name LIKE 'sales_mark_%'")]
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'trigger' AND name LIKE 'sales_mark_%'")]
        with_s: list[float] = []
        without: list[float] = []
        for r in range(ns.rounds):
            with_s += _pairs(conn, ns.orders, day, customers, skus)
            with db.write_tx(conn):
                for name in names:
                    conn.execute(f'DROP TRIGGER "{name}"')
            without += _pairs(conn, ns.orders, day, customers, skus)
            with db.write_tx(conn):
                for sql in triggers:
                    conn.execute(sql)
            print(f"round {r + 1}: create+confirm+ship with summaries {statistics.median(with_s) * 1000:.1f} ms,"
                  f" without {statistics.median(without) * 1000:.1f} ms", flush=True)
        a, b = statistics.median(with_s), statistics.median(without)
        print(f"create+confirm+ship on {day} (1M-order database), median of {len(with_s)}: with summaries"
              f" {a * 1000:.1f} ms, without {b * 1000:.1f} ms, ratio {a / b:.2f}", flush=True)
        if not ns.no_rebuild:
            conn.execute("BEGIN IMMEDIATE")
            t = time.perf_counter()
            counts = salesfacts.rebuild(conn)
            rebuild_s = time.perf_counter() - t
            conn.execute("ROLLBACK")
            print(f"full rebuild: {rebuild_s:.1f} s ({', '.join(f'{k} {v:,}' for k, v in counts.items())})")
        conn.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
