"""Reports against figures computed by hand.

The shop below is small enough to work out on paper; every expected figure
in this file was computed by hand from it (the working is in the comments),
and some are checked a second time by a query written differently from the
one the report uses.

Products (tax 10%, prices ex tax): TEA 龙井绿茶 cost 3.00 price 10.00 (tea);
MUG 青花瓷马克杯 cost 4.00 price 20.00 (teaware); SVC a service 50.00.
Customers: 王芳 (华东), Bob (West), Carol (West).

O1 王芳 2026-01-10 online ann: TEA x3 (30.00), MUG x1 -10% (18.00); shipped
   01-12, delivered 01-14, paid 52.80 on 01-15 -> closed.
   revenue 48.00; cost 3x3 + 4 = 13.00; discounts 2.00.
O2 Bob 2026-01-20 retail bea: TEA x5 (50.00), order discount 10% of the
   lines' total 55.00 = -5.50; shipped TEA x2 on 02-02 and x3 on 02-10,
   delivered 02-12, paid 30.00 on 02-15, TEA x1 returned 02-20 (credit:
   line 10.00 + tax 1.00 - its share of the discount 1.10 = 9.90).
   revenue 50.00 - 5.50 - (9.90 - 1.00) = 35.60; kept units 4; cost 12.00;
   discounts: the kept order discount 5.50 - 1.10 = 4.40.
   balance 49.50 - 9.90 - 30.00 = 9.60, due 2026-02-19.
O3 Carol 2026-02-05 online: MUG x2, confirmed then cancelled: never counts.
O4 王芳 2026-02-14 phone: SVC x1, a draft: never counts.
O5 Carol 2026-03-03 online ann: TEA x2, MUG x1 (40.00 net, 44.00 total);
   shipped 03-04, delivered 03-06, paid 44.00 on 03-05; MUG x1 returned
   03-10 and 22.00 refunded.  revenue 20.00; units 2; cost 6.00.

Booked: January 48.00 + 35.60 = 83.60 (2 orders, 8 units, cost 25.00,
discounts 6.40); February 0; March 20.00.  Total 103.60.
Shipped: January 48.00; February 35.60 (17.80 per shipment); March 20.00.
Collected: January 52.80; February 30.00; March 44.00 - 22.00 = 22.00.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import sqlite3
from decimal import Decimal

import pytest

from salescrm import customers, db, orders, products, stock
from salescrm.reports import common, forecast

AS_OF = "2026-04-01"


def _ts(day: str, hour: int = 12) -> str:
    return f"{day}T{hour:02d}:00:00"


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("shop") / "shop.db"
    conn = db.connect(path)
    with db.write_tx(conn):
        products.add(conn, sku="TEA", name="龙井绿茶", category="tea", cost=300, price=1000, tax_rate="10",
                     reorder_level=20)
        products.add(conn, sku="MUG", name="青花瓷马克杯", category="teaware", cost=400, price=2000, tax_rate="10",
                     reorder_level=2)
        products.add(conn, sku="SVC", name="Tasting", category="services", price=5000, tax_rate="0", kind="service")
        stock.receive(conn, "TEA", 100)
        stock.receive(conn, "MUG", 50)
        customers.add(conn, "王芳", email="wang@example.cn", region="华东")
        customers.add(conn, "Bob", email="bob@example.com", region="West")
        customers.add(conn, "Carol", email="carol@example.com", region="West")

    def tx(fn, *a, **k):
        with db.write_tx(conn):
            return fn(conn, *a, **k)

    o1 = tx(orders.create, customer="wang@example.cn", lines=["TEA:3", "MUG:1-10%"], channel="online",
            salesperson="ann", order_date="2026-01-10").number
    tx(orders.confirm, o1, at=_ts("2026-01-10", 10))
    tx(orders.ship, o1, at=_ts("2026-01-12"))
    tx(orders.deliver, o1, at=_ts("2026-01-14"))
    tx(orders.pay, o1, amount=5280, method="card", at=_ts("2026-01-15"))

    o2 = tx(orders.create, customer="bob@example.com", lines=["TEA:5"], channel="retail", salesperson="bea",
            order_date="2026-01-20", discount="10%").number
    tx(orders.confirm, o2, at=_ts("2026-01-20", 10))
    tx(orders.ship, o2, lines=[("TEA", 2)], at=_ts("2026-02-02"))
    tx(orders.ship, o2, at=_ts("2026-02-10"))
    tx(orders.deliver, o2, at=_ts("2026-02-12"))
    tx(orders.pay, o2, amount=3000, method="transfer", at=_ts("2026-02-15"))
    tx(orders.return_items, o2, lines=[("TEA", 1)], at=_ts("2026-02-20"))

    o3 = tx(orders.create, customer="carol@example.com", lines=["MUG:2"], channel="online",
            order_date="2026-02-05").number
    tx(orders.confirm, o3, at=_ts("2026-02-05", 10))
    tx(orders.cancel, o3)

    tx(orders.create, customer="wang@example.cn", lines=["SVC:1"], channel="phone", order_date="2026-02-14")

    o5 = tx(orders.create, customer="carol@example.com", lines=["TEA:2", "MUG:1"], channel="online",
            salesperson="ann", order_date="2026-03-03").number
    tx(orders.confirm, o5, at=_ts("2026-03-03", 10))
    tx(orders.ship, o5, at=_ts("2026-03-04"))
    tx(orders.deliver, o5, at=_ts("2026-03-06"))
    tx(orders.pay, o5, amount=4400, method="card", at=_ts("2026-03-05"))
    tx(orders.return_items, o5, lines=[("MUG", 1)], refund=True, at=_ts("2026-03-10"))
    conn.close()
    return str(path)


def test_the_shop_is_what_the_comments_say(shop):
    conn = sqlite3.connect(shop)
    got = conn.execute("SELECT number, status, total_cents, returned_cents, paid_cents, due_date FROM orders"
                       " ORDER BY id").fetchall()
    assert [g[1] for g in got] == ["closed", "delivered", "cancelled", "draft", "closed"]
    assert got[1][2:] == (4950, 990, 3000, "2026-02-19")
    assert got[4][2:5] == (4400, 2200, 2200)


def sales(run, shop, *args):
    return run.csv("--db", shop, "report", "sales", *args)


def money(rows, key="revenue"):
    return {r[list(r)[0]]: r[key] for r in rows}


# --------------------------------------------------------------------------- sales


def test_sales_by_month_booked(run, shop):
    rows = sales(run, shop, "--by", "month")
    assert [r["month"] for r in rows] == ["2026-01", "2026-02", "2026-03"]
    jan, feb, mar = rows
    assert (jan["orders"], jan["units"], jan["revenue"], jan["discounts"], jan["cost"]) == \
        ("2", "8", "83.60", "6.40", "25.00")
    assert (jan["margin"], jan["margin_pct"], jan["aov"]) == ("58.60", "70.1", "41.80")
    assert (feb["orders"], feb["revenue"], feb["units"]) == ("0", "0.00", "0")  # the gap is filled
    assert (mar["orders"], mar["units"], mar["revenue"], mar["cost"]) == ("1", "2", "20.00", "6.00")
    assert {r["currency"] for r in rows} == {"EUR"}
    assert (jan["month_start"], jan["month_end"]) == ("2026-01-01", "2026-01-31")


def test_totals_only_with_totals_and_equal_to_the_sum_of_the_parts(run, shop):
    rows = sales(run, shop, "--by", "month")
    assert "total" not in [r["month"] for r in rows]
    rows = sales(run, shop, "--by", "month", "--totals")
    total = rows.pop()
    assert total["month"] == "total"
    for key in ("orders", "units"):
        assert int(total[key]) == sum(int(r[key]) for r in rows)
    for key in ("revenue", "discounts", "cost", "margin"):
        assert Decimal(total[key]) == sum(Decimal(r[key]) for r in rows)
    assert total["revenue"] == "103.60"


@pytest.mark.parametrize("by, expected", [
    ("category", {"tea": "85.60", "teaware": "18.00"}),
    ("customer", {"王芳": "48.00", "Bob": "35.60", "Carol": "20.00"}),
    ("region", {"华东": "48.00", "West": "55.60"}),
    ("channel", {"online": "68.00", "retail": "35.60"}),
    ("salesperson", {"ann": "68.00", "bea": "35.60"}),
    ("product", {"TEA": "85.60", "MUG": "18.00"}),
    ("year", {"2026": "103.60"}),
    ("quarter", {"2026-Q1": "103.60"}),
])
def test_sales_by_dimension(run, shop, by, expected):
    # tea: O1 30.00 + O2 35.60 (the whole order discount sits on its one line) + O5 20.00;
    # teaware: O1 18.00 + O5 0 (its mug came back)
    rows = sales(run, shop, "--by", by)
    key = {"customer": "customer", "product": "sku"}.get(by, by)
    assert {r[key]: r["revenue"] for r in rows} == expected
    assert sum(Decimal(r["revenue"]) for r in rows) == Decimal("103.60")


def test_cjk_names_survive_every_format(run, shop):
    rows = sales(run, shop, "--by", "customer")
    assert rows[0]["customer"] == "王芳" and rows[0]["customer_id"] == "1"
    data = run.json("--db", shop, "report", "sales", "--by", "product")
    assert {d["product"] for d in data} == {"龙井绿茶", "青花瓷马克杯"}
    assert data[0]["revenue"] == Decimal("85.60") or data[0]["revenue"] == 85.6
    text = run.ok("--db", shop, "report", "sales", "--by", "customer", "--format", "json").stdout
    assert '"customer": "王芳"' in text and '"revenue": 48.00' in text
    md = run.ok("--db", shop, "report", "sales", "--by", "region", "--format", "markdown").stdout
    assert "| 华东" in md


def test_sales_shipped_basis(run, shop):
    # O2's two shipments carry 2 and 3 units; the returned unit comes off the later one:
    # 2 kept units each, 35.60 x 2/4 = 17.80 per shipment, both in February.
    rows = sales(run, shop, "--by", "month", "--basis", "shipped")
    assert money(rows) == {"2026-01": "48.00", "2026-02": "35.60", "2026-03": "20.00"}
    assert [r["units"] for r in rows] == ["4", "4", "2"]
    assert [r["orders"] for r in rows] == ["1", "1", "1"]
    assert {r["discounts"] for r in rows} == {""}
    days = sales(run, shop, "--by", "day", "--basis", "shipped", "--from", "2026-02-01", "--to", "2026-02-28")
    shipped = {r["day"]: r["revenue"] for r in days if r["revenue"] != "0.00"}
    assert shipped == {"2026-02-02": "17.80", "2026-02-10": "17.80"}


def test_sales_collected_basis(run, shop):
    rows = sales(run, shop, "--by", "month", "--basis", "collected", "--totals")
    assert money(rows) == {"2026-01": "52.80", "2026-02": "30.00", "2026-03": "22.00", "total": "104.80"}
    assert rows[0]["units"] == "" and rows[0]["cost"] == ""
    # independently: every payment and refund of an order neither draft nor cancelled
    conn = sqlite3.connect(shop)
    total = conn.execute("SELECT sum(p.amount_cents) FROM payments p, orders o WHERE o.id = p.order_id"
                         " AND o.status NOT IN ('draft', 'cancelled')").fetchone()[0]
    assert total == 10480


def test_sales_collected_refuses_products(run, shop):
    r = run("--db", shop, "report", "sales", "--by", "category", "--basis", "collected")
    assert r.exit_code == 2
    assert "collected basis has no product or category" in r.stderr


def test_sales_pivot_category_by_month(run, shop):
    rows = sales(run, shop, "--by", "category", "--by", "month", "--totals")
    assert list(rows[0]) == ["category", "2026-01", "2026-02", "2026-03", "total", "currency"]
    got = {r["category"]: (r["2026-01"], r["2026-02"], r["2026-03"], r["total"]) for r in rows}
    assert got == {"tea": ("65.60", "0.00", "20.00", "85.60"), "teaware": ("18.00", "0.00", "0.00", "18.00"),
                   "total": ("83.60", "0.00", "20.00", "103.60")}
    units = sales(run, shop, "--by", "category", "--by", "month", "--measure", "units")
    assert {r["category"]: r["total"] for r in units} == {"tea": "9", "teaware": "1"}
    long = sales(run, shop, "--by", "category", "--by", "month", "--long")
    assert {(r["category"], r["month"]): r["revenue"] for r in long} == {
        ("tea", "2026-01"): "65.60", ("teaware", "2026-01"): "18.00", ("tea", "2026-03"): "20.00",
        ("teaware", "2026-03"): "0.00"}


def test_sales_filters(run, shop):
    assert money(sales(run, shop, "--by", "year", "--channel", "online")) == {"2026": "68.00"}
    assert money(sales(run, shop, "--by", "year", "--category", "TEAWARE")) == {"2026": "18.00"}
    assert money(sales(run, shop, "--by", "year", "--region", "west")) == {"2026": "55.60"}
    assert money(sales(run, shop, "--by", "year", "--customer", "bob@example.com")) == {"2026": "35.60"}
    assert money(sales(run, shop, "--by", "year", "--salesperson", "ann", "--channel", "online,retail")) == \
        {"2026": "68.00"}
    assert money(sales(run, shop, "--by", "month", "--from", "2026-01-15", "--to", "2026-01-31")) == \
        {"2026-01": "35.60"}


def test_sales_compare(run, shop):
    rows = sales(run, shop, "--by", "month", "--compare", "previous", "--from", "2026-02-01", "--to", "2026-03-31")
    assert [(r["month"], r["revenue"], r["previous"], r["change"], r["change_pct"]) for r in rows] == [
        ("2026-02", "0.00", "83.60", "-83.60", "-100.0"), ("2026-03", "20.00", "0.00", "20.00", "")]
    rows = sales(run, shop, "--by", "channel", "--compare", "previous", "--from", "2026-03-01", "--to", "2026-03-31")
    # the previous 31 days: 2026-01-29 .. 2026-02-28: nothing booked
    assert [(r["channel"], r["revenue"], r["previous"]) for r in rows] == [("online", "20.00", "")]
    r = run("--db", shop, "report", "sales", "--by", "channel", "--compare", "last-year")
    assert r.exit_code == 2 and "--compare needs --from and --to" in r.stderr


def test_sales_limit_sums_the_rest(run, shop):
    rows = sales(run, shop, "--by", "customer", "--limit", "1", "--totals")
    assert [(r["customer"], r["revenue"]) for r in rows] == [("王芳", "48.00"), ("(other 2)", "55.60"),
                                                             ("total", "103.60")]
    rows = sales(run, shop, "--by", "customer", "--sort", "+revenue")
    assert [r["customer"] for r in rows] == ["Carol", "Bob", "王芳"]


def test_the_same_columns_every_time(run, shop, db_path):
    cols = list(sales(run, shop, "--by", "month")[0])
    r = run.ok("report", "sales", "--by", "month", "--format", "csv")  # an empty database
    assert r.stdout.splitlines()[0].split(",") == cols
    for basis in ("shipped", "collected"):
        assert list(sales(run, shop, "--by", "month", "--basis", basis)[0]) == cols


@pytest.mark.parametrize("args, code, message", [
    (["--by", "fortnight"], 2, "unknown --by 'fortnight'"),
    (["--by", "month", "--by", "year", "--by", "channel"], 2, "at most two --by"),
    (["--from", "2026-13-01"], 1, "--from is not a date: '2026-13-01'"),
    (["--from", "2026-03-01", "--to", "2026-02-01"], 1, "--from 2026-03-01 is after --to 2026-02-01"),
    (["--channel", "nosuch"], 1, "unknown channel 'nosuch'"),
    (["--region", "Mars"], 1, "unknown region 'Mars'"),
    (["--category", "nosuch"], 1, "unknown category 'nosuch'"),
    (["--customer", "nobody@example.com"], 1, "no customer with e-mail"),
    (["--basis", "invoiced"], 2, "unknown --basis 'invoiced'"),
    (["--sort", "password"], 2, "cannot sort by 'password'"),
    (["--measure", "profit"], 2, "unknown --measure 'profit'"),
    (["--by", "month", "--by", "channel", "--measure", "margin_pct"], 2, "a pivot adds its cells up"),
])
def test_sales_refuses_bad_input_with_one_line(run, shop, args, code, message):
    r = run("--db", shop, "report", "sales", *args)
    assert r.exit_code == code, r.stderr
    assert message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert r.stdout == ""


def test_terminal_table_has_totals_summary_and_chart(run, shop):
    out = run.ok("--db", shop, "report", "sales", "--by", "month", "--format", "table", "--chart").stdout
    assert "83.60" in out and "103.60" in out  # a row and the totals row
    assert "revenue: count 3 · sum 103.60 · mean 34.53 · median 20.00 · min 0.00 (2026-02) · max 83.60 (2026-01)" \
        in out
    assert "▁" in out and "█" in out  # the sparkline
    bars = run.ok("--db", shop, "report", "sales", "--by", "customer", "--format", "table", "--chart").stdout
    assert "王芳" in bars and "█" in bars
    r = run.ok("--db", shop, "report", "sales", "--by", "month", "--chart", "--format", "csv")
    assert "█" not in r.stdout and "--chart is drawn under terminal tables only" in r.stderr


def test_reports_never_write(run, shop, snap, tmp_path):
    from pathlib import Path

    before = snap(Path(shop))
    for args in (["report", "sales", "--by", "month"], ["report", "customers", "rfm"], ["dashboard"],
                 ["report", "orders", "ageing"], ["report", "forecast"], ["report", "stats", "--by", "month"],
                 ["report", "inventory"], ["report", "next-customers"], ["report", "sales", "--basis", "shipped"]):
        run.ok("--db", shop, *args, "--format", "csv")
    assert snap(Path(shop)) == before
    missing = tmp_path / "nothing-here.db"
    run.ok("--db", missing, "report", "sales", "--format", "csv")
    assert not missing.exists()


def _plan_of_aggregate(conn, spec, dims) -> str:
    seen = []
    conn.set_trace_callback(seen.append)
    common.aggregate(conn, spec, dims)
    conn.set_trace_callback(None)
    sql = next(s for s in seen if "GROUP BY" in s)
    return sql.split(" WHERE ")[0] + " || " + " | ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql))


def test_period_reports_walk_the_date_index(shop, monkeypatch):
    """No sort of every order: the day groups come from the daily summary in
    its key order, or (summaries not current) from orders(order_date)."""
    from salescrm import salesfacts

    conn = db.connect(shop, write=False)
    spec = common.Spec("booked", common.Range(), common.resolve_filters(conn))
    plan = _plan_of_aggregate(conn, spec, ["month"])
    assert "FROM sales_days" in plan and "TEMP B-TREE" not in plan, plan
    monkeypatch.setattr(salesfacts, "ready", lambda conn: False)
    plan = _plan_of_aggregate(conn, spec, ["month"])
    assert "orders_date" in plan and "TEMP B-TREE FOR GROUP BY" not in plan, plan


def test_line_and_order_revenue_agree_with_adjustments_and_returns(shop):
    """Two independent paths: per line (returns, adjustment shares) and per
    order (subtotal + adjustments - returned + returned tax)."""
    conn = db.connect(shop, write=False)
    per_line = dict(conn.execute(
        f"SELECT o.id, sum({common.line_revenue_sql()}) FROM orders o JOIN order_lines l ON l.order_id = o.id"
        " GROUP BY o.id"))
    per_order = dict(conn.execute(f"SELECT o.id, {common.order_revenue_sql()} FROM orders o"))
    assert per_line == {k: v for k, v in per_order.items() if k in per_line}
    assert per_line[2] == 3560 and per_line[5] == 2000


# --------------------------------------------------------------------------- customers


def test_customers_top(run, shop):
    rows = run.csv("--db", shop, "report", "customers", "top", "--totals")
    assert [(r["rank"], r["customer"], r["orders"], r["revenue"], r["share_pct"], r["cum_share_pct"])
            for r in rows] == [
        ("1", "王芳", "1", "48.00", "46.3", "46.3"), ("2", "Bob", "1", "35.60", "34.4", "80.7"),
        ("3", "Carol", "1", "20.00", "19.3", "100.0"), ("", "total", "3", "103.60", "100.0", "")]
    assert rows[0]["email"] == "wang@example.cn" and rows[0]["last_order"] == "2026-01-10"


def test_customers_new_vs_returning(run, shop):
    rows = run.csv("--db", shop, "report", "customers", "new", "--by", "month")
    got = [(r["period"], r["new_customers"], r["returning_customers"], r["new_revenue"]) for r in rows]
    # Carol's first *booked* order is in March (her February order was cancelled)
    assert got == [("2026-01", "2", "0", "83.60"), ("2026-02", "0", "0", "0.00"), ("2026-03", "1", "0", "20.00")]


def test_customers_inactive(run, shop):
    rows = run.csv("--db", shop, "report", "customers", "inactive", "--days", "60", "--as-of", AS_OF)
    # cutoff 2026-01-31: 王芳 (last 01-10) and Bob (01-20); Carol ordered on 03-03
    assert [(r["customer"], r["last_order"], r["days_inactive"], r["lifetime_value"]) for r in rows] == [
        ("王芳", "2026-01-10", "81", "48.00"), ("Bob", "2026-01-20", "71", "35.60")]


def test_customers_rfm_and_segments(run, shop):
    # n = 3, score = 1 + 5 (rank - 1) / 3 -> 1, 2, 4.  Recency ranks: 王芳 1, Bob 2, Carol 3;
    # everyone has one order (frequency rank 1 -> 1); monetary: Carol 1, Bob 2, 王芳 3.
    rows = run.csv("--db", shop, "report", "customers", "rfm", "--as-of", AS_OF)
    got = {r["customer"]: (r["rfm"], r["segment"], r["recency_days"]) for r in rows}
    assert got == {"王芳": ("114", "lost", "81"), "Bob": ("212", "hibernating", "71"),
                   "Carol": ("411", "new", "29")}
    seg = {r["segment"]: (r["customers"], r["revenue"])
           for r in run.csv("--db", shop, "report", "customers", "segments", "--as-of", AS_OF)}
    assert seg["lost"] == ("1", "48.00") and seg["new"] == ("1", "20.00") and seg["champions"] == ("0", "0.00")
    only = run.csv("--db", shop, "report", "customers", "rfm", "--as-of", AS_OF, "--segment", "new")
    assert [r["customer"] for r in only] == ["Carol"]
    r = run("--db", shop, "report", "customers", "rfm", "--segment", "vip")
    assert r.exit_code == 2 and "unknown segment 'vip'" in r.stderr


def test_rfm_scores_in_python_equal_sqls_rank_quintiles():
    # the scores are computed in Python; SQL's rank() is the independent reference (ties share a rank)
    import random

    from salescrm.reports.customers import quintile_scores

    rnd = random.Random(3)
    conn = sqlite3.connect(":memory:")
    for n in (1, 2, 3, 5, 7, 50, 501):
        for spread in (2, 10, 10**6):
            values = {i: rnd.randint(0, spread) for i in range(n)}
            want = dict(conn.execute(
                "SELECT k, 1 + 5 * (rank() OVER (ORDER BY v) - 1) / count(*) OVER () FROM"
                " (SELECT json_extract(value, '$[0]') AS k, json_extract(value, '$[1]') AS v FROM json_each(?))",
                (json.dumps([[k, v] for k, v in values.items()]),)))
            assert quintile_scores(values) == want, (n, spread)


def test_customers_abc(run, shop):
    rows = run.csv("--db", shop, "report", "customers", "abc")
    # running share before each: 0% -> A, 46.3% -> A, 80.7% -> B
    assert [(r["customer"], r["class"]) for r in rows] == [("王芳", "A"), ("Bob", "A"), ("Carol", "B")]
    summary = run.csv("--db", shop, "report", "customers", "abc", "--summary")
    assert [(r["class"], r["customers"], r["revenue"]) for r in summary] == [
        ("A", "2", "83.60"), ("B", "1", "20.00"), ("C", "0", "0.00")]


# --------------------------------------------------------------------------- orders


def test_orders_funnel(run, shop):
    rows = {r["status"]: r for r in run.csv("--db", shop, "report", "orders", "funnel", "--totals")}
    assert {s: r["orders"] for s, r in rows.items()} == {
        "draft": "1", "confirmed": "0", "partially_shipped": "0", "shipped": "0", "delivered": "1", "closed": "2",
        "cancelled": "1", "total": "5"}
    assert rows["closed"]["value"] == "68.00" and rows["delivered"]["value"] == "35.60"
    assert rows["cancelled"]["value"] == "40.00"  # what it would have been worth
    assert (rows["draft"]["reached"], rows["confirmed"]["reached"], rows["shipped"]["reached"],
            rows["closed"]["reached"]) == ("5", "4", "3", "2")
    # all history reads status by status; a range groups by status: the same figures
    ranged = run.csv("--db", shop, "report", "orders", "funnel", "--totals", "--from", "2000-01-01")
    assert ranged == list(rows.values())


def test_orders_open_and_ageing_with_a_partial_payment(run, shop):
    rows = run.csv("--db", shop, "report", "orders", "open", "--as-of", AS_OF)
    assert [(r["number"], r["status"], r["customer"], r["total"], r["paid"], r["balance"], r["overdue"])
            for r in rows] == [("SO-000002", "delivered", "Bob", "39.60", "30.00", "9.60", "true")]
    # due 2026-02-19; on 2026-04-01 it is 41 days overdue
    ageing = {r["bucket"]: (r["orders"], r["balance"])
              for r in run.csv("--db", shop, "report", "orders", "ageing", "--as-of", AS_OF)}
    assert ageing == {"current": ("0", "0.00"), "1-30": ("0", "0.00"), "31-60": ("1", "9.60"),
                      "61-90": ("0", "0.00"), "90+": ("0", "0.00")}
    early = {r["bucket"]: r["balance"] for r in run.csv("--db", shop, "report", "orders", "ageing",
                                                         "--as-of", "2026-02-19")}
    assert early["current"] == "9.60"
    by = run.csv("--db", shop, "report", "orders", "ageing", "--as-of", "2026-05-25", "--by-customer")
    assert [(r["customer"], r["d_90_plus"], r["overdue"]) for r in by] == [("Bob", "9.60", "9.60")]


def test_orders_cycle(run, shop):
    rows = run.csv("--db", shop, "report", "orders", "cycle", "--by", "all")
    # to ship: 2d2h, 13d2h, 1d2h -> 5.4; to deliver: 4d2h, 23d2h, 3d2h -> 10.1
    assert [(r["confirmed"], r["shipped"], r["days_to_ship"], r["days_to_deliver"], r["max_days_to_ship"])
            for r in rows] == [("3", "3", "5.4", "10.1", "13.1")]


# --------------------------------------------------------------------------- inventory, stats, advice


def test_inventory(run, shop):
    rows = {r["sku"]: r for r in run.csv("--db", shop, "report", "inventory", "--as-of", "2026-03-31")}
    assert set(rows) == {"TEA", "MUG"}  # no services
    # TEA: 100 in, 3 + 5 + 2 out, 1 back = 91; MUG: 50 - 1 - 1 + 1 = 49
    assert (rows["TEA"]["on_hand"], rows["TEA"]["stock_value"], rows["TEA"]["sold"]) == ("91", "273.00", "9")
    assert (rows["MUG"]["on_hand"], rows["MUG"]["stock_value"], rows["MUG"]["sold"]) == ("49", "196.00", "1")
    assert rows["TEA"]["days_of_cover"] == "910.0"  # 91 / (9 / 90)
    conn = sqlite3.connect(shop)
    ledger = conn.execute("SELECT sum(CASE kind WHEN 'receive' THEN qty WHEN 'return' THEN qty WHEN 'ship'"
                          " THEN -qty ELSE 0 END) FROM stock_movements WHERE product_id = 1").fetchone()[0]
    assert ledger == 91


def test_stats_order_value(run, shop):
    # booked order values 48.00, 35.60, 20.00: p25 at rank 0.5 = 27.80, p75 at 1.5 = 41.80,
    # p90 at 1.8 = 45.52; sample sd = 14.03
    (r,) = run.csv("--db", shop, "report", "stats", "--field", "order_value")
    assert (r["count"], r["sum"], r["mean"], r["median"], r["p25"], r["p75"], r["p90"]) == \
        ("3", "103.60", "34.53", "35.60", "27.80", "41.80", "45.52")
    assert (r["min"], r["min_order"], r["min_customer"]) == ("20.00", "SO-000005", "Carol")
    assert (r["max"], r["max_order"], r["max_customer"]) == ("48.00", "SO-000001", "王芳")
    assert r["stdev"] == "14.03"


def test_stats_quantity_by_category(run, shop):
    rows = {r["group"]: r for r in run.csv("--db", shop, "report", "stats", "--field", "quantity", "--by",
                                           "category")}
    # kept units per line: tea 3, 4, 2; teaware 1 (O5's mug line kept nothing and is left out)
    assert (rows["tea"]["count"], rows["tea"]["sum"], rows["tea"]["median"], rows["tea"]["mean"]) == \
        ("3", "9", "3.00", "3.00")
    assert (rows["teaware"]["count"], rows["teaware"]["max"]) == ("1", "1")


def test_stats_by_customer_sorted_and_limited_on_the_command_line(run, shop):
    # order values: 王芳 48.00, Bob 35.60, Carol 20.00 (one order each)
    got = run("--db", shop, "report", "stats", "--by", "customer", "--sort", "-median", "--limit", "2",
              "--format", "csv")
    assert got.exit_code == 0
    assert [r["group"] for r in csv.DictReader(io.StringIO(got.stdout))] == ["王芳", "Bob"]
    assert "1 more groups are not shown (--limit 2)" in got.stderr
    got = run("--db", shop, "report", "stats", "--by", "customer", "--sort", "+max", "--format", "csv")
    assert [r["group"] for r in csv.DictReader(io.StringIO(got.stdout))] == ["Carol", "Bob", "王芳"]
    bad = run("--db", shop, "report", "stats", "--by", "customer", "--sort", "mode")
    assert bad.exit_code == 2 and "cannot sort by 'mode'" in bad.stderr


def test_stats_margin(run, shop):
    (r,) = run.csv("--db", shop, "report", "stats", "--field", "margin")
    # 48.00 - 13.00, 35.60 - 12.00, 20.00 - 6.00
    assert (r["sum"], r["min"], r["max"], r["median"]) == ("72.60", "14.00", "35.00", "23.60")


def test_reorder(run, shop):
    rows = {r["sku"]: r for r in run.csv("--db", shop, "report", "reorder", "--all", "--as-of", "2026-03-31")}
    # TEA daily demand over 90 days: 3, 4 and 2 units on three days: mean 0.1,
    # sd = sqrt((29 - 81/90) / 89) = 0.5619; safety = 1.6449 x 0.5619 x sqrt(14) = 3.46 -> 4;
    # reorder point 0.1 x 14 + 3.46 = 4.86 -> 5
    t = rows["TEA"]
    assert (t["daily_demand"], t["demand_sd"], t["safety_stock"], t["reorder_point"], t["order_qty"], t["action"]) == \
        ("0.10", "0.56", "4", "5", "0", "ok")
    assert (t["service_level_pct"], t["lead_time_days"]) == ("95", "14")
    far = {r["sku"]: r for r in run.csv("--db", shop, "report", "reorder", "--as-of", "2026-03-31",
                                        "--lead-time", "900")}
    # rop = 90 + 27.73 = 117.73 -> 118 > 91 available; order up to 117.73 + 3 -> 30 units
    assert (far["TEA"]["reorder_point"], far["TEA"]["order_qty"], far["TEA"]["action"]) == ("118", "30",
                                                                                           "reorder now")


def test_forecast_methods_by_hand():
    assert forecast.linear_trend([1, 2, 3], 2) == pytest.approx([4, 5])
    assert forecast.seasonal_naive([1, 2, 3, 4], 6, 2) == [3, 4, 3, 4, 3, 4]
    season = [10, 20, 30, 20] * 4
    trend = [v + i for i, v in enumerate(season)]
    hw = forecast.holt_winters(trend, 4, 4)
    assert hw == pytest.approx([26, 37, 48, 39], abs=0.5)
    chosen = forecast.choose(season * 2, 4, 4)  # a pure season: seasonal naive is exact
    assert chosen["method"] == "seasonal naive" and chosen["mape"] == 0
    assert forecast.mape([100, 200], [110, 180]) == pytest.approx(10)
    assert forecast.choose([5.0], 2, 12)["method"] == "naive (too little history)"


def test_forecast_report(run, shop):
    rows = run.csv("--db", shop, "report", "forecast", "--periods", "3", "--as-of", "2026-04-15")
    assert [r["period"] for r in rows] == ["2026-04", "2026-05", "2026-06"]
    assert rows[0]["actual_to_date"] == "0.00" and {r["method"] for r in rows} == {"naive (too little history)"}
    assert all(Decimal(r["low"]) <= Decimal(r["forecast"]) <= Decimal(r["high"]) for r in rows)
    r = run("--db", shop, "report", "forecast", "--by", "quarter")
    assert r.exit_code == 2 and "unknown --by 'quarter'" in r.stderr


def test_next_customers(run, db_path):
    conn = db.connect(db_path)
    with db.write_tx(conn):
        products.add(conn, sku="TEA", name="Tea", price=1000, kind="service")
        customers.add(conn, "李雷", email="li@example.cn")
        customers.add(conn, "Ann", email="ann@example.com")
        conn.execute("INSERT INTO tasks (customer_id, due, text, created_at) VALUES (1, '2026-04-05', 'call', 'x')")
    for cust, days, qty in (("li@example.cn", ["2026-01-01", "2026-01-31", "2026-03-02"], 3),
                            ("ann@example.com", ["2026-03-20", "2026-03-25"], 1)):
        for d in days:
            with db.write_tx(conn):
                n = orders.create(conn, customer=cust, lines=[f"TEA:{qty}"], order_date=d).number
                orders.confirm(conn, n)
    conn.close()
    rows = run.csv("report", "next-customers", "--as-of", "2026-04-20")
    # 李雷 orders every 30 days, last on 03-02: 49 days ago, 19 days late; a 30.00 order
    # (one missed order); Ann's gap is 5 days and she is 26 days past it: 10.00 x 5 missed
    assert [(r["customer"], r["usual_interval_days"], r["days_since"], r["overdue_days"], r["expected_value"],
             r["open_tasks"], r["next_task"]) for r in rows] == [
        ("Ann", "5.0", "26", "21", "50.00", "0", ""),
        ("李雷", "30.0", "49", "19", "30.00", "1", "2026-04-05: call")]


# --------------------------------------------------------------------------- dashboard


def test_dashboard_machine_readable(run, shop):
    rows = run.csv("--db", shop, "dashboard", "--as-of", "2026-03-20")
    got = {(r["section"], r["metric"], r["detail"]): r["value"] for r in rows}
    assert got[("revenue", "revenue_month_to_date", "2026-03")] == "20.00"
    assert got[("revenue", "revenue_previous_month_same_days", "")] == "0.00"
    assert got[("orders", "open_orders", "")] == "1"
    assert got[("receivables", "overdue_amount", "2026-02-19")] == "9.60"
    assert got[("top_customers", "revenue_90_days", "王芳")] == "48.00"
    months = [r for r in rows if r["section"] == "months"]
    assert len(months) == 12 and months[-1]["detail"] == "2026-03" and months[-3]["value"] == "83.60"


def test_dashboard_on_a_terminal_and_by_default(run, shop):
    out = run.ok("--db", shop, "dashboard", "--as-of", "2026-03-20", "--format", "table").stdout
    assert "Revenue this month" in out and "Overdue receivables" in out and "王芳" in out
    assert any(ch in out for ch in "▁▂▃▄▅▆▇█")
    bare = run.ok("--db", shop)
    assert "section,metric,value" in bare.stdout  # piped: the dashboard as CSV


def test_dashboard_empty_database(run, db_path):
    out = run.ok("dashboard", "--format", "table").stdout
    assert "No sales yet" in out
    assert not db_path.exists()


def test_dashboard_against_a_plan(run, shop, tmp_path):
    """With a revenue plan running, the dashboard shows its attainment."""
    import shutil

    try:
        from salescrm import plans
    except ImportError:
        pytest.skip("plans are not in this build")
    copy = tmp_path / "planned.db"
    shutil.copy(shop, copy)
    conn = db.connect(copy)
    if not conn.execute("SELECT 1 FROM sqlite_schema WHERE name = 'plans'").fetchone():
        pytest.skip("no plans table in this schema")
    with db.write_tx(conn):
        plans.add(conn, name="Q1", period="2026-Q1", metric="revenue", target=20000)
    conn.close()
    rows = run.csv("--db", copy, "dashboard", "--as-of", "2026-03-20")
    got = {(r["metric"], r["detail"]): r["value"] for r in rows if r["section"] == "plan"}
    assert got[("target", "Q1")] == "200.00" and got[("achieved", "Q1")] == "103.60"
    assert got[("attainment_pct", "Q1")] == "51.8"


def test_help_names_the_revenue_definition(run):
    out = run.ok("report", "--help").stdout
    assert "Cancelled and returned sales never count" in out
    assert "sales" in out and "next-customers" in out


def test_outputs_parse(run, shop):
    for fmt in ("json", "jsonl", "tsv"):
        text = run.ok("--db", shop, "report", "customers", "top", "--format", fmt).stdout
        if fmt == "json":
            assert json.loads(text)[0]["customer"] == "王芳"
        elif fmt == "jsonl":
            assert json.loads(text.splitlines()[0])["revenue"] == 48.0
        else:
            assert list(csv.DictReader(io.StringIO(text), delimiter="\t"))[0]["customer"] == "王芳"


# --------------------------------------------------------------------------- a random shop


@pytest.fixture(scope="module")
def random_shop(tmp_path_factory) -> tuple[str, dict]:
    """Forty seeded random orders: line and order discounts, surcharges, two
    shipments, partial returns (some refunded), partial payments,
    cancellations and drafts."""
    import random

    rnd = random.Random(20260301)
    path = tmp_path_factory.mktemp("random") / "random.db"
    conn = db.connect(path)
    with db.write_tx(conn):
        for i, cat in enumerate(["tea", "tea", "teaware", "snacks", None]):
            products.add(conn, sku=f"P{i}", name=f"产品 {i}", category=cat, cost=rnd.randint(50, 900),
                         price=rnd.randint(100, 3000), tax_rate=rnd.choice(["0", "7", "13"]))
            stock.receive(conn, f"P{i}", 10_000)
        for i in range(6):
            customers.add(conn, f"客户 {i}", email=f"c{i}@example.com", region=rnd.choice(["North", "South"]))

    def tx(fn, *a, **k):
        with db.write_tx(conn):
            return fn(conn, *a, **k)

    for n in range(40):
        day = f"2026-0{rnd.randint(1, 6)}-{rnd.randint(1, 28):02d}"
        lines = []
        for _ in range(rnd.randint(1, 4)):
            spec = f"P{rnd.randint(0, 4)}:{rnd.randint(1, 9)}"
            if rnd.random() < 0.3:
                spec += f"-{rnd.choice(['5%', '12.5%', '1.00'])}"
            lines.append(spec)
        num = tx(orders.create, customer=f"c{rnd.randint(0, 5)}@example.com", lines=lines, order_date=day,
                 channel=rnd.choice(["online", "retail"]), discount=rnd.choice([None, None, "10%", "3.00"]),
                 shipping=rnd.choice([0, 500])).number
        if rnd.random() < 0.2:
            tx(orders.add_adjustment, num, kind="surcharge", description="rush", amount=rnd.randint(1, 999))
        fate = rnd.random()
        if fate < 0.1:
            continue  # a draft
        tx(orders.confirm, num, at=f"{day}T09:00:00", override="test")
        if fate < 0.2:
            tx(orders.cancel, num)
            continue
        if fate < 0.3:
            continue  # confirmed, nothing shipped
        first = conn.execute("SELECT sku, qty FROM order_lines WHERE order_id = (SELECT id FROM orders"
                             " WHERE number = ?) ORDER BY line_no LIMIT 1", (num,)).fetchone()
        if first["qty"] > 1:
            tx(orders.ship, num, lines=[(first["sku"], 1)], at=f"{day}T15:00:00")
        tx(orders.ship, num, at=f"{day[:8]}{min(28, int(day[8:]) + 2):02d}T10:00:00")
        tx(orders.deliver, num)
        o = conn.execute("SELECT total_cents FROM orders WHERE number = ?", (num,)).fetchone()
        if rnd.random() < 0.8:
            tx(orders.pay, num, amount=rnd.choice([o[0], o[0] // 2 or o[0]]), method="card",
               at=f"{day}T18:00:00")
        if rnd.random() < 0.4:
            ln = conn.execute("SELECT sku, qty FROM order_lines WHERE order_id = (SELECT id FROM orders"
                              " WHERE number = ?) ORDER BY random() LIMIT 1", (num,)).fetchone()
            tx(orders.return_items, num, lines=[(ln["sku"], rnd.randint(1, ln["qty"]))], refund=True,
               at=f"{day[:8]}{min(28, int(day[8:]) + 3):02d}T10:00:00")
    # The expected figures, computed here from the stored rows in Python.
    truth: dict = {"order": {}, "month": defaultdict_int(), "customer": defaultdict_int(), "shipped_total": 0,
                   "collected": 0}
    for o in conn.execute("SELECT * FROM orders"):
        if o["status"] in ("draft", "cancelled"):
            continue
        lines = conn.execute("SELECT * FROM order_lines WHERE order_id = ?", (o["id"],)).fetchall()
        ret = conn.execute("SELECT coalesce(sum(r.net_cents), 0), coalesce(sum(r.total_cents), 0) FROM return_lines r"
                           " JOIN order_lines l ON l.id = r.line_id WHERE l.order_id = ?", (o["id"],)).fetchone()
        kept_lines = sum(ln["net_cents"] for ln in lines) - ret[0]
        credited_adjustment = o["returned_cents"] - ret[1]
        revenue = kept_lines + o["adjustment_cents"] - credited_adjustment
        truth["order"][o["id"]] = revenue
        truth["month"][o["order_date"][:7]] += revenue
        truth["customer"][o["customer_id"]] += revenue
        if o["status"] in ("shipped", "delivered", "closed"):
            truth["shipped_total"] += revenue
        truth["collected"] += conn.execute("SELECT coalesce(sum(amount_cents), 0) FROM payments WHERE order_id = ?",
                                           (o["id"],)).fetchone()[0]
    assert db.check(conn) == []
    conn.close()
    return str(path), truth


def defaultdict_int():
    from collections import defaultdict

    return defaultdict(int)


def _cents_of(rows, key="revenue"):
    return {r[list(r)[0]]: int(Decimal(r[key]) * 100) for r in rows}


def test_random_shop_months_and_customers(run, random_shop):
    path, truth = random_shop
    months = _cents_of(run.csv("--db", path, "report", "sales", "--by", "month"))
    assert {k: v for k, v in months.items() if v} == {k: v for k, v in truth["month"].items() if v}
    cust = {int(r["customer_id"]): int(Decimal(r["revenue"]) * 100)
            for r in run.csv("--db", path, "report", "sales", "--by", "customer")}
    assert cust == dict(truth["customer"])


def test_random_shop_every_dimension_adds_up_to_the_same_total(run, random_shop):
    path, truth = random_shop
    expected = sum(truth["order"].values())
    for by in ("month", "week", "day", "category", "product", "channel", "region", "salesperson", "customer"):
        rows = run.csv("--db", path, "report", "sales", "--by", by, "--totals")
        total = rows.pop()
        parts = sum(int(Decimal(r["revenue"]) * 100) for r in rows)
        assert parts == int(Decimal(total["revenue"]) * 100) == expected, by
        assert sum(int(Decimal(r["cost"]) * 100) for r in rows) == int(Decimal(total["cost"]) * 100), by
    pivot = run.csv("--db", path, "report", "sales", "--by", "category", "--by", "month", "--totals")
    total = pivot.pop()
    assert int(Decimal(total["total"]) * 100) == expected
    assert sum(int(Decimal(r["total"]) * 100) for r in pivot) == expected


def test_random_shop_per_line_equals_per_order(random_shop):
    path, truth = random_shop
    conn = db.connect(path, write=False)
    per_line = dict(conn.execute(
        f"SELECT o.id, sum({common.line_revenue_sql()}) FROM orders o JOIN order_lines l ON l.order_id = o.id"
        " WHERE o.status NOT IN ('draft', 'cancelled') GROUP BY o.id"))
    assert per_line == truth["order"]
    per_order = dict(conn.execute(f"SELECT o.id, {common.order_revenue_sql()} FROM orders o"
                                  " WHERE o.status NOT IN ('draft', 'cancelled')"))
    assert per_order == truth["order"]


def test_random_shop_shipped_and_collected(run, random_shop):
    path, truth = random_shop
    (s,) = run.csv("--db", path, "report", "sales", "--by", "year", "--basis", "shipped")
    assert int(Decimal(s["revenue"]) * 100) == truth["shipped_total"]
    (c,) = run.csv("--db", path, "report", "sales", "--by", "year", "--basis", "collected")
    assert int(Decimal(c["revenue"]) * 100) == truth["collected"]


def test_compare_with_a_range_cut_inside_a_period(run, shop):
    """From mid-January: January counts only from the 15th (O2, 35.60), but
    February's previous period is the whole of January (83.60)."""
    rows = sales(run, shop, "--by", "month", "--compare", "previous", "--from", "2026-01-15", "--to", "2026-03-31")
    assert [(r["month"], r["revenue"], r["previous"]) for r in rows] == [
        ("2026-01", "35.60", "0.00"), ("2026-02", "0.00", "83.60"), ("2026-03", "20.00", "0.00")]
    rows = sales(run, shop, "--by", "quarter", "--compare", "last-year")
    assert [(r["quarter"], r["revenue"], r["previous"]) for r in rows] == [("2026-Q1", "103.60", "")]


