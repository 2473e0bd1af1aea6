"""The reports' summary tables (m0005, salescrm.salesfacts): after every write
transaction they equal a fresh line-by-line computation, a report reads them
only when they are current, and the figures are the same either way."""

from __future__ import annotations

import itertools
import random
import re
import sqlite3
from datetime import date, datetime, timedelta, timezone

import pytest

from salescrm import customers, db, orders, products, salesfacts, stock
from salescrm.errors import SalesError, UsageError
from salescrm.migrations import m0007_report_summaries, m0009_customer_figures
from salescrm.reports import common

SKUS = ["TEA", "MUG", "POT", "SVC", "BAG"]


def _shop(path):
    conn = db.connect(path)
    with db.write_tx(conn):
        products.add(conn, sku="TEA", name="龙井绿茶", category="tea", cost=300, price=1000, tax_rate="10")
        products.add(conn, sku="MUG", name="青花瓷马克杯", category="teaware", cost=400, price=2000, tax_rate="10")
        products.add(conn, sku="POT", name="Teapot", category="teaware", cost=900, price=3333, tax_rate="7")
        products.add(conn, sku="BAG", name="Tote", cost=100, price=499, tax_rate="0")  # no category
        products.add(conn, sku="SVC", name="Tasting", category="services", price=5000, tax_rate="0", kind="service")
        for sku in ("TEA", "MUG", "POT", "BAG"):
            stock.receive(conn, sku, 10_000)
        for name, email, region in (("王芳", "wang@example.cn", "华东"), ("Bob", "bob@example.com", "West"),
                                    ("Carol", "carol@example.com", "West"), ("Dora", "dora@example.com", None)):
            customers.add(conn, name, email=email, region=region)
    return conn


def _before_m0009(conn):
    """What a database before m0009 lacks: the customers' kept figures."""
    for kind, name in re.findall(r"CREATE (TRIGGER|TABLE) (\w+)", m0009_customer_figures.SQL):
        conn.execute(f"DROP {kind} {name}")


def _assert_current(conn):
    assert salesfacts.ready(conn)
    assert salesfacts.check(conn) == []


def _upgrade_from(conn, path, version: int, migration: str):
    """The database made as it was at schema ``version`` (what came after,
    up to m0009, taken away by the caller), opened again: it is upgraded,
    from ``migration`` on, and its summaries are current."""
    from salescrm import migrations

    _before_m0009(conn)
    conn.execute(f"PRAGMA user_version = {version}")
    conn.close()
    assert migrations.MIGRATIONS[version] == migration
    conn = db.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(migrations.MIGRATIONS)
    _assert_current(conn)
    return conn


def _tx(conn, fn, *a, **k):
    with db.write_tx(conn):
        return fn(conn, *a, **k)


def _random_history(conn, rng: random.Random, n: int = 60, *, check_every: bool = True) -> None:
    """Orders in every state, with line and order discounts, partial
    shipments, returns, cancellations, edits of drafts, customer merges and
    a product changing category; the summaries are checked after each step."""
    start = date(2025, 11, 1)
    made: list[str] = []
    emails = ["wang@example.cn", "bob@example.com", "carol@example.com", "dora@example.com"]
    for i in range(n):
        day = start + timedelta(days=rng.randrange(0, 120))
        lines = [f"{rng.choice(SKUS)}:{rng.randint(1, 7)}" + (f"-{rng.choice([5, 10, 15])}%" if rng.random() < 0.3
                                                                 else "")
                 for _ in range(rng.randint(1, 4))]
        discount = rng.choice([None, None, "10%", "3.50"])
        ref = _tx(conn, orders.create, customer=rng.choice(emails), lines=lines, discount=discount,
                  channel=rng.choice(["online", "retail"]), salesperson=rng.choice(["ann", "bea", None]),
                  order_date=day.isoformat(), currency="USD" if rng.random() < 0.1 else None).number
        made.append(ref)
        if rng.random() < 0.15:
            _tx(conn, orders.add_line, ref, f"{rng.choice(SKUS)}:2")
        if rng.random() < 0.1:
            _tx(conn, orders.edit, ref, order_date=(day + timedelta(days=3)).isoformat())
        if rng.random() < 0.1:
            continue  # stays a draft
        _tx(conn, orders.confirm, ref, at=f"{day.isoformat()}T09:00:00Z")
        roll = rng.random()
        if roll < 0.1:
            _tx(conn, orders.cancel, ref)
        elif roll < 0.9:  # late in the evening UTC: the next local day east of Greenwich
            first = orders.lines(conn, ref)[0]
            if first["qty"] > 1 and rng.random() < 0.4:  # a partial shipment first
                try:
                    _tx(conn, orders.ship, ref, lines=[(first["sku"], 1)], at=f"{day.isoformat()}T22:30:00Z")
                except SalesError:
                    pass  # a service line is not shipped
            _tx(conn, orders.ship, ref, at=f"{(day + timedelta(days=rng.randint(3, 40))).isoformat()}T22:30:00Z")
            due = orders.get(conn, ref)["total_cents"]
            roll = rng.random()
            if roll < 0.7:  # in full or half; late in the evening UTC (the next local day east of it)
                _tx(conn, orders.pay, ref, amount=due if roll < 0.4 else due // 2 or due, method="card",
                    at=f"{(day + timedelta(days=rng.randrange(0, 40))).isoformat()}T23:30:00Z")
            if rng.random() < 0.3:
                first = orders.lines(conn, ref)[0]
                try:
                    _tx(conn, orders.return_items, ref, lines=[(first["sku"], 1)], refund=rng.random() < 0.5,
                        method="card")
                except SalesError:
                    pass  # a service line cannot come back, nothing to refund: nothing changed
        if check_every:
            _assert_current(conn)
    with db.write_tx(conn):
        products.edit(conn, "BAG", category="bags")
    if check_every:
        _assert_current(conn)
    with db.write_tx(conn):
        customers.merge(conn, customers.resolve(conn, "bob@example.com"), customers.resolve(conn, "carol@example.com"))
    if check_every:
        _assert_current(conn)


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    path = tmp_path_factory.mktemp("facts") / "shop.db"
    conn = _shop(path)
    _random_history(conn, random.Random(5))
    return conn


