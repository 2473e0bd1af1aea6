"""Benchmark every report on a generated database of 1M orders and ~3M lines.

    python benchmarks/bench_reports.py [--orders 1000000] [--db PATH] [--keep] [--runs 3]

The database is generated (seeded, deterministic) with bulk SQL in one
transaction: a per-day order count with growth and a December peak, and every
other value drawn from an integer hash of the row number inside SQLite, so no
row passes through Python.  Indexes are dropped while loading and rebuilt
after.  Each report then runs as ``python -m salescrm ... --format csv`` in a
fresh process, three times; the median wall time and the peak resident memory
of the children (``resource.getrusage(RUSAGE_CHILDREN)``) are printed.  The
goal is under 2 s and under 200 MB per report.

The summary tables (migrations m0005, m0007, m0008 and m0009,
``salescrm.salesfacts``) are built once at the end of the load, as an
upgrade would; the marking triggers are dropped while loading.

Last run (2 vCPU VM, Python 3.11, SQLite 3.40.1, load average 0.8-1.1,
median of 3 per report, on the database of the runs before upgraded to
m0009 by the program itself in 15.9 s; baseline ``python -c "import
typer"`` 0.119 s at the start and 0.108 s at the end; database 2.92 GB).
Peak memory of any report 98 MB (stats by customer).  The figure in
brackets is the ratio to the start baseline.

All 44 under 2 s; the slowest: orders funnel over all history 1.71 s
(14.4x), new vs returning over all history 1.71 (14.4x), stats of order
values by customer 1.50 (12.6x; new in this list, 50,000 rows of 17
figures read as kept, m0009: computing them took 2.3-7.7 s from the
command line on this host the same day), stats of line values by customer
1.43, stats margin by month 1.45, forecast 1.38.

The run before (m0008, baseline 0.121-0.126 s): all 42 under 2 s; the
slowest: stats margin by month 1.79 s (14.8x; five runs straight after:
1.10-1.34 s), stats line value over all 3M lines 1.41 (11.7x), collected by
month over all history 1.28, orders funnel over all history 1.25 (10.3x),
reorder 1.21, new vs returning over all history 1.21, sales by customer
over all history 1.20.

Two runs before (m0007, baseline 0.114 s): all 42 under
2 s, slowest funnel 1.74 s (15.3x), stats margin by month 1.44 (12.7x),
stats line value 1.30, RFM 0.89.

Three runs before (freshly built database, baseline 0.093-0.111 s): all 42
under 2 s, slowest funnel 1.77 s, stats line value 1.66, RFM 1.26.

Before m0007 (same host, earlier run): shipped by month over all history
2.15 s, shipped by product 6.04 s, stats margin by month 4.00 s, stats line
value over all lines 9.98 s, orders funnel 1.79 s.  Before the summaries
(m0005): all-history sales by month 3.9 s, by product 6.8 s, by customer
4.7 s, shipped this year 7.8 s, RFM 2.4 s, inactive 1.9 s, stats of order
values 2.5 s, new vs returning 2.6 s.

Not in this list: ``bench_variants.py`` times some 300 combinations of
filters, dimensions and ranges and lists the ones over 2 s (see its
docstring for what is left).
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

P = 2147483647  # 2^31 - 1


def rnd(expr: str, salt: int, seed: int) -> str:
    """SQL for a pseudo-random integer in [0, 2^31-1) from an integer
    expression: two rounds of a multiplicative hash (all products stay
    below 2^63, so SQLite never falls back to floating point)."""
    a = 1103515245 + 2 * salt
    return (f"(((((({expr}) * {a} + {salt * 7919 + seed}) % {P}) * 48271 % {P})"
            f" + {salt}) * 16807 % {P})")


REGIONS = ["North", "South", "East", "West", "Central", "华东", "華南", "Overseas"]
CHANNELS = ["online", "retail", "phone", "partner"]
SALESPEOPLE = ["ann", "bob", "chen", "dora", "emil", "fay", "gus", "hana", "ivan", "jun", "kim", "lea"]
CATEGORIES = ["tea", "coffee", "mugs", "kettles", "snacks", "gifts", "books", "paper", "pens", "bags",
              "toys", "lamps", "soap", "candles", "plants", "games", "cards", "music", "tools", "misc"]


def _case(expr: str, values: list[str]) -> str:
    """SQL CASE mapping 0..n-1 to the given text values."""
    whens = " ".join(f"WHEN {i} THEN '{v}'" for i, v in enumerate(values))
    return f"(CASE {expr} {whens} END)"


class _Timed:
    """A connection whose ``execute`` can print how long each statement took."""

    def __init__(self, conn: sqlite3.Connection, verbose: bool) -> None:
        self.conn, self.verbose = conn, verbose

    def execute(self, sql: str, *args):
        t = time.perf_counter()
        cur = self.conn.execute(sql, *args)
        if self.verbose:
            print(f"  {time.perf_counter() - t:6.2f}s  {' '.join(sql.split())[:70]}", file=sys.stderr)
        return cur

    def __getattr__(self, name: str):
        return getattr(self.conn, name)


def build(path: Path, *, orders: int = 1_000_000, customers: int = 50_000, products: int = 2_000,
          seed: int = 42, today: date | None = None, verbose: bool = False) -> dict:
    """Create the benchmark database at ``path`` (replaced if present)."""
    from salescrm import db

    t0 = time.perf_counter()
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    db.connect(path).close()  # schema via the real migrations
    conn = _Timed(sqlite3.connect(str(path), isolation_level=None), verbose)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("PRAGMA cache_size = -2000000")  # 2 GB while building
    conn.execute("PRAGMA temp_store = MEMORY")
    today = today or date.today()
    ndays = 3 * 365 + 1
    start = today - timedelta(days=ndays - 1)

    # Orders per day: growth of ~40% over the period, a December peak, quiet Sundays.
    weights = []
    for i in range(ndays):
        d = start + timedelta(days=i)
        w = (1 + 0.4 * i / ndays) * (1 + 0.35 * math.cos(2 * math.pi * (d.timetuple().tm_yday - 350) / 365))
        w *= 0.6 if d.weekday() == 6 else 1.0
        weights.append(w)
    total_w = sum(weights)
    exact = [orders * w / total_w for w in weights]
    counts = [int(x) for x in exact]
    for i in sorted(range(ndays), key=lambda i: counts[i] - exact[i])[:orders - sum(counts)]:
        counts[i] += 1  # largest remainders: the days add up to the order count
    days, first = [], 1
    for i, n in enumerate(counts):
        days.append((i, (start + timedelta(days=i)).isoformat(), first, n, ndays - 1 - i))
        first += n

    r = lambda expr, salt: rnd(expr, salt, seed)  # noqa: E731
    now = f"'{today.isoformat()}T12:00:00Z'"
    indexes = [row[0] for row in conn.execute(
        "SELECT sql FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL")]
    # The reports' summary triggers only mark changed orders; a bulk load drops
    # them and computes the summaries once at the end (salesfacts.rebuild).
    triggers = [row[0] for row in conn.execute(
        "SELECT sql FROM sqlite_schema WHERE type = 'trigger' AND name LIKE 'sales_mark_%'")]
    conn.execute("BEGIN")
    for row in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL").fetchall():
        conn.execute(f'DROP INDEX "{row[0]}"')
    for row in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'trigger' AND name LIKE 'sales_mark_%'"
                            ).fetchall():
        conn.execute(f'DROP TRIGGER "{row[0]}"')
    conn.execute("CREATE TEMP TABLE seq (x INTEGER PRIMARY KEY)")
    conn.execute(f"INSERT INTO seq WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c"
                 f" WHERE x < {max(max(counts), customers, products)}) SELECT x FROM c")
    conn.execute("CREATE TEMP TABLE days (i INTEGER PRIMARY KEY, d TEXT, first_id INTEGER, n INTEGER, age INTEGER)")
    conn.executemany("INSERT INTO days VALUES (?, ?, ?, ?, ?)", days)

    # Customers: some with CJK names; created before their first order, roughly.
    conn.execute(f"""
        INSERT INTO customers (id, name, name_key, email, email_key, region, country, segment, owner,
                               payment_terms_days, created_at, updated_at)
        SELECT x + 1,
               CASE WHEN x % 10 = 0 THEN '王芳 ' || x ELSE 'Customer ' || x END,
               CASE WHEN x % 10 = 0 THEN '王芳 ' || x ELSE 'customer ' || x END,
               'c' || x || '@example.com', 'c' || x || '@example.com',
               {_case(r('x', 1) + ' % 8', REGIONS)}, 'XX', 'retail',
               {_case(r('x', 2) + ' % 12', SALESPEOPLE)}, 30,
               '{start.isoformat()}T00:00:00Z', '{start.isoformat()}T00:00:00Z'
        FROM seq WHERE x < {customers}""")
    conn.execute(f"""
        INSERT INTO products (id, sku, sku_key, name, name_key, category, unit_cost, list_price,
                              tax_rate, reorder_level, created_at, updated_at)
        SELECT x + 1, 'SKU-' || x, 'sku-' || x, 'Product ' || x, 'product ' || x,
               {_case('x % 20', CATEGORIES)},
               100 + {r('x', 3)} % 4000, 0, '10', 20 + x % 50, {now}, {now}
        FROM seq WHERE x < {products}""")
    conn.execute("UPDATE products SET list_price = unit_cost + unit_cost * (20 + id % 60) / 100")
    conn.execute(f"""
        INSERT INTO stock_movements (product_id, kind, qty, reason, at, os_user)
        SELECT id, 'receive', 50 + {r('id', 4)} % 2000, 'bench', {now}, 'bench' FROM products""")

    # Orders: status by age, three lines on average.
    status = """CASE
        WHEN p < 1 THEN 'draft'
        WHEN p < 4 THEN 'cancelled'
        WHEN age <= 2 THEN 'confirmed'
        WHEN age <= 7 THEN CASE WHEN p < 20 THEN 'partially_shipped' ELSE 'shipped' END
        WHEN age <= 25 THEN 'delivered'
        WHEN p < 92 THEN 'closed' ELSE 'delivered' END"""
    conn.execute("""
        CREATE TEMP TABLE g_orders (id INTEGER PRIMARY KEY, order_date, customer_id, nlines, status, returned)""")
    conn.execute(f"""
        INSERT INTO g_orders
        SELECT id, order_date, customer_id, nlines, st, st = 'closed' AND {r('id', 13)} % 1000 < 15 FROM (
            SELECT id, order_date, customer_id, nlines, {status} AS st FROM (
                SELECT first_id + x AS id, d AS order_date, age,
                       1 + {r('first_id + x', 5)} % {customers} AS customer_id,
                       {r('first_id + x', 6)} % 100 AS p,
                       1 + {r('first_id + x', 7)} % 5 AS nlines
                FROM days JOIN seq ON seq.x < days.n))""")
    # Lines straight into order_lines (dense ids, in order): a tenth get 10% off; the
    # first line of a returned order came back whole.
    key = "o.id * 8 + s.x"
    disc = "(q.d * (q.qty * pr.list_price / 10))"
    net = f"(q.qty * pr.list_price - {disc})"
    conn.execute(f"""
        INSERT INTO order_lines (order_id, line_no, product_id, sku, description, qty, unit_price,
            unit_cost, gross_cents, discount_cents, tax_rate, net_cents, tax_cents, total_cents, shipped_qty,
            returned_qty)
        SELECT q.order_id, q.line_no, pr.id, pr.sku, pr.name, q.qty, pr.list_price, pr.unit_cost,
               q.qty * pr.list_price, {disc}, '10', {net}, ({net} + 5) / 10, {net} + ({net} + 5) / 10,
               CASE WHEN q.status IN ('shipped', 'delivered', 'closed') THEN q.qty
                    WHEN q.status = 'partially_shipped' AND q.line_no = 1 THEN q.qty ELSE 0 END,
               CASE WHEN q.returned AND q.line_no = 1 THEN q.qty ELSE 0 END
        FROM (SELECT o.id AS order_id, s.x + 1 AS line_no, o.status, o.returned,
                     1 + {r(key, 9)} % {products} AS pid, 1 + {r(key, 8)} % 6 AS qty,
                     {r(key, 10)} % 10 = 0 AS d
              FROM g_orders o JOIN seq s ON s.x < o.nlines) q
        JOIN products pr ON pr.id = q.pid
        ORDER BY q.order_id, q.line_no""")
    # Order totals from their lines, read in (order_id, line_no) order: no sort.
    conn.execute("CREATE TEMP TABLE g_agg (order_id INTEGER PRIMARY KEY, gross, disc, net, tax, first_total)")
    conn.execute("""
        INSERT INTO g_agg SELECT order_id, sum(gross_cents), sum(discount_cents), sum(net_cents), sum(tax_cents),
                                 sum(CASE WHEN line_no = 1 THEN total_cents END)
        FROM order_lines INDEXED BY sqlite_autoindex_order_lines_1 GROUP BY order_id""")
    conn.execute(f"""
        INSERT INTO orders (id, number, customer_id, status, channel, salesperson, order_date, currency,
            gross_cents, discount_cents, subtotal_cents, tax_cents, total_cents, returned_cents, paid_cents,
            due_date, confirmed_at, shipped_at, delivered_at, closed_at, cancelled_at, created_at, updated_at)
        SELECT o.id, 'SO-' || printf('%07d', o.id), o.customer_id, o.status,
               {_case(r('o.id', 11) + ' % 4', CHANNELS)}, {_case(r('o.id', 12) + ' % 12', SALESPEOPLE)},
               o.order_date, 'EUR', a.gross, a.disc, a.net, a.tax, a.net + a.tax,
               CASE WHEN o.returned THEN a.first_total ELSE 0 END,
               CASE WHEN o.status = 'closed' THEN a.net + a.tax - CASE WHEN o.returned THEN a.first_total ELSE 0 END
                    WHEN o.status = 'delivered' AND o.id % 3 = 0 THEN (a.net + a.tax) / 2 ELSE 0 END,
               CASE WHEN o.status NOT IN ('draft', 'cancelled') THEN date(o.order_date, '+30 days') END,
               CASE WHEN o.status NOT IN ('draft', 'cancelled') THEN o.order_date || 'T10:00:00Z' END,
               CASE WHEN o.status IN ('partially_shipped', 'shipped', 'delivered', 'closed')
                    THEN date(o.order_date, '+' || (1 + o.id % 3) || ' days') || 'T15:00:00Z' END,
               CASE WHEN o.status IN ('delivered', 'closed')
                    THEN date(o.order_date, '+' || (3 + o.id % 5) || ' days') || 'T11:00:00Z' END,
               CASE WHEN o.status = 'closed' THEN date(o.order_date, '+20 days') || 'T09:00:00Z' END,
               CASE WHEN o.status = 'cancelled' THEN o.order_date || 'T18:00:00Z' END,
               o.order_date || 'T09:00:00Z', o.order_date || 'T09:00:00Z'
        FROM g_orders o JOIN g_agg a ON a.order_id = o.id""")
    # Open lines hold their reservation, as 'order confirm' leaves them.
    conn.execute(f"""
        INSERT INTO stock_movements (product_id, kind, qty, order_id, line_id, reason, at, os_user)
        SELECT l.product_id, 'reserve', l.qty - l.shipped_qty, l.order_id, l.id, 'bench', {now}, 'bench'
        FROM order_lines l JOIN g_orders o ON o.id = l.order_id
        WHERE o.status IN ('confirmed', 'partially_shipped') AND l.qty > l.shipped_qty""")
    # One shipment per shipped order (its id is the order's).
    conn.execute("""
        INSERT INTO shipments (id, order_id, shipped_at, carrier, delivered_at, created_at)
        SELECT id, id, shipped_at, 'DHL', delivered_at, shipped_at FROM orders WHERE shipped_at IS NOT NULL""")
    conn.execute("""
        INSERT INTO shipment_lines (shipment_id, line_id, qty)
        SELECT order_id, id, shipped_qty FROM order_lines WHERE shipped_qty > 0""")
    # Returns: 1.5% of closed orders sent their first line back and were refunded.
    conn.execute("""
        INSERT INTO returns (id, order_id, returned_at, reason, amount_cents, created_at)
        SELECT id, id, date(order_date, '+12 days') || 'T10:00:00Z', 'damaged', returned_cents,
               date(order_date, '+12 days') || 'T10:00:00Z'
        FROM orders WHERE returned_cents > 0""")
    conn.execute("""
        INSERT INTO return_lines (return_id, line_id, qty, net_cents, tax_cents, total_cents)
        SELECT r.id, l.id, l.qty, l.net_cents, l.tax_cents, l.total_cents
        FROM returns r JOIN order_lines l ON l.order_id = r.order_id AND l.line_no = 1""")
    # Payments: closed orders paid in full (a tenth in two parts); a third of the
    # delivered ones paid half; refunds for the returns.
    pay = "date(order_date, '+' || (5 + id % 20) || ' days') || 'T12:00:00Z'"
    pay2 = "date(order_date, '+28 days') || 'T12:00:00Z'"
    conn.execute(f"""
        INSERT INTO payments (order_id, kind, amount_cents, method, paid_at, created_at)
        SELECT id, 'payment', total_cents, 'card', {pay}, {pay}
        FROM orders WHERE status = 'closed' AND id % 10 <> 0
        UNION ALL
        SELECT id, 'payment', total_cents / 2, 'card', {pay}, {pay}
        FROM orders WHERE (status = 'closed' AND id % 10 = 0) OR (status = 'delivered' AND paid_cents > 0)
        UNION ALL
        SELECT id, 'payment', total_cents - total_cents / 2, 'transfer', {pay2}, {pay2}
        FROM orders WHERE status = 'closed' AND id % 10 = 0""")
    conn.execute("""
        INSERT INTO payments (order_id, kind, amount_cents, method, paid_at, return_id, created_at)
        SELECT order_id, 'refund', -amount_cents, 'card', returned_at, id, returned_at FROM returns""")
    for sql in indexes + triggers:
        conn.execute(sql)
    from salescrm import salesfacts

    t_sum = time.perf_counter()
    salesfacts.rebuild(conn.conn)
    summaries_s = time.perf_counter() - t_sum
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.execute("PRAGMA journal_mode = WAL")
    counts_out = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("orders", "order_lines", "customers", "products", "shipments", "payments", "returns")}
    conn.close()
    counts_out["seconds"] = round(time.perf_counter() - t0, 1)
    counts_out["summaries_seconds"] = round(summaries_s, 1)
    counts_out["bytes"] = path.stat().st_size
    return counts_out


# Every report, as CLI arguments after ``salescrm --db PATH``.
REPORTS: list[tuple[str, list[str]]] = [
    ("sales by month (all 3 years)", ["report", "sales", "--by", "month"]),
    ("sales by month, this year", ["report", "sales", "--by", "month", "--from", "THIS_YEAR"]),
    ("sales by month (shipped, this year)", ["report", "sales", "--by", "month", "--basis", "shipped",
                                             "--from", "THIS_YEAR"]),
    ("sales by month (shipped, all)", ["report", "sales", "--by", "month", "--basis", "shipped"]),
    ("sales by product (shipped, all)", ["report", "sales", "--by", "product", "--basis", "shipped",
                                         "--limit", "50"]),
    ("sales by month (collected, all)", ["report", "sales", "--by", "month", "--basis", "collected"]),
    ("sales by week, last 365 days", ["report", "sales", "--by", "week", "--from", "-365d"]),
    ("sales by day, last 90 days", ["report", "sales", "--by", "day", "--from", "-90d"]),
    ("sales by quarter vs last year (all)", ["report", "sales", "--by", "quarter", "--compare", "last-year"]),
    ("sales by year (all)", ["report", "sales", "--by", "year"]),
    ("sales by customer, last 90 days", ["report", "sales", "--by", "customer", "--from", "-90d", "--limit", "50"]),
    ("sales by product, last 90 days", ["report", "sales", "--by", "product", "--from", "-90d", "--limit", "50"]),
    ("sales by category x month, this year", ["report", "sales", "--by", "category", "--by", "month",
                                              "--from", "THIS_YEAR"]),
    ("sales by channel, this year", ["report", "sales", "--by", "channel", "--from", "THIS_YEAR"]),
    ("sales by region, last 90 days", ["report", "sales", "--by", "region", "--from", "-90d"]),
    ("sales by salesperson, this year", ["report", "sales", "--by", "salesperson", "--from", "THIS_YEAR"]),
    ("sales, one category, by month (all)", ["report", "sales", "--by", "month", "--category", "tea"]),
    ("sales by product (all)", ["report", "sales", "--by", "product", "--limit", "50"]),
    ("sales by customer (all)", ["report", "sales", "--by", "customer", "--limit", "50"]),
    ("customers top (all)", ["report", "customers", "top", "--limit", "20"]),
    ("customers new vs returning, this year", ["report", "customers", "new", "--by", "month", "--from",
                                               "THIS_YEAR"]),
    ("customers new vs returning (all)", ["report", "customers", "new", "--by", "month"]),
    ("customers inactive (all)", ["report", "customers", "inactive", "--days", "180", "--limit", "100"]),
    ("customers rfm (all)", ["report", "customers", "rfm", "--limit", "100"]),
    ("customers abc (all)", ["report", "customers", "abc", "--limit", "100"]),
    ("orders funnel, this year", ["report", "orders", "funnel", "--from", "THIS_YEAR"]),
    ("orders funnel (all)", ["report", "orders", "funnel"]),
    ("orders open", ["report", "orders", "open", "--limit", "100"]),
    ("orders cycle, this year", ["report", "orders", "cycle", "--by", "month", "--from", "THIS_YEAR"]),
    ("orders ageing", ["report", "orders", "ageing"]),
    ("inventory", ["report", "inventory"]),
    ("stats order_value, last 90 days", ["report", "stats", "--field", "order_value", "--from", "-90d"]),
    ("stats line_value by category, 90 days", ["report", "stats", "--field", "line_value", "--by", "category",
                                               "--from", "-90d"]),
    ("stats order_value (all)", ["report", "stats", "--field", "order_value"]),
    ("stats margin by month (all)", ["report", "stats", "--field", "margin", "--by", "month"]),
    ("stats line_value (all 3M lines)", ["report", "stats", "--field", "line_value"]),
    ("stats order_value by customer (all)", ["report", "stats", "--field", "order_value", "--by", "customer"]),
    ("stats line_value by customer (all)", ["report", "stats", "--field", "line_value", "--by", "customer"]),
    ("forecast (all history)", ["report", "forecast", "--by", "month", "--periods", "6"]),
    ("reorder", ["report", "reorder", "--limit", "100"]),
    ("next-customers (all)", ["report", "next-customers", "--limit", "50"]),
    ("dashboard", ["dashboard"]),
]


def baseline(runs: int) -> float:
    """Median wall seconds of ``python -c "import typer"``: a process start
    and the CLI framework, what every report run pays before its work."""
    times = []
    for _ in range(max(runs, 3)):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import typer"], check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def time_report(db_path: Path, args: list[str], runs: int) -> tuple[float, float, float, int]:
    """Median wall seconds, median CPU seconds (user + system of the child:
    what the report costs, whatever else the machine is doing), peak child
    RSS in MB, and the exit code of the last run."""
    times, cpus, code, peak = [], [], 0, 0.0
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, str(db_path), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        times.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        code = proc.returncode
        if code != 0:
            print(f"  ! {' '.join(args)}: {proc.stderr.strip()[:300]}", file=sys.stderr)
        lines = proc.stderr.strip().splitlines()
        if lines and lines[-1].startswith("maxrss="):
            peak = max(peak, int(lines[-1].split("=")[1]) / 1024)
    return statistics.median(times), statistics.median(cpus), peak, code


# The child runs the CLI exactly as ``python -m salescrm`` would, then prints its
# own peak resident set (KiB) on stderr.
_CHILD = """
import resource, sys
from salescrm.cli import app
from typer.main import get_command
db, args = sys.argv[1], sys.argv[2:]
code = get_command(app).main(["--db", db, *args, "--format", "csv"] if args[0] != "dashboard"
                             else ["--db", db, *args], prog_name="salescrm", standalone_mode=False)