def test_random_shop_open_orders_limit_sums_the_rest(run, random_shop):
    path, _ = random_shop
    rows = run.csv("--db", path, "report", "orders", "open", "--limit", "2", "--totals", "--sort", "-balance")
    total = rows.pop()
    conn = sqlite3.connect(path)
    n, balance, to_ship = conn.execute(
        "SELECT count(*), sum(total_cents - returned_cents - paid_cents),"
        " (SELECT sum(qty - shipped_qty) FROM order_lines WHERE order_id IN (SELECT id FROM orders WHERE status IN"
        " ('confirmed', 'partially_shipped', 'shipped', 'delivered'))) FROM orders"
        " WHERE status IN ('confirmed', 'partially_shipped', 'shipped', 'delivered')").fetchone()
    assert len(rows) == 3 and rows[2]["number"] == f"(other {n - 2})"
    assert int(Decimal(total["balance"]) * 100) == balance and int(total["units_to_ship"]) == to_ship
    assert Decimal(rows[0]["balance"]) >= Decimal(rows[1]["balance"])


def test_group_defaults_take_their_options(run, shop):
    rows = run.csv("--db", shop, "report", "customers", "--limit", "1")
    assert [r["customer"] for r in rows] == ["王芳", "(other 2)"]
    rows = run.csv("--db", shop, "report", "orders", "--from", "2026-03-01")
    assert {r["status"]: r["orders"] for r in rows}["closed"] == "1"


