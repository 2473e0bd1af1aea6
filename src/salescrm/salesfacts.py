"""The reports' summary tables (booked basis), kept current in the write
transaction that changes the orders.

Triggers (migration m0005) mark every booked-sales change: the order in
``sales_dirty_orders``, the (day, product) pairs it touches in
``sales_dirty_products``.  ``refresh`` runs in ``db.write_tx`` just before
COMMIT: it recomputes exactly the marked rows with the reports' own revenue
SQL (``reports.common``), so a summary row is always the sum of the
line-by-line figures, to the cent, and clears the marks.  Rows that come out
the same are not rewritten, so a transaction that only touched one order
writes a handful of pages.

``ready`` tells a report whether it may read the summaries: only when the
tables exist and nothing is marked (a change made outside salescrm, in a
transaction that did not refresh, leaves marks behind, and the reports then
use the line-by-line queries until the next salescrm write refreshes).
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence

_CHUNK = 500
#: Marked orders from which ``refresh`` recomputes everything instead (when
#: they are also a quarter or more of all orders).
_REBUILD_AT = 20_000
_MEASURES = ("units", "revenue", "discounts", "cost")


_MARKED_SQL = ("SELECT EXISTS (SELECT 1 FROM sales_dirty_orders) OR EXISTS (SELECT 1 FROM sales_dirty_products)"
               " OR EXISTS (SELECT 1 FROM sales_dirty_categories)")


def _marked(conn: sqlite3.Connection) -> bool | None:
    """Whether marks wait to be refreshed; None on a schema without summaries."""
    try:
        return bool(conn.execute(_MARKED_SQL).fetchone()[0])
    except sqlite3.OperationalError:  # a schema before m0005 (or mid-migration)
        return None


def ready(conn: sqlite3.Connection) -> bool:
    """True when the summaries exist and are current."""
    return _marked(conn) is False


def refresh_if_marked(conn: sqlite3.Connection) -> None:
    """``refresh`` when anything is marked (one cheap query when not)."""
    if _marked(conn):
        refresh(conn)


def _chunks(items: Sequence, n: int = _CHUNK) -> Iterable[Sequence]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def _replace_rows(conn: sqlite3.Connection, order_ids: Sequence[int], table: str, key: tuple[str, ...],
                  cols: tuple[str, ...], rows_sql: str) -> None:
    """Make ``table``'s rows of these orders what ``rows_sql`` (with the
    order ids as its parameters) computes now, writing only the differences."""
    names = (*key, *cols)
    ph = _marks(len(order_ids))
    old = {tuple(r[:len(key)]): tuple(r) for r in conn.execute(
        f"SELECT {', '.join(names)} FROM {table} WHERE order_id IN ({ph})", order_ids)}
    new = {tuple(r[:len(key)]): tuple(r) for r in conn.execute(
        f"SELECT {', '.join(names)} FROM ({rows_sql})", order_ids)}
    gone = [k for k, row in old.items() if new.get(k) != row]
    if gone:
        conn.executemany(f"DELETE FROM {table} WHERE " + " AND ".join(f"{k} = ?" for k in key), gone)
    added = [row for k, row in new.items() if old.get(k) != row]
    if added:
        conn.executemany(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({_marks(len(names))})", added)


def refresh(conn: sqlite3.Connection) -> dict[str, int]:
    """Recompute the marked summary rows; call inside a write transaction.
    Returns counts of what was looked at (orders, days, product-days)."""
    from salescrm.reports.common import (BOOKED_SQL, collected_rows_sql, line_discount_sql, line_revenue_sql,
                                         shipped_rows_sql)

    assert conn.in_transaction, "salesfacts.refresh runs inside a write transaction"
    marked = conn.execute("SELECT count(*) FROM sales_dirty_orders").fetchone()[0]
    if marked >= _REBUILD_AT and marked * 4 >= conn.execute("SELECT count(*) FROM orders").fetchone()[0]:
        rebuild(conn)  # most of the data changed (an upgrade, a big import): recompute it all, set-based
        return {"orders": marked, "rebuilt": 1}
    order_ids = [r[0] for r in conn.execute("SELECT order_id FROM sales_dirty_orders")]
    pairs = conn.execute("SELECT day, product_id FROM sales_dirty_products").fetchall()
    kept = "(l.qty - l.returned_qty)"
    values = (f"sum({kept}), sum({line_revenue_sql()}), sum({line_discount_sql()}),"
              f" sum({kept} * l.unit_cost)")

    # --- one row per booked order
    days: set[str] = set()
    for chunk in _chunks(order_ids):
        ph = _marks(len(chunk))
        old = {r[0]: tuple(r[1:]) for r in conn.execute(
            f"SELECT order_id, day, currency, customer_id, channel, salesperson, units, revenue, discounts, cost"
            f" FROM sales_orders WHERE order_id IN ({ph})", chunk)}
        new = {r[0]: tuple(r[1:]) for r in conn.execute(
            f"SELECT o.id, o.order_date, o.currency, o.customer_id, o.channel, o.salesperson, {values}"
            f" FROM orders o JOIN order_lines l ON l.order_id = o.id"
            f" WHERE o.id IN ({ph}) AND o.status IN ({BOOKED_SQL}) GROUP BY o.id", chunk)}
        gone = [oid for oid in old if oid not in new]
        if gone:
            conn.execute(f"DELETE FROM sales_orders WHERE order_id IN ({_marks(len(gone))})", gone)
        changed = [(oid, *row) for oid, row in new.items() if old.get(oid) != row]
        if changed:
            conn.executemany("INSERT OR REPLACE INTO sales_orders (order_id, day, currency, customer_id, channel,"
                             " salesperson, units, revenue, discounts, cost) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             changed)
        for oid in gone:
            days.add(old[oid][0])
        for row in changed:
            days.add(row[1])
            if row[0] in old:
                days.add(old[row[0]][0])

        _replace_rows(conn, chunk, "sales_shipped", ("shipped_at", "shipment_id", "line_id"),
                      ("order_id", "currency", "customer_id", "channel", "salesperson", "product_id", "units",
                       "revenue", "cost"),
                      shipped_rows_sql([f"o.id IN ({ph})"]))
        _replace_rows(conn, chunk, "sales_collected", ("paid_at", "payment_id"),
                      ("order_id", "currency", "customer_id", "channel", "salesperson", "amount"),
                      collected_rows_sql([f"o.id IN ({ph})"]))

    # --- per day, currency, channel and salesperson: from sales_orders
    for day in sorted(days):
        old_d = {tuple(r[:3]): tuple(r[3:]) for r in conn.execute(
            "SELECT currency, channel, salesperson, orders, units, revenue, discounts, cost"
            " FROM sales_days WHERE day = ?", (day,))}
        new_d = {tuple(r[:3]): tuple(r[3:]) for r in conn.execute(
            "SELECT currency, channel, coalesce(salesperson, ''), count(*), sum(units), sum(revenue),"
            " sum(discounts), sum(cost) FROM sales_orders INDEXED BY sales_orders_day WHERE day = ?"
            " GROUP BY currency, channel, coalesce(salesperson, '')", (day,))}
        for key in old_d.keys() - new_d.keys():
            conn.execute("DELETE FROM sales_days WHERE day = ? AND currency = ? AND channel = ? AND salesperson = ?",
                         (day, *key))
        changed_d = [(day, *k, *v) for k, v in new_d.items() if old_d.get(k) != v]
        if changed_d:
            conn.executemany("INSERT OR REPLACE INTO sales_days (day, currency, channel, salesperson, orders, units,"
                             " revenue, discounts, cost) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", changed_d)

    # --- per product, day and currency
    by_day: dict[str, list[int]] = defaultdict(list)
    for day, pid in pairs:
        by_day[day].append(pid)
    for day, pids in sorted(by_day.items()):
        for chunk in _chunks(sorted(pids)):
            ph = _marks(len(chunk))
            old_p = {tuple(r[:2]): tuple(r[2:]) for r in conn.execute(
                f"SELECT product_id, currency, orders, units, revenue, discounts, cost FROM sales_products"
                f" WHERE product_id IN ({ph}) AND day = ?", (*chunk, day))}
            new_p = {tuple(r[:2]): tuple(r[2:]) for r in conn.execute(
                f"SELECT l.product_id, o.currency, count(DISTINCT o.id), {values}"
                f" FROM orders o JOIN order_lines l ON l.order_id = o.id"
                # (+: walk the day's orders, not every line ever of these products)
                f" WHERE o.order_date = ? AND o.status IN ({BOOKED_SQL}) AND +l.product_id IN ({ph})"
                f" GROUP BY l.product_id, o.currency", (day, *chunk))}
            for key in old_p.keys() - new_p.keys():
                conn.execute("DELETE FROM sales_products WHERE product_id = ? AND day = ? AND currency = ?",
                             (key[0], day, key[1]))
            changed_p = [(k[0], day, k[1], *v) for k, v in new_p.items() if old_p.get(k) != v]
            if changed_p:
                conn.executemany("INSERT OR REPLACE INTO sales_products (product_id, day, currency, orders, units,"
                                 " revenue, discounts, cost) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", changed_p)

    # --- per category, day and currency: the categories of the marked
    # products (as they are now) and those a product left
    cat_days: dict[str, set[str]] = defaultdict(set)
    for day, cat in conn.execute("SELECT day, category FROM sales_dirty_categories"):
        cat_days[day].add(cat)
    for day, pids in by_day.items():
        for chunk in _chunks(sorted(pids)):
            cat_days[day].update(r[0] for r in conn.execute(
                f"SELECT DISTINCT coalesce(category, '') FROM products WHERE id IN ({_marks(len(chunk))})", chunk))
    for day, cats in sorted(cat_days.items()):
        for chunk in _chunks(sorted(cats)):
            ph = _marks(len(chunk))
            old_c = {tuple(r[:2]): tuple(r[2:]) for r in conn.execute(
                f"SELECT category, currency, orders, units, revenue, discounts, cost FROM sales_categories"
                f" WHERE category IN ({ph}) AND day = ?", (*chunk, day))}
            new_c = {tuple(r[:2]): tuple(r[2:]) for r in conn.execute(
                f"SELECT coalesce(p.category, ''), o.currency, count(DISTINCT o.id), {values}"
                f" FROM orders o JOIN order_lines l ON l.order_id = o.id JOIN products p ON p.id = l.product_id"
                f" WHERE o.order_date = ? AND o.status IN ({BOOKED_SQL}) AND coalesce(p.category, '') IN ({ph})"
                f" GROUP BY 1, 2", (day, *chunk))}
            for key in old_c.keys() - new_c.keys():
                conn.execute("DELETE FROM sales_categories WHERE category = ? AND day = ? AND currency = ?",
                             (key[0], day, key[1]))
            changed_c = [(k[0], day, k[1], *v) for k, v in new_c.items() if old_c.get(k) != v]
            if changed_c:
                conn.executemany("INSERT OR REPLACE INTO sales_categories (category, day, currency, orders, units,"
                                 " revenue, discounts, cost) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", changed_c)

    conn.execute("DELETE FROM sales_dirty_orders")
    conn.execute("DELETE FROM sales_dirty_products")
    conn.execute("DELETE FROM sales_dirty_categories")
    return {"orders": len(order_ids), "days": len(days), "product_days": len(pairs),
            "category_days": sum(len(c) for c in cat_days.values())}


def rebuild(conn: sqlite3.Connection) -> dict[str, int]:
    """Recompute every summary row from the orders, set-based (each table
    filled in its key order), and clear the marks.  Used when most orders
    are marked (the upgrade to m0005, a large import) and by
    ``db rebuild-summaries``.  Inside a write transaction."""
    from salescrm.reports.common import (BOOKED_SQL, collected_rows_sql, line_discount_sql, line_revenue_sql,
                                         shipped_rows_sql)

    assert conn.in_transaction, "salesfacts.rebuild runs inside a write transaction"
    kept = "(l.qty - l.returned_qty)"
    values = (f"sum({kept}), sum({line_revenue_sql()}), sum({line_discount_sql()}),"
              f" sum({kept} * l.unit_cost)")
    booked = f"o.status IN ({BOOKED_SQL})"
    cache = conn.execute("PRAGMA cache_size").fetchone()[0]
    conn.execute("PRAGMA cache_size = -262144")  # 256 MiB while the tables are filled
    try:
        for table in ("sales_orders", "sales_days", "sales_products", "sales_categories", "sales_shipped",
                      "sales_collected", "sales_dirty_orders", "sales_dirty_products", "sales_dirty_categories"):
            conn.execute(f"DELETE FROM {table}")  # names from this fixed list
        conn.execute(
            "INSERT INTO sales_shipped (order_id, shipment_id, line_id, shipped_at, currency, customer_id, channel,"
            f" salesperson, product_id, units, revenue, cost) SELECT * FROM ({shipped_rows_sql()})"
            " ORDER BY shipped_at, shipment_id, line_id")
        conn.execute(
            "INSERT INTO sales_collected (payment_id, order_id, paid_at, currency, customer_id, channel, salesperson,"
            f" amount) SELECT * FROM ({collected_rows_sql()}) ORDER BY paid_at, payment_id")
        conn.execute(
            f"INSERT INTO sales_orders (order_id, day, currency, customer_id, channel, salesperson, units, revenue,"
            f" discounts, cost) SELECT o.id, o.order_date, o.currency, o.customer_id, o.channel, o.salesperson,"
            f" {values} FROM orders o JOIN order_lines l ON l.order_id = o.id WHERE {booked} GROUP BY o.id")
        conn.execute(
            "INSERT INTO sales_days (day, currency, channel, salesperson, orders, units, revenue, discounts, cost)"
            " SELECT day, currency, channel, coalesce(salesperson, ''), count(*), sum(units), sum(revenue),"
            " sum(discounts), sum(cost) FROM sales_orders GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4")
        conn.execute(
            f"INSERT INTO sales_products (product_id, day, currency, orders, units, revenue, discounts, cost)"
            f" SELECT l.product_id, o.order_date, o.currency, count(DISTINCT o.id), {values}"
            f" FROM orders o JOIN order_lines l ON l.order_id = o.id WHERE {booked}"
            f" GROUP BY l.product_id, o.order_date, o.currency ORDER BY 1, 2, 3")
        conn.execute(
            f"INSERT INTO sales_categories (category, day, currency, orders, units, revenue, discounts, cost)"
            f" SELECT coalesce(p.category, ''), o.order_date, o.currency, count(DISTINCT o.id), {values}"
            f" FROM orders o JOIN order_lines l ON l.order_id = o.id JOIN products p ON p.id = l.product_id"
            f" WHERE {booked} GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")
    finally:
        conn.execute(f"PRAGMA cache_size = {int(cache)}")
    return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("sales_orders", "sales_days", "sales_products", "sales_categories", "sales_shipped",
                      "sales_collected")}


def check(conn: sqlite3.Connection) -> list[str]:
    """``db check``: the summaries equal a fresh computation (skipped while
    marks are pending: then the reports do not read them)."""
    if not ready(conn):
        return []
    from salescrm.reports.common import (BOOKED_SQL, collected_rows_sql, line_discount_sql, line_revenue_sql,
                                         shipped_rows_sql)

    kept = "(l.qty - l.returned_qty)"
    values = (f"sum({kept}), sum({line_revenue_sql()}), sum({line_discount_sql()}),"
              f" sum({kept} * l.unit_cost)")
    problems: list[str] = []
    bad = conn.execute(
        f"SELECT count(*) FROM (SELECT o.id, o.order_date AS day, o.currency, o.customer_id, o.channel,"
        f" o.salesperson, {values} FROM orders o JOIN order_lines l ON l.order_id = o.id"
        f" WHERE o.status IN ({BOOKED_SQL}) GROUP BY o.id"
        f" EXCEPT SELECT order_id, day, currency, customer_id, channel, salesperson, units, revenue, discounts, cost"
        f" FROM sales_orders)").fetchone()[0]
    extra = conn.execute(
        f"SELECT count(*) FROM sales_orders s WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = s.order_id"
        f" AND o.status IN ({BOOKED_SQL}))").fetchone()[0]
    if bad or extra:
        problems.append(f"sales summary: {bad + extra} order row(s) differ from the orders"
                        " (run 'salescrm db rebuild-summaries')")
    bad_d = conn.execute(
        "SELECT count(*) FROM (SELECT day, currency, channel, coalesce(salesperson, ''), count(*), sum(units),"
        " sum(revenue), sum(discounts), sum(cost) FROM sales_orders GROUP BY 1, 2, 3, 4"
        " EXCEPT SELECT day, currency, channel, salesperson, orders, units, revenue, discounts, cost"
        " FROM sales_days)").fetchone()[0]
    n_d = conn.execute("SELECT count(*) FROM sales_days").fetchone()[0]
    n_d2 = conn.execute("SELECT count(*) FROM (SELECT 1 FROM sales_orders GROUP BY day, currency, channel,"
                        " coalesce(salesperson, ''))").fetchone()[0]
    if bad_d or n_d != n_d2:
        problems.append("sales summary: daily rows differ from the order rows (run 'salescrm db rebuild-summaries')")
    bad_p = conn.execute(
        f"SELECT count(*) FROM (SELECT l.product_id, o.order_date, o.currency, count(DISTINCT o.id), {values}"
        f" FROM orders o JOIN order_lines l ON l.order_id = o.id WHERE o.status IN ({BOOKED_SQL})"
        f" GROUP BY l.product_id, o.order_date, o.currency"
        f" EXCEPT SELECT product_id, day, currency, orders, units, revenue, discounts, cost FROM sales_products)"
    ).fetchone()[0]
    n_p = conn.execute("SELECT count(*) FROM sales_products").fetchone()[0]
    n_p2 = conn.execute(f"SELECT count(*) FROM (SELECT 1 FROM orders o JOIN order_lines l ON l.order_id = o.id"
                        f" WHERE o.status IN ({BOOKED_SQL}) GROUP BY l.product_id, o.order_date, o.currency)"
                        ).fetchone()[0]
    if bad_p or n_p != n_p2:
        problems.append("sales summary: product rows differ from the order lines"
                        " (run 'salescrm db rebuild-summaries')")
    bad_c = conn.execute(
        f"SELECT count(*) FROM (SELECT coalesce(p.category, ''), o.order_date, o.currency, count(DISTINCT o.id),"
        f" {values} FROM orders o JOIN order_lines l ON l.order_id = o.id JOIN products p ON p.id = l.product_id"
        f" WHERE o.status IN ({BOOKED_SQL}) GROUP BY 1, 2, 3"
        f" EXCEPT SELECT category, day, currency, orders, units, revenue, discounts, cost FROM sales_categories)"
    ).fetchone()[0]
    n_c = conn.execute("SELECT count(*) FROM sales_categories").fetchone()[0]
    n_c2 = conn.execute(f"SELECT count(*) FROM (SELECT 1 FROM orders o JOIN order_lines l ON l.order_id = o.id"
                        f" JOIN products p ON p.id = l.product_id WHERE o.status IN ({BOOKED_SQL})"
                        f" GROUP BY coalesce(p.category, ''), o.order_date, o.currency)").fetchone()[0]
    if bad_c or n_c != n_c2:
        problems.append("sales summary: category rows differ from the order lines"
                        " (run 'salescrm db rebuild-summaries')")
    for table, names, rows_sql in (
            ("sales_shipped", "order_id, shipment_id, line_id, shipped_at, currency, customer_id, channel,"
             " salesperson, product_id, units, revenue, cost", shipped_rows_sql()),
            ("sales_collected", "payment_id, order_id, paid_at, currency, customer_id, channel, salesperson, amount",
             collected_rows_sql())):
        differ = conn.execute(f"SELECT count(*) FROM (SELECT * FROM ({rows_sql}) EXCEPT SELECT {names} FROM {table})"
                              ).fetchone()[0]
        extra = conn.execute(f"SELECT count(*) FROM (SELECT {names} FROM {table} EXCEPT SELECT * FROM ({rows_sql}))"
                             ).fetchone()[0]
        if differ or extra:
            problems.append(f"sales summary: {differ + extra} {table} row(s) differ"
                            " (run 'salescrm db rebuild-summaries')")
    return problems
