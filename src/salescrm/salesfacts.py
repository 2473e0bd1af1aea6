"""The reports' summary tables, kept current in the write transaction that
changes the orders.

Triggers (migration m0005) mark every order a write touches in
``sales_dirty_orders``.  ``refresh`` runs in ``db.write_tx`` just before
COMMIT: it recomputes the marked orders' rows with the reports' own SQL
(``reports.common``): one row per booked order (``sales_orders``) and the
customers' all-time totals (``sales_customers``), one per order and product
(``sales_order_products``), per line (``sales_lines``, m0007; with its
order's customer, channel and salesperson since m0008), per shipment line
(``sales_shipped``) and per payment (``sales_collected``); and it moves the
per-product, per-category and per-day totals (``sales_products``,
``sales_categories``, ``sales_days``), and the shipped totals per hour,
product and customer (``sales_shipped_hours``, ``_products``, ``_customers``)
and per hour and category (``sales_shipped_category_hours``) by the
difference between each order's old and new rows.  A shipment line carries
its product's category, and the first line of each category in a shipment
the time of the order's previous shipment of that category
(``prev_category_at``, as ``prev_at`` for the order), so that the shipped
basis by category and period counts an order once per category; it also
carries the customer's region (a trigger marks a customer's orders when
their region changes).  The figures of ``report stats`` per customer over
all history (``sales_customer_figures``, m0009) are recomputed, in Python,
for every customer whose order or line rows changed and every customer
marked in ``sales_dirty_customers`` (the upgrade marks them all, a trigger
those whose order is renumbered).  So a summary row is always the sum of
the line-by-line figures, to the cent, whatever else happened on that day,
and a transaction that changed one order writes a handful of pages.  Rows
that come out the same are not rewritten.

``ready`` tells a report whether it may read the summaries: only when the
tables exist and nothing is marked (a change made outside salescrm, in a
transaction that did not refresh, leaves marks behind, and the reports then
use the line-by-line queries until the next salescrm write refreshes).
``figures_ready`` likewise for the kept figures: nor any customer marked.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any

_CHUNK = 500
#: Marked orders from which ``refresh`` recomputes everything instead (when
#: they are also a quarter or more of all orders).
_REBUILD_AT = 20_000
#: Customers to recompute from which ``refresh`` recomputes every customer's
#: kept figures instead, in one pass per field (when they are also a quarter
#: or more of all customers with orders).
_REFIGURE_AT = 2_000
#: The booked totals' value columns.
_VALUES = ("orders", "units", "revenue", "discounts", "cost")
#: The totals tables: name -> (key columns, value columns).  The first value
#: counts the rows added up (the row goes when it reaches zero), the third is
#: revenue (signed); the others cannot go below zero.
_TOTALS = {
    "sales_days": (("day", "currency", "channel", "salesperson"), _VALUES),
    "sales_products": (("product_id", "day", "currency"), _VALUES),
    "sales_categories": (("category", "day", "currency"), _VALUES),
    "sales_shipped_hours": (("hour", "currency"), ("lines", "firsts", "revenue", "units", "cost")),
    "sales_shipped_category_hours": (("hour", "currency", "category"), ("lines", "firsts", "revenue", "units", "cost")),
    "sales_shipped_products": (("product_id", "currency"), ("orders", "units", "revenue", "lines", "cost")),
    "sales_shipped_customers": (("customer_id", "currency"), ("orders", "units", "revenue", "lines", "cost")),
}


def _customer_rows_sql(where: str = "1") -> str:
    return ("SELECT customer_id, currency, count(*), sum(units), sum(revenue), sum(discounts), sum(cost),"
            f" min(day), max(day) FROM sales_orders INDEXED BY sales_orders_customer WHERE {where}"
            " GROUP BY customer_id, currency")


def _marked(conn: sqlite3.Connection) -> bool | None:
    """Whether marks wait to be refreshed; None on a schema without summaries."""
    try:
        return bool(conn.execute("SELECT EXISTS (SELECT 1 FROM sales_dirty_orders)").fetchone()[0])
    except sqlite3.OperationalError:  # a schema before m0005 (or mid-migration)
        return None


def ready(conn: sqlite3.Connection) -> bool:
    """True when the summaries exist and are current."""
    return _marked(conn) is False


def _customers_marked(conn: sqlite3.Connection) -> bool | None:
    """Whether customers' kept figures wait to be recomputed; None on a
    schema without them (before m0009)."""
    try:
        return bool(conn.execute("SELECT EXISTS (SELECT 1 FROM sales_dirty_customers)").fetchone()[0])
    except sqlite3.OperationalError:
        return None


def figures_ready(conn: sqlite3.Connection) -> bool:
    """True when the customers' kept figures (m0009) exist and are current."""
    return ready(conn) and _customers_marked(conn) is False


