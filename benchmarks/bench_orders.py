"""Orders: creating and confirming through the library, and listing on a
1M-order database.

1. Creates and confirms N orders (default 10,000; 1-5 lines each) through
   ``salescrm.orders`` exactly as the CLI does: one ``BEGIN IMMEDIATE``
   transaction for the create, another for the confirm (stock reserved,
   credit and discount rules checked, events and audit rows written), on a
   WAL database with ``synchronous=FULL``.  Reports orders per second.
2. Builds a seeded database of 1,000,000 orders (one line each, 100k
   customers, 2k products, every status, payments) with bulk
   ``INSERT ... SELECT`` statements inside SQLite (the products are
   services, so the big database needs no stock ledger to be consistent), then times
   ``salescrm order list --limit 50`` as a real process with and without
   filters: the median of several runs after a warm-up, next to
   ``python -c "import typer"`` and ``salescrm --help`` measured in the
   same run (start-up is most of a list's time).

    python benchmarks/bench_orders.py [--orders 10000] [--big 1000000] [--runs 7]
                                      [--seed 7] [--keep DIR] [--skip-create] [--skip-list]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from salescrm import db, orders, products, stock

CHANNELS = ("retail", "online", "phone", "partner")
SALESPEOPLE = ("li", "chen", "smith", "maria", "kenji", "olu", "petra", "sam")


# --------------------------------------------------------------------------- 1. create and confirm


def _customers_sql(conn: sqlite3.Connection, n: int, credit: bool = False) -> None:
    conn.execute(
        "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?)"
        " INSERT INTO customers (id, name, name_key, email, email_key, credit_limit, created_at, updated_at)"
        " SELECT i, 'Customer ' || i, 'customer ' || i, 'c' || i || '@example.com', 'c' || i || '@example.com',"
        f" {'CASE WHEN i % 10 = 0 THEN 100000000 END' if credit else 'NULL'},"
        " '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z' FROM s",
        (n,),
    )


def bench_create_confirm(path: Path, n: int, seed: int) -> dict:
    rng = random.Random(seed)
    conn = db.connect(path)
    with db.write_tx(conn):
        _customers_sql(conn, 1000, credit=True)
        skus = []
        for i in range(200):
            sku = f"SKU-{i:04d}"
            products.add(conn, sku=sku, name=f"商品 {i}", category=f"cat{i % 12}", cost=100 + i,
                         price=250 + 7 * i, tax_rate="13")
            stock.receive(conn, sku, 1_000_000)
            skus.append(sku)
    created = confirmed = 0.0
    t_all = time.perf_counter()
    for _ in range(n):
        lines = [orders.LineSpec(rng.choice(skus), rng.randint(1, 5), None,
                                 None if rng.random() < 0.7 else Decimal(rng.choice(["5", "10", "15"])))
                 for _ in range(rng.randint(1, 5))]
        t0 = time.perf_counter()
        with db.write_tx(conn):
            ref = orders.create(conn, customer=rng.randint(1, 1000), lines=lines, channel=rng.choice(CHANNELS),
                                salesperson=rng.choice(SALESPEOPLE))
        t1 = time.perf_counter()
        with db.write_tx(conn):
            orders.confirm(conn, ref.id)
        t2 = time.perf_counter()
        created += t1 - t0
        confirmed += t2 - t1
    elapsed = time.perf_counter() - t_all
    problems = db.check(conn)
    conn.close()
    return {"orders": n, "seconds": elapsed, "orders_per_s": n / elapsed,
            "create_ms": 1000 * created / n, "confirm_ms": 1000 * confirmed / n, "db_check": problems or "clean"}


# --------------------------------------------------------------------------- 2. a 1M-order database


def _h(expr: str, k: int, seed: int) -> str:
    """A seeded pseudo-random non-negative integer from ``expr`` (SQL)."""
    return f"(abs(({expr}) * 1103515245 + {seed * 7919 + k * 104729}) % 2147483647)"


def build_big(path: Path, n: int, seed: int, customers: int = 100_000, nproducts: int = 2_000) -> float:
    t0 = time.perf_counter()
    db.connect(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -262144")
    conn.execute("BEGIN")
    # indexes are built once after the load (a sort) instead of row by row
    saved = conn.execute(
        "SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL"
        " AND tbl_name IN ('orders', 'order_lines', 'payments', 'customers')").fetchall()
    for name, _sql in saved:
        conn.execute(f'DROP INDEX "{name}"')
    _customers_sql(conn, customers)
    conn.execute(
        "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?)"
        " INSERT INTO products (id, sku, sku_key, name, name_key, category, kind, unit, unit_cost, list_price,"
        " tax_rate, reorder_level, active, created_at, updated_at)"
        " SELECT i, printf('P-%05d', i), printf('p-%05d', i), '商品 ' || i, '商品 ' || i, 'cat' || (i % 20),"
        " 'service', 'pcs', 50 + i % 500, 100 + (i * 37) % 9900, '13', 0, 1, '2026-01-01T00:00:00Z',"
        " '2026-01-01T00:00:00Z' FROM s",
        (nproducts,),
    )
    statuses = ("CASE WHEN b < 2 THEN 'draft' WHEN b < 5 THEN 'cancelled' WHEN b < 10 THEN 'confirmed'"
                " WHEN b < 13 THEN 'partially_shipped' WHEN b < 18 THEN 'shipped' WHEN b < 30 THEN 'delivered'"
                " ELSE 'closed' END")
    # o: one row per order with its random draws; the line is qty x list price at 13% tax
    conn.execute(f"""
        WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {int(n)}),
        r AS (SELECT i,
                     1 + {_h('i', 1, seed)} % {customers} AS cust,
                     {_h('i', 2, seed)} % 100 AS b,
                     {_h('i', 3, seed)} % {len(CHANNELS)} AS ch,
                     {_h('i', 4, seed)} % {len(SALESPEOPLE)} AS sp,
                     {_h('i', 5, seed)} % 2190 AS day,
                     1 + {_h('i', 6, seed)} % {nproducts} AS pid,
                     1 + {_h('i', 7, seed)} % 5 AS qty,
                     {_h('i', 8, seed)} % 3 AS payk
              FROM s),
        o AS (SELECT r.*, {statuses} AS status, qty * (100 + (pid * 37) % 9900) AS net FROM r),
        t AS (SELECT o.*, (net * 13 + 50) / 100 AS tax, date('2020-01-01', '+' || day || ' days') AS d FROM o)
        INSERT INTO orders (id, number, customer_id, status, channel, salesperson, order_date, currency,
            tax_inclusive, gross_cents, discount_cents, subtotal_cents, tax_cents, shipping_cents, adjustment_cents,
            total_cents, returned_cents, paid_cents, due_date, confirmed_at, created_at, updated_at)
        SELECT i, printf('SO-%06d', i), cust, status,
               CASE ch WHEN 0 THEN 'retail' WHEN 1 THEN 'online' WHEN 2 THEN 'phone' ELSE 'partner' END,
               CASE sp {' '.join(f"WHEN {k} THEN '{v}'" for k, v in enumerate(SALESPEOPLE))} END,
               d, 'EUR', 0, net, 0, net, tax, 0, 0, net + tax, 0,
               CASE WHEN status = 'closed' THEN net + tax
                    WHEN status IN ('draft', 'cancelled') THEN 0
                    WHEN payk = 0 THEN (net + tax) / 2 ELSE 0 END,
               CASE WHEN status NOT IN ('draft') THEN date(d, '+30 days') END,
               CASE WHEN status NOT IN ('draft') THEN d || 'T10:00:00Z' END,
               d || 'T09:00:00Z', d || 'T09:00:00Z'
        FROM t
    """)
    conn.execute(f"""
        INSERT INTO order_lines (order_id, line_no, product_id, sku, description, qty, unit_price, unit_cost,
            gross_cents, discount_cents, tax_rate, net_cents, tax_cents, total_cents, shipped_qty)
        SELECT o.id, 1, p.id, p.sku, p.name, o.subtotal_cents / p.list_price, p.list_price, p.unit_cost,
               o.subtotal_cents, 0, '13', o.subtotal_cents, o.tax_cents, o.total_cents,
               CASE WHEN o.status IN ('shipped', 'delivered', 'closed') THEN o.subtotal_cents / p.list_price
                    WHEN o.status = 'partially_shipped' THEN 1 ELSE 0 END
        FROM orders o JOIN products p ON p.id = 1 + {_h('o.id', 6, seed)} % {nproducts}
    """)
    conn.execute("""
        INSERT INTO payments (order_id, kind, amount_cents, method, paid_at, created_at)
        SELECT id, 'payment', paid_cents, 'card', date(order_date, '+10 days') || 'T12:00:00Z',
               order_date || 'T12:00:00Z'
        FROM orders WHERE paid_cents > 0
    """)
    for _name, sql in saved:
        conn.execute(sql)
    conn.execute("COMMIT")
    conn.close()
    return time.perf_counter() - t0


def median_run(args: list[str], runs: int, env: dict) -> tuple[float, int]:
    subprocess.run(args, capture_output=True, env=env)  # warm-up (page cache)
    times = []
    out = b""
    for _ in range(runs):
        t0 = time.perf_counter()
        p = subprocess.run(args, capture_output=True, env=env)
        times.append(time.perf_counter() - t0)
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed: {p.stderr.decode()}")
        out = p.stdout
    return statistics.median(times), max(0, out.count(b"\n") - 1)


LIST_CASES = [
    ("no filter (newest first)", []),
    ("--status confirmed", ["--status", "confirmed"]),
    ("--status open", ["--status", "open"]),
    ("--customer c4242@example.com", ["--customer", "c4242@example.com"]),
    ("--channel phone", ["--channel", "phone"]),
    ("--salesperson kenji", ["--salesperson", "kenji"]),
    ("--from 2023-03-01 --to 2023-03-31", ["--from", "2023-03-01", "--to", "2023-03-31"]),
    ("--unpaid", ["--unpaid"]),
    ("--overdue", ["--overdue"]),
    ("--status delivered --unpaid --channel online", ["--status", "delivered", "--unpaid", "--channel", "online"]),
    ("--sort -total (expression index)", ["--sort", "-total"]),
]


def query_ms(path: Path, extra: list[str], runs: int) -> float:
    """The SQL part alone: ``orders.list_orders`` as the command calls it
    (51 rows fetched), in this process, median of ``runs``."""
    keys = {"--status": "status", "--customer": "customer", "--channel": "channel", "--salesperson": "salesperson",
            "--from": "date_from", "--to": "date_to", "--sort": "sort"}
    kw: dict = {}
    it = iter(extra)
    for arg in it:
        if arg in ("--unpaid", "--overdue"):
            kw[arg[2:]] = True
        else:
            kw[keys[arg]] = next(it)
    conn = db.connect(path, write=False)
    try:
        times = []
        for _ in range(runs + 1):
            t0 = time.perf_counter()
            list(orders.list_orders(conn, limit=51, **kw))
            times.append(time.perf_counter() - t0)
        return 1000 * statistics.median(times[1:])
    finally:
        conn.close()


def bench_list(path: Path, runs: int) -> list[tuple[str, float, int, float | None]]:
    env = dict(os.environ, SALESCRM_DB=str(path), NO_COLOR="1")
    results = []
    base, _ = median_run([sys.executable, "-c", "import typer"], runs, env)
    results.append(('python -c "import typer" (baseline)', base, 0, None))
    helpt, _ = median_run([sys.executable, "-m", "salescrm", "--help"], runs, env)
    results.append(("salescrm --help", helpt, 0, None))
    for label, extra in LIST_CASES:
        t, rows = median_run([sys.executable, "-m", "salescrm", "order", "list", "--limit", "50",
                              "--format", "csv", *extra], runs, env)
        results.append((f"order list --limit 50 {label}", t, rows, query_ms(path, extra, runs)))
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=10_000)
    ap.add_argument("--big", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", type=Path, help="Keep the databases in DIR (and reuse a 1M one found there).")
    ap.add_argument("--skip-create", action="store_true")
    ap.add_argument("--skip-list", action="store_true")
    a = ap.parse_args()
    work = a.keep or Path(tempfile.mkdtemp(prefix="bench_orders_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; SQLite {sqlite3.sqlite_version}")
        if not a.skip_create:
            path = work / "create.db"
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
            r = bench_create_confirm(path, a.orders, a.seed)
            print(f"\n## create + confirm {r['orders']:,} orders through the library (2 transactions each)")
            print(f"{r['seconds']:.1f} s: {r['orders_per_s']:,.0f} orders/s "
                  f"(create {r['create_ms']:.2f} ms, confirm {r['confirm_ms']:.2f} ms per order); db check: {r['db_check']}")
        if not a.skip_list:
            big = work / f"orders_{a.big}.db"
            if big.exists():
                print(f"\nreusing {big}")
            else:
                secs = build_big(big, a.big, a.seed)
                print(f"\nbuilt {a.big:,} orders (+ lines, payments, 100k customers) in {secs:.1f} s "
                      f"({big.stat().st_size / 2**20:,.0f} MiB)")
            print(f"\n## salescrm order list on {a.big:,} orders (median of {a.runs} runs, real processes)\n")
            print(f"load average now {os.getloadavg()[0]:.1f}\n")
            print("| command | process, median s | rows | query alone, median ms |\n|---|---:|---:|---:|")
            for label, t, rows, q in bench_list(big, a.runs):
                print(f"| {label} | {t:.3f} | {rows if rows else ''} | {'' if q is None else f'{q:.1f}'} |")
    finally:
        if a.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