def test_summaries_equal_a_fresh_computation_after_every_write(history):
    _assert_current(history)
    n = history.execute("SELECT count(*) FROM sales_orders").fetchone()[0]
    assert n == history.execute("SELECT count(*) FROM orders WHERE status NOT IN ('draft', 'cancelled')").fetchone()[0]
    booked = "status NOT IN ('draft', 'cancelled')"
    assert history.execute(f"SELECT count(*) FROM orders WHERE adjustment_cents <> 0 AND {booked}").fetchone()[0]
    assert history.execute(f"SELECT count(*) FROM orders WHERE returned_cents > 0 AND {booked}").fetchone()[0]
    assert history.execute("SELECT count(*) FROM orders WHERE status = 'cancelled'").fetchone()[0]
    assert history.execute("SELECT count(*) FROM sales_collected WHERE amount < 0").fetchone()[0], "refunds"
    assert history.execute("SELECT count(*) FROM sales_shipped").fetchone()[0]
    assert history.execute("SELECT count(DISTINCT currency) FROM sales_orders").fetchone()[0] == 2
    assert history.execute("SELECT count(*) FROM (SELECT order_id FROM shipments GROUP BY order_id"
                           " HAVING count(*) > 1)").fetchone()[0], "partial shipments"


def _agg(conn, spec, dims, *, summaries: bool, monkeypatch) -> dict:
    with monkeypatch.context() as m:
        if not summaries:
            m.setattr(salesfacts, "ready", lambda conn: False)
        got = common.aggregate(conn, spec, dims)
    return {k: vars(v) for k, v in got.items()}


def test_reports_give_the_same_figures_from_summaries_and_from_lines(history, monkeypatch):
    conn = history
    filters = [{}, {"category": "tea"}, {"category": "tea,teaware"}, {"channel": "online"}, {"region": "West"},
               {"salesperson": "ann"}, {"customer": "wang@example.cn"}, {"currency": "USD"}]
    dimsets = [[], ["month"], ["day"], ["week"], ["year"], ["customer"], ["product"], ["category"], ["channel"],
               ["salesperson"], ["region"], ["category", "month"], ["product", "month"], ["month", "channel"],
               ["customer", "quarter"], ["category", "product"]]
    ranges = [common.Range(), common.Range(date(2025, 12, 1), None), common.Range(date(2025, 11, 3),
                                                                                  date(2026, 1, 15))]
    used = set()
    compared = 0
    for basis, fk, dims, rng in itertools.product(common.BASES, filters, dimsets, ranges):
        spec = common.Spec(basis, rng, common.resolve_filters(conn, **fk))
        used.add(common.summary_source(spec, dims))
        try:
            fast = _agg(conn, spec, dims, summaries=True, monkeypatch=monkeypatch)
        except UsageError:  # the collected basis has no product or category
            assert basis == "collected"
            continue
        assert fast == _agg(conn, spec, dims, summaries=False, monkeypatch=monkeypatch), (basis, fk, dims, rng)
        compared += 1
    assert used == {None, "days", "orders", "customers", "products", "categories", "order_products"}
    assert compared > 800


