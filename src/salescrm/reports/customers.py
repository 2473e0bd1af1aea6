"""``report customers``: top customers, new vs returning, inactive
customers, RFM scores with named segments, and ABC (Pareto) classes.
No Typer, no Rich.

Everything here is on the booked basis (see ``reports.common``): a
customer's revenue is the revenue of their orders that are neither draft
nor cancelled, net of returns.  Per-customer figures come from the orders
table alone (no order lines are read), grouped in SQL.
"""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from salescrm.errors import UsageError
from salescrm.output import Col
from salescrm.reports.common import (
    BOOKED_SQL,
    PERIODS,
    Range,
    Report,
    Spec,
    bucket_label,
    bucket_sql,
    bucket_start as bucket_start_of,
    buckets,
    div_round,
    filter_sql,
    index_hint,
    next_bucket,
    order_revenue_sql,
    parse_sort,
    pct,
    period_windows,
    sort_rows,
)

# Named RFM segments: the first rule that matches wins (R and F are 1-5).
SEGMENTS: list[tuple[str, str]] = [
    ("champions", "bought recently, buy often and spend the most"),
    ("loyal", "buy regularly; responsive to offers"),
    ("cannot lose", "used to buy very often, long ago: win them back"),
    ("at risk", "bought often, but not lately"),
    ("new", "first order recently"),
    ("promising", "recent, a second order"),
    ("need attention", "middling recency, few orders"),
    ("hibernating", "few orders, a while ago"),
    ("lost", "few orders, long ago"),
]


def segment(r: int, f: int) -> str:
    """The named segment of recency score ``r`` and frequency score ``f``."""
    if r >= 4 and f >= 4:
        return "champions"
    if r >= 3 and f >= 3:
        return "loyal"
    if r <= 2 and f == 5:
        return "cannot lose"
    if r <= 2 and f >= 3:
        return "at risk"
    if r >= 4 and f == 1:
        return "new"
    if r >= 4:
        return "promising"
    if r == 3:
        return "need attention"
    if r == 2:
        return "hibernating"
    return "lost"


def _customer_sql(conn: sqlite3.Connection, spec: Spec, *, upto: date | None = None) -> tuple[str, list[Any]]:
    """Per customer: orders, revenue, first and last order date (booked).

    From the per-order summary (``salescrm.salesfacts``) when it is current
    and no category filter applies: its customer index holds every figure,
    read customer by customer with no sort.  Otherwise from the orders, read
    in date order (the orders(order_date) index) and grouped by a sort:
    reading them customer by customer through the customer index would jump
    all over the table.  An order's revenue is the same either way (the sum
    of its lines', see ``reports.common``)."""
    from salescrm import salesfacts

    rng = spec.range
    end = min(d for d in (rng.end, upto) if d) if (rng.end or upto) else None
    f = spec.filters
    if not f.category and salesfacts.ready(conn):
        if not (rng.start or f.by_order):
            last = conn.execute("SELECT max(day) FROM sales_orders").fetchone()[0]
            if end is None or last is None or end.isoformat() >= last:  # all of history: the customers' totals
                sql = ("SELECT customer_id, sum(orders) AS orders, sum(revenue) AS revenue, min(first_day) AS"
                       " first_order, max(last_day) AS last_order FROM sales_customers"
                       + (" WHERE currency = ?" if f.currency else "") + " GROUP BY customer_id")
                return sql, [f.currency] if f.currency else []
        where, params = filter_sql(spec.filters, o="s")
        where += ["s.day >= ?"] + (["s.day <= ?"] if end else [])
        params += [rng.start.isoformat() if rng.start else ""] + ([end.isoformat()] if end else [])
        join = " JOIN customers c ON c.id = s.customer_id" if spec.filters.region else ""
        sql = (f"SELECT s.customer_id AS customer_id, count(*) AS orders, sum(s.revenue) AS revenue,"
               f" min(s.day) AS first_order, max(s.day) AS last_order"
               f" FROM sales_orders s INDEXED BY sales_orders_customer{join} WHERE " + " AND ".join(where)
               + " GROUP BY s.customer_id")
        return sql, params
    where, params = filter_sql(spec.filters)
    where.append("o.order_date >= ?")
    params.append(rng.start.isoformat() if rng.start else "")
    if end:
        where.append("o.order_date <= ?")
        params.append(end.isoformat())
    join = " JOIN customers c ON c.id = o.customer_id" if spec.filters.region else ""
    if spec.filters.category:
        where.append("EXISTS (SELECT 1 FROM order_lines l JOIN products p ON p.id = l.product_id"
                     " WHERE l.order_id = o.id AND l.qty > l.returned_qty AND p.category IN ("
                     + ", ".join("?" * len(spec.filters.category)) + "))")
        params += spec.filters.category
    # the revenue per order first (not flattened: LIMIT -1), so that the sort
    # for the grouping holds four small values per order
    sql = (f"SELECT customer_id, count(*) AS orders, sum(rev) AS revenue, min(d) AS first_order,"
           f" max(d) AS last_order FROM (SELECT o.customer_id, o.order_date AS d, {order_revenue_sql()} AS rev"
           f" FROM orders o{index_hint(conn, 'orders_date')}{join} WHERE +o.status IN ({BOOKED_SQL})"
           + "".join(" AND " + w for w in where) + " LIMIT -1) GROUP BY customer_id")
    return sql, params


