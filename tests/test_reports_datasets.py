"""Reports on real public data: Chinook (four years of a music store) and the
Online Retail December 2010 sample (a UK gift wholesaler), loaded into a
salescrm database by direct inserts that respect the schema, then checked
against the reference figures shipped beside the data (tests/datasets/*/
reference) and against figures computed here from the CSVs, in Decimal.

Mapping: a Chinook invoice is a closed, paid order (no tax, no discounts);
its genre is the product category.  An Online Retail invoice is a closed
order, and an invoice whose number starts with "C" a cancelled order of the
same goods; a zero-price line with a negative quantity (a stock write-off)
is money-less and left out.  The references count every row, so
reference = booked revenue (cancellations never count) + the cancelled
value (negative), which the test computes from the CSVs.
"""

from __future__ import annotations

import csv
import sqlite3
import statistics
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from salescrm import db

DATA = Path(__file__).parent / "datasets"
NOW = "2026-01-01T00:00:00Z"


def read(*parts: str) -> list[dict]:
    with open(DATA.joinpath(*parts), newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def cents(text: str) -> int:
    value = Decimal(text) * 100
    assert value == value.to_integral_value(), text
    return int(value)


def _order_row(oid, number, cid, status, day, lines_total, *, salesperson=None, channel="online"):
    paid = lines_total if status == "closed" else 0
    return (oid, number, cid, status, channel, salesperson, day, lines_total, lines_total, lines_total, paid,
            NOW if status != "draft" else None, NOW if status == "closed" else None,
            NOW if status == "cancelled" else None, NOW, NOW)


ORDER_SQL = ("INSERT INTO orders (id, number, customer_id, status, channel, salesperson, order_date, gross_cents,"
             " subtotal_cents, total_cents, paid_cents, confirmed_at, closed_at, cancelled_at, created_at,"
             " updated_at, currency) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
LINE_SQL = ("INSERT INTO order_lines (order_id, line_no, product_id, sku, description, qty, unit_price, unit_cost,"
            " gross_cents, discount_cents, tax_rate, net_cents, tax_cents, total_cents, shipped_qty)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, 0, '0', ?, 0, ?, ?)")


def _load(path: Path, currency: str, customers, products, orders, lines) -> None:
    conn = db.connect(path)
    with db.write_tx(conn):
        conn.execute("INSERT INTO settings (key, value) VALUES ('currency', ?)", (currency,))
        conn.executemany("INSERT INTO customers (id, name, name_key, email, email_key, region, owner, created_at,"
                         " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", customers)
        conn.executemany("INSERT INTO products (id, sku, sku_key, name, name_key, category, kind, list_price,"
                         " tax_rate, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'service', ?, '0', ?, ?)",
                         products)
        conn.executemany(ORDER_SQL, [(*o, currency) for o in orders])
        conn.executemany(LINE_SQL, lines)
        # a closed order shipped and was paid in full on its order day (noon UTC)
        conn.execute("INSERT INTO shipments (id, order_id, shipped_at, created_at) SELECT id, id,"
                     " order_date || 'T12:00:00Z', created_at FROM orders WHERE status = 'closed'")
        conn.execute("INSERT INTO shipment_lines (shipment_id, line_id, qty) SELECT order_id, id, qty"
                     " FROM order_lines WHERE shipped_qty > 0")
        conn.execute("INSERT INTO payments (order_id, kind, amount_cents, method, paid_at, created_at)"
                     " SELECT id, 'payment', total_cents, 'card', order_date || 'T12:00:00Z', created_at"
                     " FROM orders WHERE status = 'closed' AND total_cents > 0")
    assert db.check(conn) == []
    conn.close()


# --------------------------------------------------------------------------- Chinook


@pytest.fixture(scope="module")
def chinook(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("chinook") / "chinook.db"
    custs = [(int(c["customer_id"]), f"{c['first_name']} {c['last_name']}",
              f"{c['first_name']} {c['last_name']}".casefold(), c["email"], c["email"].casefold(), c["country"],
              c["support_rep"] or None, NOW, NOW) for c in read("chinook", "csv", "customers.csv")]
    prods = [(int(p["product_id"]), f"T{p['product_id']}", f"t{p['product_id']}", p["product_name"],
              p["product_name"].casefold(), p["category"] or None, cents(p["unit_price"]), NOW, NOW)
             for p in read("chinook", "csv", "products.csv")]
    by_order: dict[int, list] = defaultdict(list)
    for ln in read("chinook", "csv", "order_lines.csv"):
        by_order[int(ln["order_id"])].append(ln)
    orders, lines = [], []
    for o in read("chinook", "csv", "orders.csv"):
        oid = int(o["order_id"])
        total = 0
        for no, ln in enumerate(by_order[oid], 1):
            qty, price = int(ln["quantity"]), cents(ln["unit_price"])
            total += qty * price
            lines.append((oid, no, int(ln["product_id"]), f"T{ln['product_id']}", "track", qty, price,
                          qty * price, qty * price, qty * price, qty))
        orders.append(_order_row(oid, f"INV-{oid}", int(o["customer_id"]), "closed", o["order_date"], total,
                                 salesperson=o["salesperson"] or None))
    _load(path, "USD", custs, prods, orders, lines)
    return str(path)


@pytest.fixture(scope="module")
def chinook_truth():
    """Revenue per month, year, customer and genre-year, computed from the CSVs."""
    genre = {p["product_id"]: p["category"] for p in read("chinook", "csv", "products.csv")}
    date_of = {o["order_id"]: (o["order_date"], o["customer_id"]) for o in read("chinook", "csv", "orders.csv")}
    t = {"month": defaultdict(Decimal), "year": defaultdict(Decimal), "customer": defaultdict(Decimal),
         "genre_year": defaultdict(Decimal)}
    for ln in read("chinook", "csv", "order_lines.csv"):
        day, cust = date_of[ln["order_id"]]
        v = Decimal(ln["unit_price"]) * int(ln["quantity"])
        t["month"][day[:7]] += v
        t["year"][day[:4]] += v
        t["customer"][cust] += v
        t["genre_year"][(genre[ln["product_id"]], day[:4])] += v
    return t


def test_chinook_monthly(run, chinook, chinook_truth):
    rows = run.csv("--db", chinook, "report", "sales", "--by", "month")
    ref = read("chinook", "reference", "revenue_by_month.csv")
    got = {r["month"]: (r["orders"], Decimal(r["revenue"])) for r in rows}
    assert len(ref) == 60 and len(got) == 60
    for r in ref:
        assert got[r["Month"]] == (r["Invoices"], Decimal(r["Revenue"])), r["Month"]
        assert chinook_truth["month"][r["Month"]] == Decimal(r["Revenue"])
    assert {r["currency"] for r in rows} == {"USD"}


def test_chinook_yearly(run, chinook, chinook_truth):
    rows = run.csv("--db", chinook, "report", "sales", "--by", "year", "--totals")
    total = rows.pop()
    by_ref: dict[str, Decimal] = defaultdict(Decimal)
    for r in read("chinook", "reference", "revenue_by_month.csv"):
        by_ref[r["Month"][:4]] += Decimal(r["Revenue"])
    assert {r["year"]: Decimal(r["revenue"]) for r in rows} == dict(by_ref) == dict(chinook_truth["year"])
    assert Decimal(total["revenue"]) == sum(by_ref.values()) == Decimal("2328.60")
    assert total["orders"] == "412"


def test_chinook_bases_agree(run, chinook):
    """Shipped and paid on the order day, without tax: the three bases agree."""
    booked = run.csv("--db", chinook, "report", "sales", "--by", "year")
    for basis in ("shipped", "collected"):
        other = run.csv("--db", chinook, "report", "sales", "--by", "year", "--basis", basis)
        assert [(r["year"], r["orders"], r["revenue"]) for r in other] == \
            [(r["year"], r["orders"], r["revenue"]) for r in booked], basis


def test_chinook_per_customer(run, chinook, chinook_truth):
    rows = run.csv("--db", chinook, "report", "sales", "--by", "customer")
    got = {r["customer_id"]: r for r in rows}
    ref = read("chinook", "reference", "revenue_by_customer.csv")
    assert len(ref) == len(got) == 59
    for r in ref:
        g = got[r["CustomerId"]]
        assert (g["customer"], g["orders"], Decimal(g["revenue"])) == (r["Name"], r["Invoices"], Decimal(r["Revenue"]))
        assert chinook_truth["customer"][r["CustomerId"]] == Decimal(r["Revenue"])
    assert rows[0]["customer"] == "Helena Holý"  # the biggest customer first
    top = run.csv("--db", chinook, "report", "customers", "top", "--limit", "3")
    assert [t["customer"] for t in top[:3]] == [r["Name"] for r in ref[:3]]


def test_chinook_per_genre_and_year(run, chinook, chinook_truth):
    rows = run.csv("--db", chinook, "report", "sales", "--by", "category", "--by", "year", "--long")
    got = {(r["category"], r["year"]): Decimal(r["revenue"]) for r in rows}
    ref = read("chinook", "reference", "revenue_by_genre_year.csv")
    for r in ref:
        assert got.get((r["Genre"], r["Year"]), Decimal(0)) == Decimal(r["Revenue"]), (r["Genre"], r["Year"])
        assert chinook_truth["genre_year"].get((r["Genre"], r["Year"]), Decimal(0)) == Decimal(r["Revenue"])
    pivot = run.csv("--db", chinook, "report", "sales", "--by", "category", "--by", "year", "--totals")
    total = pivot.pop()
    assert Decimal(total["total"]) == Decimal("2328.60")
    rock = next(p for p in pivot if p["category"] == "Rock")
    assert Decimal(rock["total"]) == sum(Decimal(r["Revenue"]) for r in ref if r["Genre"] == "Rock")


def test_chinook_invoice_statistics(run, chinook):
    totals = read("chinook", "reference", "invoice_totals.csv")
    values = sorted(Decimal(t["Total"]) for t in totals)
    (s,) = run.csv("--db", chinook, "report", "stats", "--field", "order_value")
    assert (int(s["count"]), Decimal(s["sum"])) == (412, sum(values))
    assert (Decimal(s["min"]), Decimal(s["max"])) == (values[0], values[-1])
    assert Decimal(s["median"]) == statistics.median(values)
    biggest = max(totals, key=lambda t: (Decimal(t["Total"]), -int(t["InvoiceId"])))
    assert s["max_order"] == f"INV-{biggest['InvoiceId']}"


# --------------------------------------------------------------------------- Online Retail


@pytest.fixture(scope="module")
def retail(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("retail") / "retail.db"
    orders_csv = read("online_retail", "csv", "orders.csv")
    guest = 1
    custs = {guest: (guest, "(guest)", "(guest)", None, None, None, None, NOW, NOW)}
    for o in orders_csv:
        if o["customer_id"]:
            cid = int(o["customer_id"])
            custs.setdefault(cid, (cid, f"Customer {cid}", f"customer {cid}", None, None, o["country"], None,
                                   NOW, NOW))
    prods: dict[str, tuple] = {}
    keys: set[str] = set()
    by_order: dict[str, list] = defaultdict(list)
    for ln in read("online_retail", "csv", "order_lines.csv"):
        by_order[ln["order_id"]].append(ln)
        code = ln["product_id"]
        if code not in prods:
            key = code.casefold()
            while key in keys:  # "M" and "m" are different codes
                key += "#"
            keys.add(key)
            prods[code] = (len(prods) + 1, code, key, ln["description"] or code, (ln["description"] or code).casefold(),
                           None, cents(ln["unit_price"]), NOW, NOW)
    orders, lines = [], []
    for oid, o in enumerate(orders_csv, 1):
        cancelled = o["order_id"].startswith("C")
        total = 0
        for ln in by_order[o["order_id"]]:
            qty, price = int(ln["quantity"]), cents(ln["unit_price"])
            if not cancelled and qty < 0:
                assert price == 0  # a stock write-off: no money
                continue
            qty = abs(qty)
            total += qty * price
            lines.append((oid, int(ln["line_no"]), prods[ln["product_id"]][0], ln["product_id"],
                          ln["description"] or "-", qty, price, qty * price, qty * price, qty * price,
                          0 if cancelled else qty))
        orders.append(_order_row(oid, o["order_id"], int(o["customer_id"]) if o["customer_id"] else guest,
                                 "cancelled" if cancelled else "closed", o["order_date"][:10], total,
                                 channel="online"))
    _load(path, "GBP", list(custs.values()), list(prods.values()), orders, lines)
    return str(path)


@pytest.fixture(scope="module")
def retail_truth():
    """From the CSVs: every row's value, and the cancelled value (negative), per
    day and customer; invoices per day and customer."""
    orders_csv = {o["order_id"]: o for o in read("online_retail", "csv", "orders.csv")}
    t = {k: defaultdict(Decimal) for k in ("all_day", "cancelled_day", "all_cust", "cancelled_cust")}
    inv_day: dict[str, set] = defaultdict(set)
    sold_day: dict[str, set] = defaultdict(set)
    for ln in read("online_retail", "csv", "order_lines.csv"):
        o = orders_csv[ln["order_id"]]
        day, cust = o["order_date"][:10], o["customer_id"]
        v = Decimal(ln["unit_price"]) * int(ln["quantity"])
        t["all_day"][day] += v
        t["all_cust"][cust] += v
        inv_day[day].add(ln["order_id"])
        if ln["order_id"].startswith("C"):
            t["cancelled_day"][day] += v
            t["cancelled_cust"][cust] += v
        elif int(ln["quantity"]) > 0:
            sold_day[day].add(ln["order_id"])
    t["invoices_day"] = {d: len(s) for d, s in inv_day.items()}
    t["sold_day"] = {d: len(s) for d, s in sold_day.items()}
    return t


def test_retail_daily(run, retail, retail_truth):
    rows = run.csv("--db", retail, "report", "sales", "--by", "day", "--from", "2010-12-01", "--to", "2010-12-23")
    got = {r["day"]: r for r in rows}
    ref = read("online_retail", "reference", "sample_revenue_by_day.csv")
    assert len(ref) == 20
    for r in ref:
        d = r["Day"]
        booked = Decimal(got[d]["revenue"])
        assert booked + retail_truth["cancelled_day"][d] == Decimal(r["Revenue_all_rows"]), d
        assert retail_truth["all_day"][d] == Decimal(r["Revenue_all_rows"])
        assert int(got[d]["orders"]) == retail_truth["sold_day"][d]
        assert retail_truth["invoices_day"][d] == int(r["Invoices"])
    # Sundays and the days without trading are zero rows, not holes
    assert got["2010-12-04"]["revenue"] == "0.00" and len(rows) == 23


def test_retail_monthly(run, retail, retail_truth):
    (dec,) = run.csv("--db", retail, "report", "sales", "--by", "month")
    ref = {r["Month"]: r for r in read("online_retail", "reference", "full_revenue_by_month.csv")}["2010-12"]
    cancelled = sum(retail_truth["cancelled_day"].values())
    assert Decimal(dec["revenue"]) + cancelled == Decimal(ref["Revenue_all_rows"]) == Decimal("748957.02")
    assert dec["currency"] == "GBP"
    funnel = {r["status"]: r for r in run.csv("--db", retail, "report", "orders", "funnel")}
    assert int(funnel["closed"]["orders"]) + int(funnel["cancelled"]["orders"]) == int(ref["Invoices"]) == 2025
    assert int(funnel["cancelled"]["orders"]) == 326
    assert -Decimal(funnel["cancelled"]["value"]) == cancelled


def test_retail_per_customer(run, retail, retail_truth):
    rows = run.csv("--db", retail, "report", "sales", "--by", "customer")
    got = {r["customer"]: Decimal(r["revenue"]) for r in rows}
    ref = read("online_retail", "reference", "sample_revenue_by_customer.csv")
    assert len(ref) == 948
    for r in ref:
        cid = r["CustomerID"]
        booked = got.get(f"Customer {cid}", Decimal(0))
        assert booked + retail_truth["cancelled_cust"][cid] == Decimal(r["Revenue_netted"]), cid
        assert retail_truth["all_cust"][cid] == Decimal(r["Revenue_netted"])
    assert got["(guest)"] + retail_truth["cancelled_cust"][""] == retail_truth["all_cust"][""]


def test_retail_totals_agree_across_dimensions(run, retail):
    totals = set()
    for by in ("day", "week", "customer", "product", "region", "channel"):
        rows = run.csv("--db", retail, "report", "sales", "--by", by, "--totals")
        total = rows.pop()
        assert Decimal(total["revenue"]) == sum(Decimal(r["revenue"]) for r in rows), by
        totals.add(total["revenue"])
    assert len(totals) == 1
    conn = sqlite3.connect(retail)
    independent = conn.execute("SELECT sum(qty * unit_price) FROM order_lines WHERE order_id IN"
                               " (SELECT id FROM orders WHERE status = 'closed')").fetchone()[0]
    assert Decimal(totals.pop()) * 100 == independent