def test_customer_reports_agree_with_and_without_summaries(history, monkeypatch):
    from salescrm.reports import advice
    from salescrm.reports import customers as rc

    spec = common.Spec("booked", common.Range(), common.resolve_filters(history))
    mid = common.Spec("booked", common.Range(date(2025, 11, 15), date(2026, 1, 20)), common.resolve_filters(history))
    west = common.Spec("booked", common.Range(), common.resolve_filters(history, region="West", channel="online"))
    usd = common.Spec("booked", common.Range(), common.resolve_filters(history, currency="USD"))
    as_of = date(2026, 3, 31)

    def all_reports():
        return [rc.top(history, spec, limit=2).rows, rc.inactive(history, spec, days=30, as_of=as_of).rows,
                rc.rfm(history, spec, as_of=as_of).rows, rc.abc(history, spec).rows,
                rc.new_vs_returning(history, spec, "month").rows,
                rc.new_vs_returning(history, mid, "week").rows, rc.new_vs_returning(history, mid, "month").rows,
                rc.new_vs_returning(history, west, "quarter").rows, rc.top(history, usd, limit=None).rows,
                rc.rfm(history, usd, as_of=as_of).rows,
                advice.next_customers(history, spec, as_of=as_of).rows]

    fast = all_reports()
    monkeypatch.setattr(salesfacts, "ready", lambda conn: False)
    assert fast == all_reports()


def test_a_change_made_outside_salescrm_is_never_read_stale(tmp_path):
    path = tmp_path / "shop.db"
    conn = _shop(path)
    _random_history(conn, random.Random(11), n=15, check_every=False)
    spec = common.Spec("booked", common.Range(), common.resolve_filters(conn))
    before = common.aggregate(conn, spec, ["month"])
    conn.close()
    # another tool halves every line's net (without salescrm's transaction)
    raw = sqlite3.connect(path)
    raw.execute("UPDATE order_lines SET net_cents = net_cents / 2, tax_cents = 0,"
                " total_cents = net_cents / 2")
    raw.commit()
    raw.close()
    conn = db.connect(path, write=False)
    assert not salesfacts.ready(conn)
    assert conn.execute("SELECT count(*) FROM sales_dirty_orders").fetchone()[0] > 0
    after = common.aggregate(conn, spec, ["month"])
    assert sum(m.revenue for m in after.values()) < sum(m.revenue for m in before.values())
    assert salesfacts.check(conn) == []  # not current: not checked, not read
    conn.close()
    # the next salescrm write brings them up to date
    conn = db.connect(path)
    with db.write_tx(conn):
        customers.add(conn, "Eve", email="eve@example.com")
    assert salesfacts.ready(conn)
    assert {k: vars(v) for k, v in common.aggregate(conn, spec, ["month"]).items()} == \
        {k: vars(v) for k, v in after.items()}


def test_shipping_and_paying_rewrite_no_booked_summary(tmp_path):
    conn = _shop(tmp_path / "shop.db")
    ref = _tx(conn, orders.create, customer="bob@example.com", lines=["TEA:2"]).number
    _tx(conn, orders.confirm, ref)
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    _tx(conn, orders.ship, ref)
    _tx(conn, orders.pay, ref, amount=orders.get(conn, ref)["total_cents"], method="card")
    conn.set_trace_callback(None)
    # (the shipment moves only the shipped totals, per hour, hour and category, product and customer)
    assert [s.split(" (")[0] for s in seen if "INSERT OR REPLACE INTO sales_" in s] == \
        ["INSERT OR REPLACE INTO sales_shipped_hours", "INSERT OR REPLACE INTO sales_shipped_category_hours",
         "INSERT OR REPLACE INTO sales_shipped_products", "INSERT OR REPLACE INTO sales_shipped_customers"]
    _assert_current(conn)


def test_a_database_from_before_the_summaries_gets_them_on_upgrade(tmp_path, monkeypatch):
    from salescrm import migrations

    path = tmp_path / "old.db"
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:4])
    conn = _shop(path)
    _random_history(conn, random.Random(3), n=12, check_every=False)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 4
    conn.close()
    monkeypatch.undo()
    conn = db.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(migrations.MIGRATIONS)
    _assert_current(conn)
    assert conn.execute("SELECT count(*) FROM sales_orders").fetchone()[0] > 0