def _names(conn: sqlite3.Connection, ids: list[int]) -> dict[int, tuple[str, str | None]]:
    out: dict[int, tuple[str, str | None]] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        for r in conn.execute(f"SELECT id, name, email FROM customers WHERE id IN ({', '.join('?' * len(chunk))})",
                              chunk):
            out[r[0]] = (r[1], r[2])
    return out


def _with_other(rows: list[dict], cols: list[Col], limit: int | None, label: str,
                sums: tuple[str, ...], notes: list[str]) -> list[dict]:
    if limit is None or len(rows) <= limit:
        return rows
    rest = rows[limit:]
    other: dict[str, Any] = {c.key: None for c in cols}
    other[label] = f"(other {len(rest):,})"
    for k in sums:
        other[k] = sum(r[k] or 0 for r in rest)
    notes.append(f"{len(rest):,} more customers are summed in the '(other {len(rest):,})' row")
    return rows[:limit] + [other]


def _totals(rows: list[dict], cols: list[Col], label: str, sums: tuple[str, ...]) -> dict[str, Any]:
    t: dict[str, Any] = {c.key: None for c in cols}
    t[label] = "total"
    for k in sums:
        t[k] = sum(r[k] or 0 for r in rows)
    return t


# --------------------------------------------------------------------------- top


def top(conn: sqlite3.Connection, spec: Spec, *, limit: int | None = 20, sort: str | None = None) -> Report:
    """Customers by revenue: orders, revenue, share of the total, running
    share, average order value, first and last order."""
    sql, params = _customer_sql(conn, spec)
    data = conn.execute(sql, params).fetchall()
    key, desc = parse_sort(sort, ("revenue", "orders", "aov", "last_order", "first_order", "customer"), "-revenue")
    grand = 0
    rows = []
    for cid, orders, revenue, first, last in data:  # 50,000 customers: plain values, no per-row arithmetic
        grand += revenue
        rows.append({"customer_id": cid, "orders": orders, "revenue": revenue, "first_order": first,
                     "last_order": last})
    if key == "aov":
        for r in rows:
            r["aov"] = div_round(r["revenue"], r["orders"])
    if key == "customer":
        names = _names(conn, [r["customer_id"] for r in rows])
        for r in rows:
            r["customer"] = names.get(r["customer_id"], ("", None))[0]
    sort_rows(rows, key, desc)
    running = 0
    for i, r in enumerate(rows if limit is None else rows[:limit], 1):  # the rest go into '(other)'
        r["rank"] = i
        running += r["revenue"]
        r["aov"] = div_round(r["revenue"], r["orders"])
        r["share_pct"] = pct(r["revenue"], grand)
        r["cum_share_pct"] = pct(running, grand)
    cols = [Col("rank", "int"), Col("customer_id", "int", "id"), Col("customer"), Col("email"),
            Col("orders", "int"), Col("revenue", "money"), Col("share_pct", "percent", "share"),
            Col("cum_share_pct", "percent", "cumulative"), Col("aov", "money", "avg order"),
            Col("first_order", "date"), Col("last_order", "date"), Col("currency")]
    notes: list[str] = []
    rows = _with_other(rows, cols, limit, "customer", ("orders", "revenue"), notes)
    names = _names(conn, [r["customer_id"] for r in rows if r.get("customer_id")])
    for r in rows:
        if r.get("customer_id"):
            r["customer"], r["email"] = names.get(r["customer_id"], (f"#{r['customer_id']}", None))
        r["currency"] = spec.filters.currency
    if rows and rows[-1]["customer"].startswith("(other"):
        o = rows[-1]
        o["share_pct"] = pct(o["revenue"], grand)
        o["cum_share_pct"] = pct(grand, grand)
        o["aov"] = div_round(o["revenue"], o["orders"])
    totals = _totals(rows, cols, "customer", ("orders", "revenue"))
    totals["aov"] = div_round(totals["revenue"], totals["orders"])
    totals["share_pct"] = pct(totals["revenue"], grand)
    totals["currency"] = spec.filters.currency
    return Report(f"Top customers by revenue ({_when(spec.range)}, {spec.filters.currency})", cols, rows, totals,
                  measure="revenue", label="customer", notes=notes, hide=("email", "first_order"))