def refresh_if_marked(conn: sqlite3.Connection) -> None:
    """``refresh`` when anything is marked (two cheap queries when not)."""
    if _marked(conn) or _customers_marked(conn):
        refresh(conn)


def _chunks(items: Sequence, n: int = _CHUNK) -> Iterable[Sequence]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def _sql() -> dict[str, Any]:
    """The reports' SQL pieces (imported late: writes that change no order
    never load the reports package)."""
    from salescrm.reports.common import (BOOKED_SQL, collected_rows_sql, line_discount_sql, line_revenue_sql,
                                         shipped_rows_sql)

    kept = "(l.qty - l.returned_qty)"
    return {
        "booked": f"o.status IN ({BOOKED_SQL})",
        "line_value": line_revenue_sql(),
        "values": (f"sum({kept}), sum({line_revenue_sql()}), sum({line_discount_sql()}),"
                   f" sum({kept} * l.unit_cost)"),
        "shipped": shipped_rows_sql,
        "collected": collected_rows_sql,
    }


def _shipped_rows_sql(q: dict[str, Any], where: Sequence[str] = ()) -> str:
    """The shipment lines (``reports.common.shipped_rows_sql``) with their
    product's category ('' for none), whether the line is its shipment's
    first of that category, and on that line the time of the order's
    previous shipment of the category; and the customer's region."""
    return ("SELECT g.*, CASE WHEN g.counts_category = 1 THEN lag(g.shipped_at) OVER (PARTITION BY g.order_id,"
            " g.category, g.counts_category ORDER BY g.shipped_at, g.shipment_id) END AS prev_category_at,"
            " (SELECT c.region FROM customers c WHERE c.id = g.customer_id) AS region"
            " FROM (SELECT r.*, coalesce(p.category, '') AS category, row_number() OVER (PARTITION BY"
            " r.shipment_id, coalesce(p.category, '') ORDER BY r.line_id) = 1 AS counts_category"
            f" FROM ({q['shipped'](where)}) r LEFT JOIN products p ON p.id = r.product_id) g")


def _order_rows_sql(q: dict[str, Any], where: str) -> str:
    return (f"SELECT o.id, o.order_date, o.currency, o.customer_id, o.channel, o.salesperson, {q['values']}"
            f" FROM orders o JOIN order_lines l ON l.order_id = o.id WHERE {where} AND {q['booked']} GROUP BY o.id")


def _order_product_rows_sql(q: dict[str, Any], where: str) -> str:
    return (f"SELECT o.id, l.product_id, o.order_date, o.currency, coalesce(p.category, ''), {q['values']}"
            f" FROM orders o JOIN order_lines l ON l.order_id = o.id JOIN products p ON p.id = l.product_id"
            f" WHERE {where} AND {q['booked']} GROUP BY o.id, l.product_id")