@pytest.mark.parametrize("rebuild_at", [20_000, 1])
def test_a_database_with_the_first_summaries_gets_the_new_ones_on_upgrade(tmp_path, monkeypatch, rebuild_at):
    """From m0006 (summaries of m0005 current) to m0007: the new tables
    equal a fresh computation, whether the upgrade refreshes order by order
    or rebuilds everything."""
    path = tmp_path / "v6.db"
    conn = _shop(path)
    _random_history(conn, random.Random(5), n=15, check_every=False)
    # what a database at m0006 holds: no m0007 objects (every one its SQL creates), the rest unchanged
    made = re.findall(r"CREATE (TABLE|INDEX|TRIGGER) (\w+)", m0007_report_summaries.SQL)
    assert len(made) > 10
    for kind in ("TRIGGER", "INDEX", "TABLE"):
        for name in (n for k, n in made if k == kind):
            conn.execute(f"DROP {kind} IF EXISTS {name}")  # (a table's indexes went with it)
    for name in ("category", "counts_category", "prev_category_at", "region"):
        conn.execute(f"ALTER TABLE sales_shipped DROP COLUMN {name}")
    monkeypatch.setattr(salesfacts, "_REBUILD_AT", rebuild_at)
    conn = _upgrade_from(conn, path, 6, "m0007_report_summaries")
    for table in ("sales_lines", "sales_shipped_hours", "sales_shipped_products", "sales_shipped_customers",
                  "sales_shipped_category_hours"):
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0, table
    assert conn.execute("SELECT count(*) FROM sales_shipped_category_hours WHERE category = 'tea'").fetchone()[0]


def test_a_database_at_m0007_gets_each_lines_customer_channel_and_salesperson_on_upgrade(tmp_path):
    """From m0007 to m0008: ``sales_lines`` is made again with its order's
    customer, channel and salesperson, and the index by customer."""
    path = tmp_path / "v7.db"
    conn = _shop(path)
    _random_history(conn, random.Random(6), n=15, check_every=False)
    n = conn.execute("SELECT count(*) FROM sales_lines").fetchone()[0]
    assert n > 0
    # sales_lines as m0007 left it: its columns, its table and indexes as m0007 made them
    conn.execute("CREATE TABLE old_lines AS SELECT order_id, line_no, day, currency, product_id, value, qty"
                 " FROM sales_lines")
    conn.execute("DROP TABLE sales_lines")
    m7 = m0007_report_summaries.SQL
    for statement in db.split_sql(m7[m7.index("CREATE TABLE sales_lines"):m7.index("-- the shipped basis by product")]):
        conn.execute(statement)
    conn.execute("INSERT INTO sales_lines SELECT * FROM old_lines")
    conn.execute("DROP TABLE old_lines")
    conn = _upgrade_from(conn, path, 7, "m0008_lines_by_customer")
    assert conn.execute("SELECT count(*) FROM sales_lines").fetchone()[0] == n
    assert conn.execute("SELECT count(*) FROM sales_lines l JOIN orders o ON o.id = l.order_id"
                        " WHERE l.customer_id = o.customer_id AND l.channel = o.channel"
                        " AND l.salesperson IS o.salesperson").fetchone()[0] == n
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE tbl_name = 'sales_lines'")}
    assert {"sales_lines_order", "sales_lines_value", "sales_lines_qty", "sales_lines_product",
            "sales_lines_customer"} <= names


@pytest.mark.parametrize("refigure_at", [2_000, 1])
def test_a_database_at_m0008_gets_every_customers_figures_on_upgrade(tmp_path, monkeypatch, refigure_at):
    """From m0008 to m0009: every customer with a booked order is marked,
    and the refresh that ends the upgrade fills its kept figures (chunk by
    chunk, or all at once past ``_REFIGURE_AT`` customers)."""
    path = tmp_path / "v8.db"
    conn = _shop(path)
    _random_history(conn, random.Random(7), n=15, check_every=False)
    want = conn.execute("SELECT count(*) FROM sales_customers").fetchone()[0] * 4
    assert want > 4
    monkeypatch.setattr(salesfacts, "_REFIGURE_AT", refigure_at)
    conn = _upgrade_from(conn, path, 8, "m0009_customer_figures")
    assert salesfacts.figures_ready(conn)
    assert conn.execute("SELECT count(*) FROM sales_customer_figures").fetchone()[0] == want
    assert conn.execute("SELECT count(*) FROM sales_dirty_customers").fetchone()[0] == 0


def test_every_write_refigures_all_customers_at_once_past_the_threshold(tmp_path, monkeypatch):
    monkeypatch.setattr(salesfacts, "_REFIGURE_AT", 1)  # every refresh recomputes every customer's figures
    conn = _shop(tmp_path / "shop.db")
    _random_history(conn, random.Random(22), n=20)  # checked after every step