def _when(rng: Range) -> str:
    if not rng.start and not rng.end:
        return "all time"
    return f"{rng.start or '…'} to {rng.end or '…'}"


# --------------------------------------------------------------------------- new vs returning


def _new_vs_returning_by_period(conn: sqlite3.Connection, spec: Spec, unit: str) -> dict[date, tuple]:
    """From the per-order summary, one query per period over its days: the
    period's customers with their orders and revenue, each with the day of
    their first booked order ever (the first entry of the customer index);
    new when that day is in the period.  Per period: (new, returning, new
    revenue, returning revenue, new orders, returning orders)."""
    windows = period_windows(conn, spec.range, unit)
    if not windows:
        return {}
    where, params = filter_sql(spec.filters, o="s")
    join = " JOIN customers c ON c.id = s.customer_id" if spec.filters.region else ""
    new = "f >= ?1"  # ?1: the period's first day, ?2 and ?3: its days within the range
    sql = (f"SELECT count(*), coalesce(sum({new}), 0), coalesce(sum(CASE WHEN {new} THEN r END), 0),"
           f" coalesce(sum(CASE WHEN NOT {new} THEN r END), 0), coalesce(sum(CASE WHEN {new} THEN n END), 0),"
           f" coalesce(sum(CASE WHEN NOT {new} THEN n END), 0)"
           f" FROM (SELECT s.customer_id, count(*) AS n, sum(s.revenue) AS r,"
           f" (SELECT min(s2.day) FROM sales_orders s2 INDEXED BY sales_orders_customer"
           f" WHERE s2.customer_id = s.customer_id) AS f"
           f" FROM sales_orders s INDEXED BY sales_orders_day{join} WHERE s.day >= ?2 AND s.day <= ?3"
           + "".join(" AND " + w for w in where) + " GROUP BY s.customer_id)")
    f = spec.filters
    if f.currency and not f.by_order:
        return _new_vs_returning_from_totals(conn, f.currency, windows, unit)
    got: dict[date, tuple] = {}
    for start, lo, hi in windows:
        customers, n_new, r_new, r_ret, o_new, o_ret = conn.execute(
            sql, [start.isoformat(), lo.isoformat(), hi.isoformat(), *params]).fetchone()
        if customers:
            got[start] = (n_new, customers - n_new, r_new, r_ret, o_new, o_ret)
    return got