def _line_rows_sql(q: dict[str, Any], where: str) -> str:
    return (f"SELECT o.id, l.line_no, o.order_date, o.currency, l.product_id, {q['line_value']},"
            " l.qty - l.returned_qty, o.customer_id, o.channel, o.salesperson"
            f" FROM orders o JOIN order_lines l ON l.order_id = o.id WHERE {where} AND {q['booked']}"
            " AND l.qty > l.returned_qty ORDER BY o.currency, o.order_date, o.id, l.line_no")


def _replace_rows(conn: sqlite3.Connection, order_ids: Sequence[int], table: str, key: tuple[str, ...],
                  cols: tuple[str, ...], rows_sql: str) -> tuple[dict, dict]:
    """Make ``table``'s rows of these orders what ``rows_sql`` (with the
    order ids as its parameters, yielding ``key + cols`` in that order)
    computes now, writing only the differences.  Returns (old, new) rows by
    key."""
    names = (*key, *cols)
    ph = _marks(len(order_ids))
    old = {tuple(r[:len(key)]): tuple(r) for r in conn.execute(
        f"SELECT {', '.join(names)} FROM {table} WHERE order_id IN ({ph})", order_ids)}
    new = {tuple(r[:len(key)]): tuple(r) for r in conn.execute(rows_sql, order_ids)}
    gone = [k for k, row in old.items() if new.get(k) != row]
    if gone:
        conn.executemany(f"DELETE FROM {table} WHERE " + " AND ".join(f"{k} = ?" for k in key), gone)
    added = [row for k, row in new.items() if old.get(k) != row]
    if added:
        conn.executemany(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({_marks(len(names))})", added)
    return old, new


def _add(deltas: dict[tuple, list[int]], key: tuple, sign: int, values: Sequence[int]) -> None:
    d = deltas.get(key)
    if d is None:
        d = deltas[key] = [0, 0, 0, 0, 0]
    d[0] += sign
    for i, v in enumerate(values, 1):
        d[i] += sign * v


def _add_per_order(deltas: dict[tuple, list[int]], rows: Iterable[tuple], sign: int,
                   key: Callable[[tuple], tuple], values: Callable[[tuple], Sequence[int]]) -> None:
    """``_add`` once per order and total: ``key`` gives a row's (order,
    total's key...); rows of one order under one key are summed first, so
    the order counts once in that total however many of its rows fall there."""
    per: dict[tuple, list[int]] = {}
    for r in rows:
        k, vals = key(r), values(r)
        t = per.get(k)
        if t is None:
            per[k] = list(vals)
        else:
            for i, v in enumerate(vals):
                t[i] += v
    for k, t in per.items():
        _add(deltas, k[1:], sign, t)


def _shipped_values(r: tuple) -> tuple[int, int, int, int]:
    """A ``sales_shipped`` row's part of a shipped total: units, revenue, one
    line, cost."""
    return r[9], r[10], 1, r[11]


class _OutOfStep(Exception):
    """A total would go below what its orders hold: the summaries were
    changed behind our back (by hand, another tool)."""


def _apply(conn: sqlite3.Connection, table: str, deltas: dict[tuple, list[int]]) -> None:
    """Move ``table``'s rows by the deltas (orders, units, revenue,
    discounts, cost); a row whose order count reaches zero goes."""
    keys, values = _TOTALS[table]
    where = " AND ".join(f"{k} = ?" for k in keys)
    for key, d in deltas.items():
        if not any(d):
            continue
        row = conn.execute(f"SELECT {', '.join(values)} FROM {table} WHERE {where}", key).fetchone()
        now = [a + b for a, b in zip(row, d)] if row else d
        if now[0] < 0 or (now[0] == 0 and any(now)) or min(v for i, v in enumerate(now) if i != 2) < 0:
            raise _OutOfStep(f"{table} {key}")
        if now[0] == 0:
            conn.execute(f"DELETE FROM {table} WHERE {where}", key)
        else:
            conn.execute(f"INSERT OR REPLACE INTO {table} ({', '.join(keys + values)})"
                         f" VALUES ({_marks(len(keys) + len(values))})", (*key, *now))


def refresh(conn: sqlite3.Connection) -> dict[str, int]:
    """Recompute the marked orders' summary rows and move the totals by the
    difference; call inside a write transaction."""
    assert conn.in_transaction, "salesfacts.refresh runs inside a write transaction"
    marked = conn.execute("SELECT count(*) FROM sales_dirty_orders").fetchone()[0]
    if marked >= _REBUILD_AT and marked * 4 >= conn.execute("SELECT count(*) FROM orders").fetchone()[0]:
        rebuild(conn)  # most of the data changed (an upgrade, a big import): recompute it all, set-based
        return {"orders": marked, "rebuilt": 1}
    q = _sql()
    order_ids = [r[0] for r in conn.execute("SELECT order_id FROM sales_dirty_orders ORDER BY order_id")]
    days: dict[tuple, list[int]] = {}
    products: dict[tuple, list[int]] = {}
    categories: dict[tuple, list[int]] = {}
    hours: dict[tuple, list[int]] = {}
    category_hours: dict[tuple, list[int]] = {}
    shipped_products: dict[tuple, list[int]] = {}
    shipped_customers: dict[tuple, list[int]] = {}
    customers: set[int] = set()
    for chunk in _chunks(order_ids):
        ph = _marks(len(chunk))
        # one row per booked order -> the daily totals
        old, new = _replace_rows(
            conn, chunk, "sales_orders", ("order_id",),
            ("day", "currency", "customer_id", "channel", "salesperson", "units", "revenue", "discounts", "cost"),
            _order_rows_sql(q, f"o.id IN ({ph})"))
        for rows, sign in ((old, -1), (new, +1)):
            for k, r in rows.items():
                if old.get(k) != new.get(k):
                    _add(days, (r[1], r[2], r[4], r[5] or ""), sign, r[6:])
                    customers.add(r[3])
        # one row per order and product -> the product and category totals
        old, new = _replace_rows(
            conn, chunk, "sales_order_products", ("order_id", "product_id"),
            ("day", "currency", "category", "units", "revenue", "discounts", "cost"),
            _order_product_rows_sql(q, f"o.id IN ({ph})"))
        changed = {k[0] for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
        for rows, sign in ((old, -1), (new, +1)):
            moving = [r for r in rows.values() if r[0] in changed]
            for r in moving:
                _add(products, (r[1], r[2], r[3]), sign, r[5:])
            # an order counts once per category, whatever number of its products
            _add_per_order(categories, moving, sign, lambda r: (r[0], r[4], r[2], r[3]), lambda r: r[5:])
        # each line's value and kept units (report stats), the shipped and
        # collected bases: their own rows, read without totals
        old, new = _replace_rows(
            conn, chunk, "sales_lines", ("order_id", "line_no"),
            ("day", "currency", "product_id", "value", "qty", "customer_id", "channel", "salesperson"),
            _line_rows_sql(q, f"o.id IN ({ph})"))
        customers.update(r[7] for k in old.keys() | new.keys() if old.get(k) != new.get(k)
                         for r in (old.get(k), new.get(k)) if r)
        old, new = _replace_rows(conn, chunk, "sales_shipped", ("shipped_at", "shipment_id", "line_id"),
                      ("order_id", "currency", "customer_id", "channel", "salesperson", "product_id", "units",
                       "revenue", "cost", "counts_order", "prev_at", "category", "counts_category",
                       "prev_category_at", "region"),
                      "SELECT shipped_at, shipment_id, line_id, order_id, currency, customer_id, channel,"
                      " salesperson, product_id, units, revenue, cost, counts_order, prev_at, category,"
                      " counts_category, prev_category_at, region"
                      f" FROM ({_shipped_rows_sql(q, [f'o.id IN ({ph})'])})")
        # -> the hourly shipped totals (shipment lines, first lines, revenue, units, cost), also per category
        # and each product's and customer's over all history (an order counts once per product)
        differ = [k for k in old.keys() | new.keys() if old.get(k) != new.get(k)]
        moved = {r[3] for k in differ for r in (old.get(k), new.get(k)) if r}
        for rows, sign in ((old, -1), (new, +1)):
            for r in (rows[k] for k in differ if k in rows):
                _add(hours, (r[0][:13], r[4]), sign, (r[12], r[10], r[9], r[11]))
                _add(category_hours, (r[0][:13], r[4], r[14]), sign, (r[15], r[10], r[9], r[11]))
            moving = [r for r in rows.values() if r[3] in moved]
            _add_per_order(shipped_products, moving, sign, lambda r: (r[3], r[8], r[4]), _shipped_values)
            _add_per_order(shipped_customers, moving, sign, lambda r: (r[3], r[5], r[4]), _shipped_values)
        _replace_rows(conn, chunk, "sales_collected", ("paid_at", "payment_id"),
                      ("order_id", "currency", "customer_id", "channel", "salesperson", "amount"),
                      "SELECT paid_at, payment_id, order_id, currency, customer_id, channel, salesperson, amount"
                      f" FROM ({q['collected']([f'o.id IN ({ph})'])})")
    # per customer: recomputed from the customer's order rows (first and last
    # day are not differences), a few index entries each
    for chunk in _chunks(sorted(customers)):
        ph = _marks(len(chunk))
        conn.execute(f"DELETE FROM sales_customers WHERE customer_id IN ({ph})", chunk)
        conn.execute(f"INSERT INTO sales_customers ({_COLUMNS['sales_customers']})"
                     f" {_customer_rows_sql(f'customer_id IN ({ph})')}", chunk)
    _refresh_figures(conn, customers)
    try:
        _apply(conn, "sales_days", days)
        _apply(conn, "sales_products", products)
        _apply(conn, "sales_categories", categories)
        _apply(conn, "sales_shipped_hours", hours)
        _apply(conn, "sales_shipped_category_hours", category_hours)
        _apply(conn, "sales_shipped_products", shipped_products)
        _apply(conn, "sales_shipped_customers", shipped_customers)
    except _OutOfStep:  # damaged by hand: mend everything rather than refuse this write
        rebuild(conn)
        return {"orders": len(order_ids), "rebuilt": 1}
    conn.execute("DELETE FROM sales_dirty_orders")
    return {"orders": len(order_ids), "days": len(days), "products": len(products),
            "categories": len(categories)}


def _refresh_figures(conn: sqlite3.Connection, customers: set[int]) -> None:
    """Recompute the kept figures (``sales_customer_figures``, m0009) of
    these customers and of those marked, writing only the rows that differ;
    most customers at once in one pass per field (the upgrade to m0009, a
    large import)."""
    from salescrm.reports.stats import customer_figures

    marked = [r[0] for r in conn.execute("SELECT customer_id FROM sales_dirty_customers")]
    ids = sorted(customers.union(marked))
    if (len(ids) >= _REFIGURE_AT
            and len(ids) * 4 >= conn.execute("SELECT count(*) FROM sales_customers").fetchone()[0]):
        _refigure_all(conn)
        return
    for chunk in _chunks(ids):
        ph = _marks(len(chunk))
        old = set(map(tuple, conn.execute(
            f"SELECT {_FIGURES} FROM sales_customer_figures WHERE customer_id IN ({ph})", chunk)))
        new = {r for _currency, _field, rows in customer_figures(conn, chunk) for r in rows}
        conn.executemany("DELETE FROM sales_customer_figures WHERE customer_id = ? AND currency = ? AND field = ?",
                         [r[:3] for r in old - new])
        conn.executemany(f"INSERT INTO sales_customer_figures ({_FIGURES}) VALUES ({_marks(17)})", new - old)
    if marked:
        conn.execute("DELETE FROM sales_dirty_customers")


def _refigure_all(conn: sqlite3.Connection) -> None:
    """Every customer's kept figures computed afresh, a currency and field at
    a time, and no customer left marked."""
    from salescrm.reports.stats import customer_figures

    conn.execute("DELETE FROM sales_customer_figures")
    for _currency, _field, rows in customer_figures(conn, None):
        conn.executemany(f"INSERT INTO sales_customer_figures ({_FIGURES}) VALUES ({_marks(17)})", rows)
    conn.execute("DELETE FROM sales_dirty_customers")


#: ``sales_customer_figures``' columns, as ``reports.stats.customer_figures`` computes them
_FIGURES = ("customer_id, currency, field, count, sum, mean, median, p25, p75, p90, stdev, min, min_key, min_number,"
            " max, max_key, max_number")

_COLUMNS = {
    "sales_orders": "order_id, day, currency, customer_id, channel, salesperson, units, revenue, discounts, cost",
    "sales_customers": "customer_id, currency, orders, units, revenue, discounts, cost, first_day, last_day",
    "sales_order_products": "order_id, product_id, day, currency, category, units, revenue, discounts, cost",
    "sales_lines": "order_id, line_no, day, currency, product_id, value, qty, customer_id, channel, salesperson",
    "sales_days": "day, currency, channel, salesperson, orders, units, revenue, discounts, cost",
    "sales_products": "product_id, day, currency, orders, units, revenue, discounts, cost",
    "sales_categories": "category, day, currency, orders, units, revenue, discounts, cost",
    "sales_shipped": ("order_id, shipment_id, line_id, shipped_at, currency, customer_id, channel, salesperson,"
                      " product_id, units, revenue, cost, counts_order, prev_at, category, counts_category,"
                      " prev_category_at, region"),
    "sales_shipped_hours": "hour, currency, lines, firsts, revenue, units, cost",
    "sales_shipped_category_hours": "hour, currency, category, lines, firsts, revenue, units, cost",
    "sales_shipped_products": "product_id, currency, orders, units, revenue, lines, cost",
    "sales_shipped_customers": "customer_id, currency, orders, units, revenue, lines, cost",
    "sales_collected": "payment_id, order_id, paid_at, currency, customer_id, channel, salesperson, amount",
}
_TABLES = tuple(_COLUMNS)


def _sources(q: dict[str, Any]) -> dict[str, str]:
    """What each summary table holds, computed afresh, in the order they can
    be filled (the totals add up the per-order rows above them); each in its
    key order.  ``rebuild`` fills the tables from these, ``check`` compares."""
    return {
        "sales_orders": _order_rows_sql(q, "1"),
        "sales_customers": _customer_rows_sql(),
        "sales_order_products": _order_product_rows_sql(q, "1"),
        "sales_lines": _line_rows_sql(q, "1"),
        "sales_days": ("SELECT day, currency, channel, coalesce(salesperson, ''), count(*), sum(units), sum(revenue),"
                       " sum(discounts), sum(cost) FROM sales_orders GROUP BY 1, 2, 3, 4"),
        "sales_products": ("SELECT product_id, day, currency, count(*), sum(units), sum(revenue), sum(discounts),"
                           " sum(cost) FROM sales_order_products GROUP BY 1, 2, 3"),
        "sales_categories": ("SELECT category, day, currency, count(DISTINCT order_id), sum(units), sum(revenue),"
                             " sum(discounts), sum(cost) FROM sales_order_products GROUP BY 1, 2, 3"),
        "sales_shipped": f"SELECT * FROM ({_shipped_rows_sql(q)}) ORDER BY shipped_at, shipment_id, line_id",
        "sales_shipped_hours": ("SELECT substr(shipped_at, 1, 13), currency, count(*), sum(counts_order),"
                                " sum(revenue), sum(units), sum(cost) FROM sales_shipped GROUP BY 1, 2"),
        "sales_shipped_category_hours": ("SELECT substr(shipped_at, 1, 13), currency, category, count(*),"
                                         " sum(counts_category), sum(revenue), sum(units), sum(cost)"
                                         " FROM sales_shipped GROUP BY 1, 2, 3"),
        "sales_shipped_products": ("SELECT product_id, currency, count(DISTINCT order_id), sum(units),"
                                   " sum(revenue), count(*), sum(cost) FROM sales_shipped"
                                   " INDEXED BY sales_shipped_product"
                                   " GROUP BY product_id, currency"),
        "sales_shipped_customers": ("SELECT customer_id, currency, count(DISTINCT order_id), sum(units),"
                                    " sum(revenue), count(*), sum(cost) FROM sales_shipped"
                                    " GROUP BY customer_id, currency"),
        "sales_collected": f"SELECT * FROM ({q['collected']()}) ORDER BY paid_at, payment_id",
    }


def rebuild(conn: sqlite3.Connection) -> dict[str, int]:
    """Recompute every summary row from the orders, set-based (each table
    filled in its key order), and clear the marks.  Used when most orders
    are marked (the upgrade to m0005, a large import) and by
    ``db rebuild-summaries``.  Inside a write transaction."""
    assert conn.in_transaction, "salesfacts.rebuild runs inside a write transaction"
    q = _sql()
    cache = conn.execute("PRAGMA cache_size").fetchone()[0]
    conn.execute("PRAGMA cache_size = -262144")  # 256 MiB while the tables are filled
    try:
        for table in (*_TABLES, "sales_dirty_orders"):
            conn.execute(f"DELETE FROM {table}")  # names from this fixed list
        for table, sql in _sources(q).items():
            conn.execute(f"INSERT INTO {table} ({_COLUMNS[table]}) {sql}")
        _refigure_all(conn)  # (from the tables just filled)
    finally:
        conn.execute(f"PRAGMA cache_size = {int(cache)}")
    return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in (*_TABLES, "sales_customer_figures")}


def check(conn: sqlite3.Connection) -> list[str]:
    """``db check``: the summaries equal a fresh computation from the orders
    (skipped while marks are pending: then the reports do not read them)."""
    if not ready(conn):
        return []
    q = _sql()
    fix = " (run 'salescrm db rebuild-summaries')"
    problems: list[str] = []
    # each table against its fresh computation (the totals against the
    # per-order rows they add up, which are checked before them)
    for table, sql in _sources(q).items():  # table names from this fixed list
        names = _COLUMNS[table]
        # each row that is not in both (rows are unique on their key): the fresh side computed once
        n = conn.execute(f"SELECT count(*) FROM (SELECT 1 FROM (SELECT {names} FROM {table} UNION ALL"
                         f" SELECT * FROM ({sql})) GROUP BY {names} HAVING count(*) <> 2)").fetchone()[0]
        if n:
            problems.append(f"sales summary: {n} {table} row(s) differ from the orders{fix}")
    # the customers' kept figures, computed afresh in Python (as ``refresh`` does)
    if not _customers_marked(conn):
        from salescrm.reports.stats import customer_figures

        # (a currency and field at a time: all at once held 385 MB on the 1M-order database)
        n = conn.execute("SELECT count(*) FROM sales_customer_figures").fetchone()[0]
        for currency, field, rows in customer_figures(conn, None):
            kept = {r[0]: tuple(r) for r in conn.execute(
                f"SELECT {_FIGURES} FROM sales_customer_figures WHERE currency = ? AND field = ?", (currency, field))}
            n -= len(kept)  # (what is left: rows of a currency no customer has any longer)
            fresh = {r[0]: r for r in rows}
            n += sum(kept.get(k) != fresh.get(k) for k in kept.keys() | fresh.keys())
        if n:
            problems.append(f"sales summary: {n} sales_customer_figures row(s) differ from the orders{fix}")
    return problems