def test_report_plans(run, shop, tmp_path):
    import shutil

    from salescrm import plans

    copy = tmp_path / "planned.db"
    shutil.copy(shop, copy)
    conn = db.connect(copy)
    with db.write_tx(conn):
        plans.add(conn, name="Q1 revenue", period="2026-Q1", metric="revenue", target=20000)
        plans.add(conn, name="Q1 orders", period="2026-Q1", metric="orders", target=4)
    conn.close()
    rows = {r["plan"]: r for r in run.csv("--db", copy, "report", "plans", "--as-of", "2026-04-01")}
    # booked revenue in Q1 is 103.60 of 200.00; three orders count (O1, O2, O5) of four
    assert (rows["Q1 revenue"]["target"], rows["Q1 revenue"]["achieved"], rows["Q1 revenue"]["attainment_pct"]) == \
        ("200.00", "103.60", "51.8")
    assert (rows["Q1 orders"]["achieved"], rows["Q1 orders"]["attainment_pct"]) == ("3", "75.0")


@pytest.mark.parametrize("basis", ["booked", "shipped", "collected"])
def test_a_limited_report_is_the_full_report_cut_with_the_rest_summed(random_shop, basis):
    """Sorted by a measure and cut at --limit, only the rows shown are made:
    they are the full report's first rows, in its order (ties and empty
    values as it orders them), and the '(other N)' row adds up the rest."""
    from salescrm.reports.sales import sales as sales_report

    path, _ = random_shop
    conn = db.connect(path, write=False)
    spec = common.Spec(basis, common.Range(), common.resolve_filters(conn))
    for measure, sign in itertools.product(("orders", "revenue", "margin", "margin_pct", "aov", "units"), "+-"):
        sort = f"{sign}{measure}"
        full = sales_report(conn, spec, ["customer"], sort=sort).rows
        cut = sales_report(conn, spec, ["customer"], sort=sort, limit=3)
        assert cut.rows[:3] == full[:3], sort
        other = cut.rows[3]
        assert other["customer"] == f"(other {len(full) - 3})"
        for k in ("orders", "revenue", "units", "cost", "discounts"):
            parts = [r[k] for r in full[3:]]
            assert other[k] == (None if None in parts else sum(parts)), (sort, k)