def _new_vs_returning_from_totals(conn: sqlite3.Connection, currency: str,
                                  windows: list[tuple[date, date, date]], unit: str) -> dict[date, tuple]:
    """The same figures when only the currency filters: the period's
    customers counted over its days, its orders and revenue from the daily
    totals, the new customers from each customer's first order ever
    (``sales_customers``) and their orders in the period off the customer
    index; returning = the rest."""
    firsts: dict[date, list[int]] = {}
    earliest, last_day = windows[0][0], windows[-1][2]  # new in a period cut by --from: first order from its start
    for cid, first in conn.execute("SELECT customer_id, min(first_day) FROM sales_customers GROUP BY customer_id"):
        day = date.fromisoformat(first)
        if earliest <= day <= last_day:
            firsts.setdefault(bucket_start_of(day, unit), []).append(cid)
    active = ("SELECT count(DISTINCT customer_id) FROM sales_orders INDEXED BY sales_orders_day"
              " WHERE day >= ? AND day <= ? AND currency = ?")
    totals = ("SELECT coalesce(sum(orders), 0), coalesce(sum(revenue), 0) FROM sales_days"
              " WHERE day >= ? AND day <= ? AND currency = ?")
    got: dict[date, tuple] = {}
    for start, lo, hi in windows:
        span = (lo.isoformat(), hi.isoformat(), currency)
        customers = conn.execute(active, span).fetchone()[0]
        if not customers:
            continue
        orders, revenue = conn.execute(totals, span).fetchone()
        n_new = o_new = r_new = 0
        candidates = firsts.get(start, [])
        for i in range(0, len(candidates), 500):
            chunk = candidates[i:i + 500]
            for n, r in conn.execute(
                    f"SELECT count(*), sum(revenue) FROM sales_orders INDEXED BY sales_orders_customer"
                    f" WHERE customer_id IN ({', '.join('?' * len(chunk))}) AND day >= ? AND day <= ? AND currency = ?"
                    f" GROUP BY customer_id", (*chunk, *span)):
                n_new += 1
                o_new += n
                r_new += r
        got[start] = (n_new, customers - n_new, r_new, revenue - r_new, o_new, orders - o_new)
    return got


def new_vs_returning(conn: sqlite3.Connection, spec: Spec, unit: str = "month") -> Report:
    """Per period: customers who placed their first order ever in it (new)
    and customers who had ordered before (returning), with their revenue.
    'First order ever' looks at all history, whatever --from says."""
    if unit not in PERIODS:
        raise UsageError(f"unknown period {unit!r}", "choose from " + ", ".join(PERIODS))
    from salescrm import salesfacts

    rng = spec.range
    if not spec.filters.category and salesfacts.ready(conn):
        got = _new_vs_returning_by_period(conn, spec, unit)
    else:
        where, params = filter_sql(spec.filters)
        where.append("o.order_date >= ?")
        params.append(rng.start.isoformat() if rng.start else "")
        if rng.end:
            where.append("o.order_date <= ?")
            params.append(rng.end.isoformat())
        join = " JOIN customers c ON c.id = o.customer_id" if spec.filters.region else ""
        b = bucket_sql("o.order_date", unit)
        fb = bucket_sql("f.first_order", unit)
        # Each customer's orders and revenue per period in the range; then, once
        # per customer, the date of their first booked order ever (the customer
        # index in date order, stopping at the first booked one).
        sql = (f"WITH p AS MATERIALIZED (SELECT cid, b, count(*) AS n, sum(rev) AS r FROM ("
               f"SELECT o.customer_id AS cid, {b} AS b, {order_revenue_sql()} AS rev FROM orders o"
               f"{index_hint(conn, 'orders_date')}{join} WHERE +o.status IN ({BOOKED_SQL})"
               + "".join(" AND " + w for w in where) + " LIMIT -1) GROUP BY cid, b),"
               f" f AS MATERIALIZED (SELECT cid, (SELECT o2.order_date FROM orders o2 WHERE o2.customer_id = c.cid"
               f" AND o2.status IN ({BOOKED_SQL}) ORDER BY o2.order_date LIMIT 1) AS first_order"
               f" FROM (SELECT DISTINCT cid FROM p) c)"
               f" SELECT p.b, sum({fb} = p.b), sum({fb} < p.b), sum(CASE WHEN {fb} = p.b THEN p.r ELSE 0 END),"
               f" sum(CASE WHEN {fb} < p.b THEN p.r ELSE 0 END), sum(CASE WHEN {fb} = p.b THEN p.n ELSE 0 END),"
               f" sum(CASE WHEN {fb} < p.b THEN p.n ELSE 0 END)"
               f" FROM p JOIN f ON f.cid = p.cid GROUP BY p.b")
        got = {date.fromisoformat(r[0]): r[1:] for r in conn.execute(sql, params)}
    if got or rng.bounded:
        lo = rng.start or min(got)
        hi = rng.end or max(got)
        keys = buckets(lo, hi, unit)
    else:
        keys = []
    rows = []
    for k in keys:
        n_new, n_ret, r_new, r_ret, o_new, o_ret = got.get(k, (0, 0, 0, 0, 0, 0))
        rows.append({"period": bucket_label(k, unit), "start": k.isoformat(),
                     "end": (next_bucket(k, unit) - timedelta(days=1)).isoformat(),
                     "new_customers": n_new, "returning_customers": n_ret, "customers": n_new + n_ret,
                     "new_revenue": r_new, "returning_revenue": r_ret, "revenue": r_new + r_ret,
                     "new_orders": o_new, "returning_orders": o_ret,
                     "returning_share_pct": pct(r_ret, r_new + r_ret), "currency": spec.filters.currency})
    cols = [Col("period"), Col("start", "date", "from"), Col("end", "date", "to"), Col("new_customers", "int", "new"),
            Col("returning_customers", "int", "returning"), Col("customers", "int"),
            Col("new_orders", "int"), Col("returning_orders", "int"),
            Col("new_revenue", "money"), Col("returning_revenue", "money"), Col("revenue", "money"),
            Col("returning_share_pct", "percent", "returning %"), Col("currency")]
    sums = ("new_customers", "new_orders", "returning_orders", "new_revenue", "returning_revenue", "revenue")
    totals = _totals(rows, cols, "period", sums)
    totals["returning_share_pct"] = pct(totals["returning_revenue"], totals["revenue"])
    totals["currency"] = spec.filters.currency
    notes = ["the totals row counts new customers once; returning customers are not summed (one may return in"
             " several periods)"] if rows else []
    return Report(f"New and returning customers by {unit} ({_when(rng)}, {spec.filters.currency})", cols, rows,
                  totals, measure="new_customers", label="period", notes=notes, chart="sparkline")