def test_rebuild_recomputes_everything(history):
    with db.write_tx(history):
        history.execute("DELETE FROM sales_products")
        history.execute("UPDATE sales_orders SET revenue = revenue + 1")
    assert salesfacts.check(history) != []
    with db.write_tx(history):
        salesfacts.rebuild(history)
    _assert_current(history)


def test_db_check_finds_summaries_out_of_step_and_rebuild_mends_them(tmp_path, run):
    path = tmp_path / "shop.db"
    conn = _shop(path)
    _random_history(conn, random.Random(9), n=10, check_every=False)
    # damage the summaries as another tool might, leaving no marks behind
    conn.execute("UPDATE sales_products SET revenue = revenue + 1")
    conn.execute("DELETE FROM sales_collected WHERE payment_id IN (SELECT max(payment_id) FROM sales_collected)")
    conn.execute("UPDATE sales_customer_figures SET median = median + 1 WHERE field = 'order_value'"
                 " AND customer_id = (SELECT min(customer_id) FROM sales_customer_figures)")
    conn.execute("DELETE FROM sales_dirty_orders")
    conn.close()
    # --quick leaves the recomputation out (minutes on millions of orders)
    run.ok("--db", path, "db", "check", "--quick")
    bad = run("--db", path, "db", "check", "--format", "csv")
    assert bad.exit_code == 1
    assert "sales_products row(s) differ" in bad.stdout and "db rebuild-summaries" in bad.stdout
    assert "sales_collected row(s) differ" in bad.stdout
    assert "1 sales_customer_figures row(s) differ" in bad.stdout
    rows = run.csv("--db", path, "db", "rebuild-summaries")
    assert {r["table"] for r in rows} == {"sales_orders", "sales_customers", "sales_order_products", "sales_lines",
                                          "sales_days", "sales_products", "sales_categories", "sales_shipped",
                                          "sales_shipped_hours", "sales_shipped_category_hours",
                                          "sales_shipped_products", "sales_shipped_customers", "sales_collected",
                                          "sales_customer_figures"}
    run.ok("--db", path, "db", "check")


def test_many_marked_orders_are_recomputed_set_based(tmp_path, monkeypatch):
    monkeypatch.setattr(salesfacts, "_REBUILD_AT", 1)  # every refresh takes the set-based path
    conn = _shop(tmp_path / "shop.db")
    _random_history(conn, random.Random(21), n=25)  # checked after every step


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "Asia/Kolkata", "America/St_Johns"])
def test_shipped_and_collected_days_follow_the_local_zone(history, monkeypatch, zone):
    """The summaries keep UTC instants; the local day is taken when reading,
    so a report run in another zone still agrees with the line queries."""
    import time

    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        for basis, dims in itertools.product(("shipped", "collected"), ([], ["day"], ["month"], ["customer", "week"])):
            spec = common.Spec(basis, common.Range(date(2025, 12, 1), date(2026, 1, 31)),
                               common.resolve_filters(history))
            assert _agg(history, spec, dims, summaries=True, monkeypatch=monkeypatch) == \
                _agg(history, spec, dims, summaries=False, monkeypatch=monkeypatch), (basis, dims)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


