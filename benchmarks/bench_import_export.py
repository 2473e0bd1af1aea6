"""Import and export speed, measured against raw sqlite3 in the same run.

    python benchmarks/bench_import_export.py              # 100k customers, 10k products,
                                                          # 1M orders (~3M lines)
    python benchmarks/bench_import_export.py --scale 0.1  # a tenth of that

A seeded generator writes customers.csv, products.csv and a flat orders
file (one row per order line, the order's fields repeated, as shops export
them).  Then:

* import customers: ``import customers`` of customers.csv (all new) on an
  empty database, in this process, with the phases timed: the whole run,
  the write transaction (``BEGIN IMMEDIATE`` to ``COMMIT``: how long every
  other writer waits) and the apply phase (median of ``--repeat N`` runs).
  ``--customers-only`` stops after it.
* import: ``salescrm import orders FILE`` in its own process (peak memory
  from ``os.wait4``'s rusage) against a baseline that reads the same file
  with ``csv.reader`` and ``executemany``s the same orders and lines into
  the same tables of a copy of the same database, in one transaction.
  Goal: at least 1/3 of the baseline's lines per second, peak RSS < 300 MB.
* export: ``salescrm export lines -o FILE`` against a plain ``csv.writer``
  loop over the same join.  Goal: at least 1/2 of its rows per second.

Not a test: it prints figures (and ``--json`` writes them).

Customer import, before and after the bulk apply (new customers validated by
``customers.prepare_new`` and written with ``executemany``, instead of one
``customers.add`` and savepoint per row); 2-core machine busy with other work,
``--customers-only --repeat``, medians:

* scale 0.1 (10,000 customers), 5 runs each, load average 1.7-2.0:
  before: apply 2.66 s = 3,758 rows/s, write lock held 2.75 s;
  after:  apply 0.57 s = 17,476 rows/s, write lock held 0.68 s.
* scale 1.0 (100,000 customers), 3 runs each, load average 2.0-2.9:
  before: apply 21.29 s = 4,697 rows/s, write lock held 21.86 s;
  after:  apply 4.99 s = 20,057 rows/s, write lock held 5.84 s.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CITIES = ["Berlin", "Hamburg", "München", "上海", "北京", "Paris", "Lyon", "Madrid", "London", "Leeds"]
CHANNELS = ["retail", "online", "phone", "partner"]
RATES = ["0", "7", "19"]


def generate(folder: Path, scale: float, seed: int) -> dict[str, int]:
    rnd = random.Random(seed)
    n_cust = max(10, int(100_000 * scale))
    n_prod = max(10, int(10_000 * scale))
    n_orders = max(10, int(1_000_000 * scale))
    with open(folder / "customers.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["external_id", "name", "email", "phone", "city"])
        for i in range(n_cust):
            w.writerow([f"C{i:07d}", f"Customer {i}", f"c{i}@example.com", f"+1 555 {i:07d}", rnd.choice(CITIES)])
    prices = []
    with open(folder / "products.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["sku", "name", "list_price", "unit_cost", "tax_rate"])
        for i in range(n_prod):
            cents = rnd.randint(100, 20_000)
            prices.append(cents)
            w.writerow([f"SKU-{i:05d}", f"Product {i}", f"{cents // 100}.{cents % 100:02d}",
                        f"{cents // 200}.00", rnd.choice(RATES)])
    lines = 0
    with open(folder / "orders.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["order_no", "order_date", "customer_email", "channel", "sku", "qty", "unit_price", "discount_pct"])
        for i in range(n_orders):
            head = [f"W-{i:07d}", f"2025-{1 + i * 12 // n_orders:02d}-{1 + i % 28:02d}",
                    f"c{rnd.randrange(n_cust)}@example.com", rnd.choice(CHANNELS)]
            for _ in range(rnd.randint(1, 5)):
                p = rnd.randrange(n_prod)
                cents = prices[p]
                disc = rnd.choice(["", "", "", "", "", "", "", "", "5", "10"])
                w.writerow([*head, f"SKU-{p:05d}", rnd.randint(1, 10), f"{cents // 100}.{cents % 100:02d}", disc])
                lines += 1
    return {"customers": n_cust, "products": n_prod, "orders": n_orders, "lines": lines}


def salescrm(db: Path, *args: str) -> tuple[float, int, str, str]:
    """Run the CLI in its own process: (seconds, peak RSS in KiB, stdout, stderr)."""
    env = dict(os.environ, SALESCRM_DB=str(db))
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "salescrm", *args], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate()
    seconds = time.perf_counter() - t0
    # communicate() has reaped it; its rusage is in RUSAGE_CHILDREN: run the import last
    if p.returncode != 0:
        raise SystemExit(f"salescrm {' '.join(args)} failed ({p.returncode}): {err.decode()[-2000:]}")
    return seconds, 0, out.decode(), err.decode()


def salescrm_measured(db: Path, *args: str) -> tuple[float, int, str]:
    """Like ``salescrm`` but with the child's own peak RSS (os.wait4)."""
    env = dict(os.environ, SALESCRM_DB=str(db))
    out_f = tempfile.TemporaryFile()
    err_f = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "salescrm", *args], env=env, stdout=out_f, stderr=err_f)
    _, status, usage = os.wait4(p.pid, 0)
    seconds = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    out_f.seek(0)
    err_f.seek(0)
    if p.returncode != 0:
        raise SystemExit(f"salescrm {' '.join(args)} failed ({p.returncode}): {err_f.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss, out_f.read().decode()


def baseline_import(db: Path, orders_csv: Path) -> tuple[float, int]:
    """Raw sqlite3: read the same file, executemany the same orders and lines
    into the same tables, one transaction.  Amounts with plain integer math."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    t0 = time.perf_counter()
    cust = dict(conn.execute("SELECT email_key, id FROM customers"))
    prod = {r[0]: r[1:] for r in conn.execute("SELECT sku_key, id, sku, name, unit_cost, tax_rate FROM products")}
    next_id = conn.execute("SELECT coalesce(max(id), 0) FROM orders").fetchone()[0]
    now = "2026-01-01T00:00:00Z"
    orders_rows: list[tuple] = []
    line_rows: list[tuple] = []
    n_lines = 0

    def insert() -> None:
        conn.executemany(
            "INSERT INTO orders (id, number, customer_id, status, channel, order_date, currency, tax_inclusive,"
            " gross_cents, discount_cents, subtotal_cents, tax_cents, shipping_cents, adjustment_cents,"
            " total_cents, created_at, updated_at) VALUES (?, ?, ?, 'draft', ?, ?, 'EUR', 0, ?, ?, ?, ?, 0, 0, ?, ?, ?)",
            orders_rows)
        conn.executemany(
            "INSERT INTO order_lines (order_id, line_no, product_id, sku, description, qty, unit_price, unit_cost,"
            " discount_pct, gross_cents, discount_cents, tax_rate, net_cents, tax_cents, total_cents)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", line_rows)
        orders_rows.clear()
        line_rows.clear()

    conn.execute("BEGIN IMMEDIATE")
    with open(orders_csv, encoding="utf-8", newline="") as f:
        r = csv.reader(f)
        next(r)
        current = None
        acc: list = []

        def close() -> None:
            nonlocal next_id
            if current is None:
                return
            next_id += 1
            g = d = n = t = 0
            for i, (pid, sku, name, cost, rate, qty, price, pct) in enumerate(acc, start=1):
                gross = qty * price
                disc = (gross * int(pct) + 50) // 100 if pct else 0
                net = gross - disc
                tax = (net * int(rate) + 50) // 100
                line_rows.append((next_id, i, pid, sku, name, qty, price, cost, pct or None, gross, disc, rate,
                                  net, tax, net + tax))
                g, d, n, t = g + gross, d + disc, n + net, t + tax
            orders_rows.append((next_id, current[0], current[2], current[3], current[1], g, d, n, t, n + t, now, now))

        for row in r:
            n_lines += 1
            key = (row[0], row[1], cust[row[2].casefold()], row[3])
            if key != current:
                close()
                current, acc = key, []
                if len(orders_rows) >= 2000:
                    insert()
            pid, sku, name, cost, rate = prod[row[4].casefold()]
            whole, _, frac = row[6].partition(".")
            acc.append((pid, sku, name, cost, rate, int(row[5]), int(whole) * 100 + int(frac or 0), row[7]))
        close()
    insert()
    conn.execute("COMMIT")
    seconds = time.perf_counter() - t0
    conn.close()
    return seconds, n_lines


LINES_SQL = """SELECT o.number, o.order_date, o.status, o.customer_id, c.external_id, c.email, o.channel,
       o.salesperson, o.currency, o.notes, o.shipping_cents, l.line_no, l.sku, l.description, l.qty,
       l.unit_price, l.discount_pct, l.discount_cents, l.tax_rate, l.net_cents, l.tax_cents, l.total_cents
FROM order_lines l JOIN orders o ON o.id = l.order_id JOIN customers c ON c.id = o.customer_id
ORDER BY l.order_id, l.line_no"""


def baseline_export(db: Path, out: Path) -> tuple[float, int]:
    conn = sqlite3.connect(db)
    t0 = time.perf_counter()
    n = 0
    with open(out, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        for row in conn.execute(LINES_SQL):
            w.writerow(row)
            n += 1
    seconds = time.perf_counter() - t0
    conn.close()
    return seconds, n


def customer_import(db: Path, customers_csv: Path, rows: int) -> dict[str, float]:
    """``import customers`` in this process, on a new database, with the
    phases timed: the whole run, the write transaction (``BEGIN IMMEDIATE``
    to ``COMMIT``: how long other writers wait) and the apply phase."""
    from contextlib import contextmanager

    from salescrm import db as sdb
    from salescrm import importer

    times: dict[str, float] = {}
    real_tx = sdb.write_tx
    real_apply = importer.CustomersAdapter.apply

    @contextmanager
    def timed_tx(conn, **kw):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            with real_tx(conn, **kw) as c:
                yield c
        finally:
            times["write_tx_s"] = time.perf_counter() - t0

    def timed_apply(self, ctx):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            return real_apply(self, ctx)
        finally:
            times["apply_s"] = time.perf_counter() - t0

    for f in db.parent.glob(db.name + "*"):
        f.unlink()
    conn = sdb.connect(db)
    sdb.write_tx, importer.CustomersAdapter.apply = timed_tx, timed_apply  # measuring only
    try:
        t0 = time.perf_counter()
        s = importer.run(conn, db, importer.Options(entity="customers", source=str(customers_csv)))
        times["total_s"] = time.perf_counter() - t0
    finally:
        sdb.write_tx, importer.CustomersAdapter.apply = real_tx, real_apply
        conn.close()
    assert s.inserted == rows and s.rejected == 0, s
    out = {k: round(v, 3) for k, v in times.items()}
    out["apply_rows_per_s"] = round(rows / times["apply_s"])
    out["rows_per_s"] = round(rows / times["total_s"])
    out["loadavg_1m"] = round(os.getloadavg()[0], 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="1.0: 100k customers, 10k products, 1M orders")
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--workdir", type=Path, default=None, help="keep the files here (default: a temporary folder)")
    ap.add_argument("--json", type=Path, default=None, help="write the figures to this file")
    ap.add_argument("--reuse", action="store_true",
                    help="with --workdir: reuse the generated files and the imported customers and products")
    ap.add_argument("--customers-only", action="store_true",
                    help="only generate the files and time 'import customers' (the apply phase)")
    ap.add_argument("--repeat", type=int, default=1, help="time 'import customers' N times; the median is shown")
    args = ap.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="salescrm-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    figures: dict = {"scale": args.scale, "seed": args.seed}
    try:
        db = work / "bench.db"
        seed_db = work / "seed.db"
        base_db = work / "baseline.db"
        sizes_file = work / "sizes.json"
        for f in [*work.glob("bench.db*"), *work.glob("baseline.db*")]:
            f.unlink()
        if args.reuse and sizes_file.exists() and seed_db.exists():
            figures["sizes"] = sizes = json.loads(sizes_file.read_text())
            print(f"reusing {work}: {sizes}")
        else:
            t0 = time.perf_counter()
            figures["sizes"] = sizes = generate(work, args.scale, args.seed)
            figures["generate_s"] = round(time.perf_counter() - t0, 2)
            print(f"generated {sizes} in {figures['generate_s']} s")
            runs = [customer_import(work / "customers.db", work / "customers.csv", sizes["customers"])
                    for _ in range(args.repeat)]
            c = figures["import_customers"] = sorted(runs, key=lambda x: x["apply_s"])[len(runs) // 2]  # median
            if args.repeat > 1:
                figures["import_customers_apply_s_runs"] = [x["apply_s"] for x in runs]
            print(f"import customers ({sizes['customers']:,} new, in-process): {c['total_s']:.2f} s in all,"
                  f" write lock held {c['write_tx_s']:.2f} s, apply {c['apply_s']:.2f} s ="
                  f" {c['apply_rows_per_s']:,} rows/s (load average {c['loadavg_1m']})")
            if args.customers_only:
                print(json.dumps(figures))
                return
            s, _, _, _ = salescrm(db, "import", "customers", str(work / "customers.csv"))
            figures["import_customers_s"] = round(s, 2)
            s, _, _, _ = salescrm(db, "import", "products", str(work / "products.csv"))
            figures["import_products_s"] = round(s, 2)
            print(f"customers imported in {figures['import_customers_s']} s, products in {figures['import_products_s']} s")
            conn = sqlite3.connect(db)
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()
            shutil.copyfile(db, seed_db)
            sizes_file.write_text(json.dumps(sizes))
        figures["orders_file_mb"] = round((work / "orders.csv").stat().st_size / 1e6, 1)
        shutil.copyfile(seed_db, db)
        shutil.copyfile(seed_db, base_db)

        s, rss_kib, out = salescrm_measured(db, "import", "orders", str(work / "orders.csv"), "--json")
        summary = json.loads(out)
        assert summary["rejected"] == 0 and summary["inserted"] == sizes["orders"], summary
        lines = sizes["lines"]
        figures["import"] = {"seconds": round(s, 2), "lines_per_s": round(lines / s), "peak_rss_mb": round(rss_kib / 1024, 1)}
        bs, bl = baseline_import(base_db, work / "orders.csv")
        assert bl == lines
        figures["import_baseline"] = {"seconds": round(bs, 2), "lines_per_s": round(lines / bs)}
        figures["import_ratio"] = round(bs / s, 3)
        print(f"import orders: {lines:,} lines in {s:.1f} s = {lines / s:,.0f} lines/s, peak RSS {rss_kib / 1024:.0f} MB")
        print(f"  baseline executemany: {bs:.1f} s = {lines / bs:,.0f} lines/s; ratio {bs / s:.2f} (goal >= 0.33)")

        s2, _, out2, _ = salescrm(db, "import", "orders", str(work / "orders.csv"), "--json")
        figures["rerun_same_file_s"] = round(s2, 2)
        assert json.loads(out2)["status"] == "already-imported"
        print(f"re-run of the same file: {s2:.2f} s (no-op)")

        exp = work / "lines.csv"
        if exp.exists():
            exp.unlink()
        es, _, _, _ = salescrm(db, "export", "lines", "-o", str(exp))
        base_exp = work / "lines-baseline.csv"
        bes, n = baseline_export(db, base_exp)
        assert n == lines
        figures["export"] = {"seconds": round(es, 2), "rows_per_s": round(lines / es)}
        figures["export_baseline"] = {"seconds": round(bes, 2), "rows_per_s": round(lines / bes)}
        figures["export_ratio"] = round(bes / es, 3)
        print(f"export lines: {es:.1f} s = {lines / es:,.0f} rows/s; plain csv.writer loop {bes:.1f} s = "
              f"{lines / bes:,.0f} rows/s; ratio {bes / es:.2f} (goal >= 0.5)")
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n")
        print(json.dumps(figures))
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