# --------------------------------------------------------------------------- inactive


def inactive(conn: sqlite3.Connection, spec: Spec, *, days: int = 90, as_of: date,
             limit: int | None = None, sort: str | None = None) -> Report:
    """Customers whose last order is more than ``days`` days before
    ``as_of``, with their last order date and lifetime value."""
    if days < 0:
        raise UsageError("--days must be zero or more")
    cutoff = as_of - timedelta(days=days)
    sql, params = _customer_sql(conn, Spec(spec.basis, Range(None, as_of), spec.filters))
    sql = (f"SELECT * FROM ({sql}) WHERE last_order < ?")
    data = conn.execute(sql, [*params, cutoff.isoformat()]).fetchall()
    rows = [{"customer_id": r["customer_id"], "last_order": r["last_order"],
             "days_inactive": (as_of - date.fromisoformat(r["last_order"])).days, "orders": r["orders"],
             "lifetime_value": r["revenue"], "aov": div_round(r["revenue"], r["orders"]),
             "first_order": r["first_order"]} for r in data]
    key, desc = parse_sort(sort, ("lifetime_value", "last_order", "days_inactive", "orders", "aov"),
                           "-lifetime_value")
    sort_rows(rows, key, desc)
    cols = [Col("customer_id", "int", "id"), Col("customer"), Col("email"), Col("last_order", "date"),
            Col("days_inactive", "int"), Col("orders", "int"), Col("lifetime_value", "money"),
            Col("aov", "money", "avg order"), Col("first_order", "date"), Col("currency")]
    notes: list[str] = []
    rows = _with_other(rows, cols, limit, "customer", ("orders", "lifetime_value"), notes)
    names = _names(conn, [r["customer_id"] for r in rows if r.get("customer_id")])
    for r in rows:
        if r.get("customer_id"):
            r["customer"], r["email"] = names.get(r["customer_id"], (f"#{r['customer_id']}", None))
        r["currency"] = spec.filters.currency
    totals = _totals(rows, cols, "customer", ("orders", "lifetime_value"))
    totals["currency"] = spec.filters.currency
    return Report(f"Customers with no order since {cutoff} ({days} days before {as_of})", cols, rows, totals,
                  measure="lifetime_value", label="customer", notes=notes, hide=("email", "first_order"))


# --------------------------------------------------------------------------- RFM