@pytest.mark.parametrize("zone", [None, "Asia/Shanghai", "America/St_Johns"])
def test_shipped_by_product_off_its_index_agrees_with_the_lines(history, monkeypatch, zone):
    """Shipped by product over a long range reads the summary's product
    index: the same figures as the line queries, with the filters it takes
    and in zones east and west of Greenwich (one half an hour off)."""
    import time

    monkeypatch.setattr(common, "_PRODUCT_INDEX_FROM_DAYS", 1)  # the history spans months, not years
    if zone:
        monkeypatch.setenv("TZ", zone)
        time.tzset()
    try:
        used = 0
        for fk, rng in itertools.product(
                [{}, {"category": "tea"}, {"category": "tea,teaware"}, {"currency": "USD"}, {"channel": "online"}],
                [common.Range(), common.Range(date(2025, 12, 1), None), common.Range(date(2025, 11, 3),
                                                                                      date(2026, 1, 15))]):
            spec = common.Spec("shipped", rng, common.resolve_filters(history, **fk))
            used += common._shipped_by_product(history, spec) is not None
            assert _agg(history, spec, ["product"], summaries=True, monkeypatch=monkeypatch) == \
                _agg(history, spec, ["product"], summaries=False, monkeypatch=monkeypatch), (fk, rng)
        assert used == 12  # every case but the channel filter
    finally:
        if zone:
            monkeypatch.delenv("TZ")
            time.tzset()


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "America/St_Johns", "Asia/Kathmandu"])
def test_shipped_by_period_from_hourly_totals_agrees_with_the_lines(tmp_path, monkeypatch, zone):
    """The shipped basis per period adds up whole UTC hours and reads the
    rows of any part hour at either end (zones half or three quarters of an
    hour off); an order shipped twice in a period counts once, in two
    periods once in each; by customer, channel or region likewise."""
    import time

    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        conn = _shop(tmp_path / "shop.db")
        times = ["2026-03-04T18:10:00Z", "2026-03-04T18:20:00Z", "2026-03-04T18:40:00Z", "2026-03-04T18:59:59Z",
                 "2026-03-04T03:20:00Z", "2026-03-04T03:45:00Z", "2026-03-31T18:29:59Z", "2026-03-31T18:30:00Z",
                 "2026-03-31T18:45:00Z", "2026-04-01T02:00:00Z", "2026-03-05T00:00:00Z"]
        for i, at in enumerate(times):
            ref = _tx(conn, orders.create, customer="bob@example.com", lines=["TEA:3", "MUG:1"],
                      order_date="2026-03-01").number
            _tx(conn, orders.confirm, ref)
            _tx(conn, orders.ship, ref, lines=[("TEA", 1)], at=at)  # a part now, the rest 1 to 40 hours later
            later = (datetime.strptime(at, "%Y-%m-%dT%H:%M:%SZ") + timedelta(hours=1 + 4 * i)).strftime(
                "%Y-%m-%dT%H:%M:%SZ")
            _tx(conn, orders.ship, ref, at=later)
        _assert_current(conn)
        compared = 0
        # (and by an order's dimension over the range: its first shipment in the range, no distinct count)
        for dims, rng in itertools.product(([], ["day"], ["week"], ["month"], ["customer"], ["channel"], ["region"]),
                                           (common.Range(), common.Range(date(2026, 3, 5), date(2026, 3, 31)),
                                            common.Range(date(2026, 3, 5), None))):
            spec = common.Spec("shipped", rng, common.resolve_filters(conn))
            fast = _agg(conn, spec, dims, summaries=True, monkeypatch=monkeypatch)
            assert fast == _agg(conn, spec, dims, summaries=False, monkeypatch=monkeypatch), (dims, rng)
            compared += len(fast)
        assert compared >= 15
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()