sys.stdout.flush()
# VmHWM: this program's own peak (ru_maxrss would keep the peak of the parent
# it was forked from, e.g. one that has just built the database)
try:
    peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
except (OSError, StopIteration):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("maxrss=%d" % peak, file=sys.stderr)
sys.exit(code or 0)
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=1_000_000)
    ap.add_argument("--db", type=Path, help="use (or build) the database here")
    ap.add_argument("--rebuild", action="store_true", help="rebuild even if --db exists")
    ap.add_argument("--keep", action="store_true", help="keep the generated database")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", help="run only reports whose name contains this text")
    ns = ap.parse_args()
    tmpdir = None
    if ns.db is None:
        tmpdir = tempfile.mkdtemp(prefix="salescrm-bench-")
        ns.db = Path(tmpdir) / "bench.db"
    if ns.rebuild or not ns.db.exists():
        print(f"building {ns.orders:,} orders in {ns.db} ...", flush=True)
        info = build(ns.db, orders=ns.orders)
        print("built: " + ", ".join(f"{k}={v:,}" for k, v in info.items()), flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    # The host's speed drifts: a baseline timed in the same run (before and
    # after) tells a slow machine from a slow report.
    base_before = baseline(ns.runs)
    print(f"baseline (python -c 'import typer', median of {ns.runs}): {base_before:.3f} s", flush=True)
    print(f"{'report':40} {'wall s':>7} {'cpu s':>7} {'peak MB':>8} {'x base':>7}")
    worst_t = worst_c = worst_m = 0.0
    failures = 0
    for name, args in REPORTS:
        if ns.only and ns.only not in name:
            continue
        args = [a.replace("THIS_YEAR", f"{date.today().year}-01-01") for a in args]
        t, cpu, mem, code = time_report(ns.db, args, ns.runs)
        worst_t, worst_c, worst_m = max(worst_t, t), max(worst_c, cpu), max(worst_m, mem)
        failures += code != 0
        flag = "" if t < 2 and mem < 200 and code == 0 else "  <-- over goal" if code == 0 else "  <-- failed"
        print(f"{name:40} {t:7.2f} {cpu:7.2f} {mem:8.0f} {t / base_before:7.1f}{flag}", flush=True)
    # The children's peak as the kernel saw it, across all of them (it
    # includes what a child inherited at fork: misleading after a build here).
    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"baseline again at the end: {baseline(ns.runs):.3f} s")
    print(f"slowest median: wall {worst_t:.2f} s, cpu {worst_c:.2f} s; peak memory {worst_m:.0f} MB "
          f"(getrusage children: {child_peak:.0f} MB); load average now {os.getloadavg()[0]:.1f}")
    if tmpdir and not ns.keep:
        for suffix in ("", "-wal", "-shm"):
            Path(str(ns.db) + suffix).unlink(missing_ok=True)
        os.rmdir(tmpdir)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