def _rfm_rows(conn: sqlite3.Connection, spec: Spec, as_of: date) -> list[dict[str, Any]]:
    """Recency (days since the last order), frequency (orders), monetary
    (revenue) per customer, and their scores 1-5: quintiles by rank, so
    that equal values always get equal scores (5 is best: most recent, most
    frequent, most spent).  The figures per customer in SQL, the ranks here
    (``quintile_scores``: three sorts of one value per customer)."""
    inner, params = _customer_sql(conn, Spec(spec.basis, Range(spec.range.start, as_of), spec.filters))
    rows = [{"customer_id": cid, "orders": n, "revenue": rev, "last_order": last,
             "recency": (as_of - date.fromisoformat(last)).days}
            for cid, n, rev, _, last in conn.execute(inner, params)]
    for name, col in (("r", "last_order"), ("f", "orders"), ("m", "revenue")):
        scores = quintile_scores({i: r[col] for i, r in enumerate(rows)})
        for i, r in enumerate(rows):
            r[name] = scores[i]
    return rows


def quintile_scores(values: dict[int, Any]) -> dict[int, int]:
    """Quintile scores by rank: 1 + 5 (rank - 1) / n, where equal values
    share the rank of the first of them (SQL's ``rank()``)."""
    n = len(values)
    ordered = sorted(values.items(), key=lambda kv: kv[1])
    out: dict[int, int] = {}
    rank, prev = 0, object()
    for i, (k, v) in enumerate(ordered, 1):
        if v != prev:
            rank, prev = i, v
        out[k] = 1 + 5 * (rank - 1) // n
    return out


def rfm(conn: sqlite3.Connection, spec: Spec, *, as_of: date, segment_filter: list[str] | None = None,
        limit: int | None = None, sort: str | None = None) -> Report:
    """Every customer's R, F and M scores and named segment."""
    wanted = [s.strip().lower().replace("-", " ").replace("_", " ") for s in segment_filter or []]
    names = [s for s, _ in SEGMENTS]
    for w in wanted:
        if w not in names:
            raise UsageError(f"unknown segment {w!r}", "choose from " + ", ".join(names))
    rows = []
    for r in _rfm_rows(conn, spec, as_of):
        seg = segment(r["r"], r["f"])
        if wanted and seg not in wanted:
            continue
        rows.append({"customer_id": r["customer_id"], "recency_days": r["recency"], "orders": r["orders"],
                     "revenue": r["revenue"], "r": r["r"], "f": r["f"], "m": r["m"],
                     "rfm": f"{r['r']}{r['f']}{r['m']}", "segment": seg, "last_order": r["last_order"]})
    order = {s: i for i, s in enumerate(names)}
    if sort:
        key, desc = parse_sort(sort, ("revenue", "orders", "recency_days", "rfm", "segment", "last_order"), "-revenue")
        sort_rows(rows, key, desc)
    else:
        rows.sort(key=lambda x: (order[x["segment"]], -x["revenue"]))
    cols = [Col("customer_id", "int", "id"), Col("customer"), Col("segment"), Col("rfm"), Col("r", "int"),
            Col("f", "int"), Col("m", "int"), Col("recency_days", "int", "days since"), Col("orders", "int"),
            Col("revenue", "money"), Col("last_order", "date"), Col("currency")]
    notes: list[str] = []
    rows = _with_other(rows, cols, limit, "customer", ("orders", "revenue"), notes)
    nm = _names(conn, [r["customer_id"] for r in rows if r.get("customer_id")])
    for r in rows:
        if r.get("customer_id"):
            r["customer"] = nm.get(r["customer_id"], (f"#{r['customer_id']}", None))[0]
        r["currency"] = spec.filters.currency
    totals = _totals(rows, cols, "customer", ("orders", "revenue"))
    totals["currency"] = spec.filters.currency
    return Report(f"RFM scores as of {as_of} (5 = best; quintiles by rank)", cols, rows, totals,
                  measure="revenue", label="customer", notes=notes)


def segments(conn: sqlite3.Connection, spec: Spec, *, as_of: date) -> Report:
    """Customers, orders and revenue per RFM segment."""
    acc: dict[str, list[int]] = {s: [0, 0, 0] for s, _ in SEGMENTS}
    for r in _rfm_rows(conn, spec, as_of):
        a = acc[segment(r["r"], r["f"])]
        a[0] += 1
        a[1] += r["orders"]
        a[2] += r["revenue"]
    grand = sum(a[2] for a in acc.values())
    rows = [{"segment": s, "meaning": meaning, "customers": acc[s][0], "orders": acc[s][1], "revenue": acc[s][2],
             "share_pct": pct(acc[s][2], grand), "currency": spec.filters.currency} for s, meaning in SEGMENTS]
    cols = [Col("segment"), Col("customers", "int"), Col("orders", "int"), Col("revenue", "money"),
            Col("share_pct", "percent", "share"), Col("meaning"), Col("currency")]
    totals = _totals(rows, cols, "segment", ("customers", "orders", "revenue"))
    totals["share_pct"] = pct(totals["revenue"], grand)
    totals["currency"] = spec.filters.currency
    return Report(f"RFM segments as of {as_of}", cols, rows, totals, measure="revenue", label="segment")