@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "America/St_Johns", "Asia/Kathmandu"])
def test_shipped_by_category_and_period_agrees_with_the_lines(tmp_path, monkeypatch, zone):
    """The shipped basis by category and period (whole UTC hours per
    category, part hours at a window's ends from the rows, or with an order
    filter the rows of each category): an order shipped in parts counts once
    per category in a period, in two periods once in each, and a line of
    another category shipped in between does not hide a repeat; a product
    moving to another category moves its orders' shipments with it."""
    import time

    monkeypatch.setenv("TZ", zone)
    time.tzset()
    used: list[str] = []
    real = common._shipped_by_category
    monkeypatch.setattr(common, "_shipped_by_category", lambda *a: used.append("x") or real(*a))
    try:
        conn = _shop(tmp_path / "shop.db")
        times = ["2026-03-04T18:10:00Z", "2026-03-04T18:20:00Z", "2026-03-04T18:40:00Z", "2026-03-04T18:59:59Z",
                 "2026-03-04T03:20:00Z", "2026-03-04T03:45:00Z", "2026-03-31T18:29:59Z", "2026-03-31T18:30:00Z",
                 "2026-03-31T18:45:00Z", "2026-04-01T02:00:00Z", "2026-03-05T00:00:00Z"]
        customers_ = ["bob@example.com", "wang@example.cn", "carol@example.com"]
        for i, at in enumerate(times):
            ref = _tx(conn, orders.create, customer=customers_[i % 3], lines=["TEA:3", "MUG:2", "POT:1", "BAG:1"],
                      order_date="2026-03-01", channel=("online", "retail")[i % 2]).number
            _tx(conn, orders.confirm, ref)
            t0 = datetime.strptime(at, "%Y-%m-%dT%H:%M:%SZ")

            def later(hours: int) -> str:
                return (t0 + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: B023

            # tea, then (every other order) teaware alone, then the rest: tea again with the others
            _tx(conn, orders.ship, ref, lines=[("TEA", 1)], at=at)
            if i % 2:
                _tx(conn, orders.ship, ref, lines=[("MUG", 1)], at=later(1 + 2 * i))
            _tx(conn, orders.ship, ref, at=later(2 + 4 * i))
        _assert_current(conn)
        again = conn.execute("SELECT count(*) FROM sales_shipped WHERE prev_category_at IS NOT NULL").fetchone()[0]
        assert again > conn.execute("SELECT count(*) FROM sales_shipped WHERE prev_at IS NOT NULL"
                                    " AND category = 'teaware'").fetchone()[0] > 0

        def compare() -> int:
            compared = 0
            for dims, rng, fk in itertools.product(
                    (["category"], ["category", "day"], ["category", "week"], ["month", "category"]),
                    (common.Range(), common.Range(date(2026, 3, 5), date(2026, 3, 31))),
                    ({}, {"channel": "online"}, {"category": "teaware"}, {"region": "West"},
                     {"category": "tea", "customer": "bob@example.com"})):
                spec = common.Spec("shipped", rng, common.resolve_filters(conn, **fk))
                fast = _agg(conn, spec, dims, summaries=True, monkeypatch=monkeypatch)
                assert fast == _agg(conn, spec, dims, summaries=False, monkeypatch=monkeypatch), (dims, rng, fk)
                compared += len(fast)
            return compared

        assert compare() >= 120
        # the teapots become a category of their own, then join the tea; a customer moves to the West
        for category in ("pots", "tea"):
            _tx(conn, products.edit, "POT", category=category)
            _assert_current(conn)
            assert compare() >= 120
        _tx(conn, customers.edit, customers.resolve(conn, "wang@example.cn"), {"region": "West"})
        _assert_current(conn)
        assert compare() >= 120
        assert len(used) == 4 * 4 * 2 * 4  # (not with a customer filter)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_plan_attainment_agrees_with_and_without_summaries(history, monkeypatch):
    from salescrm import plans

    def measure(**scope):
        return [plans.measure(history, {"metric": metric, "basis": "shipped", **scope}, date(2025, 11, 1),
                              date(2026, 2, 28)) for metric in ("revenue", "units")]

    scopes = [{}, {"scope_channel": "online"}, {"scope_category": "tea"}, {"scope_region": "West"}]
    fast = [measure(**s) for s in scopes]
    assert fast[0][0] > 0
    monkeypatch.setattr(salesfacts, "ready", lambda conn: False)
    assert fast == [measure(**s) for s in scopes]


def test_stats_agree_with_and_without_summaries(history, monkeypatch):
    from salescrm.reports import stats

    cases = [("order_value", None, common.Range()), ("margin", "month", common.Range()),
             ("order_value", "week", common.Range(date(2025, 11, 15), date(2026, 1, 20))),
             ("margin", "customer", common.Range()), ("line_value", "category", common.Range()),
             ("order_value", "region", common.Range(date(2025, 12, 1), None)),
             ("line_value", None, common.Range()), ("quantity", None, common.Range()),
             ("order_value", "year", common.Range()), ("margin", "quarter", common.Range(None, date(2026, 1, 10))),
             ("quantity", "product", common.Range(date(2025, 12, 1), None), {"category": "teaware"}),
             ("line_value", "month", common.Range(), {"channel": "online", "region": "West"}),
             ("line_value", "region", common.Range(date(2025, 11, 20), date(2026, 1, 31)), {"currency": "USD"}),
             ("quantity", "month", common.Range()), ("line_value", "week", common.Range(date(2025, 12, 1), None)),
             ("line_value", "quarter", common.Range(), {"category": "tea"}),
             ("order_value", "customer", common.Range(date(2025, 12, 1), None), {"region": "West"}),
             ("margin", None, common.Range()), ("order_value", None, common.Range(date(2025, 12, 1), None)),
             ("order_value", "month", common.Range(), {"category": "teaware"}),
             ("margin", "customer", common.Range(), {"category": "tea,services"}),
             ("margin", None, common.Range(None, date(2026, 1, 31)), {"category": "teaware", "channel": "online"})]

    def run_all():
        return [stats.stats(history, common.Spec("booked", rng, common.resolve_filters(history, **dict(*fk))),
                            field, by).rows for field, by, rng, *fk in cases]

    fast = run_all()
    assert all(fast)
    # periods read in pieces of a few days; periods too long to list are grouped by value in SQL
    monkeypatch.setattr(stats, "_PIECE", 3)
    assert run_all() == fast
    monkeypatch.setattr(stats, "_LISTED", 3)
    assert run_all() == fast
    monkeypatch.setattr(salesfacts, "ready", lambda conn: False)
    assert fast == run_all()


def test_totals_damaged_by_hand_are_mended_not_a_reason_to_refuse_a_write(tmp_path):
    conn = _shop(tmp_path / "shop.db")
    ref = _tx(conn, orders.create, customer="bob@example.com", lines=["TEA:2", "MUG:1"]).number
    _tx(conn, orders.confirm, ref)
    conn.execute("DELETE FROM sales_products")  # another tool empties a totals table, leaving no marks
    conn.execute("UPDATE sales_days SET orders = orders + 5")
    _tx(conn, orders.cancel, ref)  # the difference would take away more than is there
    _assert_current(conn)


@pytest.mark.parametrize(("listed", "piece"), [(1_000, 1_000), (1_000, 1), (1, 1)])
def test_stats_extremes_name_the_lowest_and_highest_order_among_ties(tmp_path, monkeypatch, listed, piece):
    """Equal values at both ends of a month: the minimum names the first
    order holding it, the maximum the last, whichever way the values are read."""
    from salescrm.reports import stats

    monkeypatch.setattr(stats, "_LISTED", listed)
    monkeypatch.setattr(stats, "_PIECE", piece)
    conn = _shop(tmp_path / "shop.db")
    refs = []
    for i, lines in enumerate((["POT:1"], ["TEA:1"], ["MUG:1"], ["TEA:1"], ["POT:1"], ["TEA:2"])):
        ref = _tx(conn, orders.create, customer="bob@example.com", lines=lines,
                  order_date=f"2026-03-{2 + i:02d}").number
        _tx(conn, orders.confirm, ref)
        refs.append(ref)
    _assert_current(conn)
    for field, by in itertools.product(("order_value", "margin", "line_value"), ("month", "customer")):
        (row,) = stats.stats(conn, common.Spec("booked", common.Range(), common.resolve_filters(conn)), field,
                             by).rows
        line = " line 1" if field == "line_value" else ""
        assert (row["min_order"], row["max_order"]) == (refs[1] + line, refs[4] + line), field
        assert row["count"] == 6


@pytest.mark.parametrize("zone, day", [("America/Havana", date(2026, 3, 8)), ("Africa/Cairo", date(2026, 4, 24)),
                                       ("America/Santiago", date(2026, 9, 6)), ("America/Havana", date(2026, 11, 1)),
                                       ("Europe/London", date(2026, 3, 29)), ("Asia/Kolkata", date(2026, 3, 8))])
def test_a_local_day_begins_at_its_first_second_even_when_the_clocks_skip_midnight(monkeypatch, zone, day):
    """utc_bound: the first second whose local date is the day (a midnight
    the clocks skip begins the day when they land, one they pass twice at
    the first), as SQLite's 'localtime' dates the shipments and payments."""
    import time

    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        start = datetime.strptime(common.utc_bound(day), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        assert start.astimezone().date() == day
        assert (start - timedelta(seconds=1)).astimezone().date() == day - timedelta(days=1)
        assert common.utc_bound(day - timedelta(days=1), days=1) == common.utc_bound(day)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_shipped_in_havana_around_the_midnight_the_clocks_skip_agrees_with_the_lines(tmp_path, monkeypatch):
    """Havana skips 2026-03-08 00:00 (05:00Z is 01:00): a shipment at 04:30Z
    is the 7th's, one at 05:30Z the 8th's, by every path (found in review:
    the bound had been an hour early, counting the 7th's last hour in the 8th)."""
    import time

    monkeypatch.setenv("TZ", "America/Havana")
    time.tzset()
    try:
        conn = _shop(tmp_path / "shop.db")
        for at in ("2026-03-08T04:30:00Z", "2026-03-08T05:30:00Z", "2026-03-07T05:00:00Z"):  # (the last: 7th, 00:00)
            ref = _tx(conn, orders.create, customer="bob@example.com", lines=["TEA:1"], order_date="2026-03-01").number
            _tx(conn, orders.confirm, ref)
            _tx(conn, orders.ship, ref, at=at)
        _assert_current(conn)
        for dims, rng in itertools.product(([], ["day"], ["channel"], ["customer"], ["product"]),
                                           (common.Range(date(2026, 3, 8), None), common.Range(None, date(2026, 3, 7)),
                                            common.Range(date(2026, 3, 7), date(2026, 3, 7)))):
            spec = common.Spec("shipped", rng, common.resolve_filters(conn))
            fast = _agg(conn, spec, dims, summaries=True, monkeypatch=monkeypatch)
            assert fast == _agg(conn, spec, dims, summaries=False, monkeypatch=monkeypatch), (dims, rng)
            assert sum(m["orders"] for m in fast.values()) == (1 if rng.start == date(2026, 3, 8) else 2), (dims, rng)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