# --------------------------------------------------------------------------- ABC


def abc(conn: sqlite3.Connection, spec: Spec, *, a: Decimal = Decimal(80), b: Decimal = Decimal(95),
        limit: int | None = None, summary: bool = False) -> Report:
    """Pareto classes: customers ranked by revenue; class A while the running
    share before them is under ``a`` percent (so the customer who crosses
    the line is still A), B under ``b`` percent, C for the rest.  Customers
    with no revenue (or a negative one) are C."""
    if not (0 < a < b <= 100):
        raise UsageError("the class limits need 0 < A < B <= 100", "e.g. --a 80 --b 95")
    sql, params = _customer_sql(conn, spec)
    data = sorted(((r["customer_id"], r["orders"], r["revenue"]) for r in conn.execute(sql, params)),
                  key=lambda x: (-x[2], x[0]))
    grand = sum(max(0, x[2]) for x in data)
    rows, before = [], 0
    for rank, (cid, orders, revenue) in enumerate(data, 1):
        share_before = Decimal(before) * 100 / grand if grand else Decimal(100)
        cls = "C" if revenue <= 0 else "A" if share_before < a else "B" if share_before < b else "C"
        before += max(0, revenue)
        rows.append({"rank": rank, "customer_id": cid, "orders": orders, "revenue": revenue, "class": cls,
                     "share_pct": pct(revenue, grand), "cum_share_pct": pct(before, grand)})
    if summary:
        acc: dict[str, list[int]] = {k: [0, 0, 0] for k in "ABC"}
        for r in rows:
            x = acc[r["class"]]
            x[0] += 1
            x[1] += r["orders"]
            x[2] += r["revenue"]
        n = len(rows)
        srows = [{"class": k, "customers": v[0], "customers_pct": pct(v[0], n), "orders": v[1], "revenue": v[2],
                  "share_pct": pct(v[2], grand), "currency": spec.filters.currency} for k, v in acc.items()]
        cols = [Col("class"), Col("customers", "int"), Col("customers_pct", "percent", "of customers"),
                Col("orders", "int"), Col("revenue", "money"), Col("share_pct", "percent", "of revenue"),
                Col("currency")]
        totals = _totals(srows, cols, "class", ("customers", "orders", "revenue"))
        totals["customers_pct"] = pct(totals["customers"], n)
        totals["share_pct"] = pct(totals["revenue"], grand)
        totals["currency"] = spec.filters.currency
        return Report(f"ABC classes (A < {a}%, B < {b}% of revenue; {_when(spec.range)})", cols, srows, totals,
                      measure="revenue", label="class")
    cols = [Col("rank", "int"), Col("customer_id", "int", "id"), Col("customer"), Col("class"), Col("orders", "int"),
            Col("revenue", "money"), Col("share_pct", "percent", "share"), Col("cum_share_pct", "percent", "cumulative"),
            Col("currency")]
    notes: list[str] = []
    rows = _with_other(rows, cols, limit, "customer", ("orders", "revenue"), notes)
    nm = _names(conn, [r["customer_id"] for r in rows if r.get("customer_id")])
    for r in rows:
        if r.get("customer_id"):
            r["customer"] = nm.get(r["customer_id"], (f"#{r['customer_id']}", None))[0]
        r["currency"] = spec.filters.currency
    totals = _totals(rows, cols, "customer", ("orders", "revenue"))
    totals["share_pct"] = pct(totals["revenue"], grand)
    totals["currency"] = spec.filters.currency
    return Report(f"ABC classes of customers (A < {a}%, B < {b}% of revenue; {_when(spec.range)})", cols, rows,
                  totals, measure="revenue", label="customer", notes=notes)
