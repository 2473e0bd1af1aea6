"""``report orders``: the status funnel, open orders, cycle times and the
receivables ageing.  No Typer, no Rich.

Values: an order's *value* is its booked revenue as defined in
``reports.common`` (net of tax, discounts and returns); *total*, *paid* and
*balance* are the invoice amounts (tax and shipping included): balance =
total - returned - paid.
"""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from salescrm import lifecycle
from salescrm.errors import UsageError
from salescrm.output import Col
from salescrm.reports.common import (
    OPEN_SQL,
    PERIODS,
    Report,
    Spec,
    bucket_label,
    bucket_start,
    buckets,
    filter_sql,
    next_bucket,
    order_revenue_sql,
    parse_sort,
    pct,
)

AGEING_BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")
_OPEN = OPEN_SQL


def _where(spec: Spec, *, dates: bool = True) -> tuple[list[str], list[Any], str]:
    where, params = filter_sql(spec.filters)
    if dates and spec.range.start:
        where.append("o.order_date >= ?")
        params.append(spec.range.start.isoformat())
    if dates and spec.range.end:
        where.append("o.order_date <= ?")
        params.append(spec.range.end.isoformat())
    join = " JOIN customers c ON c.id = o.customer_id" if spec.filters.region else ""
    if spec.filters.category:
        where.append("EXISTS (SELECT 1 FROM order_lines l JOIN products p ON p.id = l.product_id"
                     " WHERE l.order_id = o.id AND p.category IN (" + ", ".join("?" * len(spec.filters.category))
                     + "))")
        params += spec.filters.category
    return where, params, join


def _and(where: list[str]) -> str:
    return "".join(" AND " + w for w in where)


def _when(spec: Spec) -> str:
    r = spec.range
    return "all time" if not (r.start or r.end) else f"{r.start or '…'} to {r.end or '…'}"


# --------------------------------------------------------------------------- funnel


def funnel(conn: sqlite3.Connection, spec: Spec) -> Report:
    """Orders (by order date) per current status with their value and total,
    and how many reached each stage: created, confirmed, shipped,
    delivered, closed (and cancelled)."""
    where, params, join = _where(spec)
    measures = (f"count(*), sum(o.subtotal_cents + o.adjustment_cents), sum(o.total_cents),"
                f" sum(o.returned_cents), sum({order_revenue_sql()}),"
                f" sum(o.confirmed_at IS NOT NULL), sum(o.shipped_at IS NOT NULL), sum(o.delivered_at IS NOT NULL),"
                f" sum(o.status = 'closed')")
    if spec.range.start or spec.range.end:  # a range of days per status off orders(status, order_date)
        sql = f"SELECT o.status, {measures} FROM orders o{join} WHERE 1{_and(where)} GROUP BY o.status"
        got = {r[0]: r[1:] for r in conn.execute(sql, params)}
    else:
        # All history: one query per status, none sorted.  A status that holds
        # a large share of the orders (closed, usually) is read in one pass
        # over the table; the others through the status index.  (Grouping all
        # orders by status sorted every order, or fetched each one by its id.)
        share = dict(conn.execute("SELECT status, count(*) FROM orders INDEXED BY orders_status_date"
                                  " GROUP BY status").fetchall())
        everything = sum(share.values())
        got = {}
        for status, n in share.items():
            how = "NOT INDEXED" if n * 8 > everything else "INDEXED BY orders_status_date"
            row = conn.execute(f"SELECT {measures} FROM orders o {how}{join} WHERE o.status = ?{_and(where)}",
                               [status, *params]).fetchone()
            if row[0]:
                got[status] = row
    created = sum(v[0] for v in got.values())
    reached = {
        "draft": created,
        "confirmed": sum(v[5] for v in got.values()),
        "shipped": sum(v[6] for v in got.values()),
        "delivered": sum(v[7] for v in got.values()),
        "closed": sum(v[8] for v in got.values()),
        "cancelled": got.get("cancelled", (0,))[0],
    }
    stage_name = {"draft": "created", "confirmed": "confirmed", "partially_shipped": "shipped (part)",
                  "shipped": "shipped", "delivered": "delivered", "closed": "closed", "cancelled": "cancelled"}
    rows = []
    for s in lifecycle.STATES:
        v = got.get(s, (0, 0, 0, 0, 0, 0, 0, 0, 0))
        r = reached.get(s)
        rows.append({"status": s, "orders": v[0], "share_pct": pct(v[0], created),
                     "value": v[1] if s in ("draft", "cancelled") else v[4], "total": v[2],
                     "stage": stage_name[s] if s != "partially_shipped" else None,
                     "reached": r, "reached_pct": pct(r, created) if r is not None else None,
                     "currency": spec.filters.currency})
    cols = [Col("status"), Col("orders", "int"), Col("share_pct", "percent", "share"), Col("value", "money"),
            Col("total", "money"), Col("stage"), Col("reached", "int", "reached stage"),
            Col("reached_pct", "percent", "conversion"), Col("currency")]
    totals: dict[str, Any] = {c.key: None for c in cols}
    totals.update(status="total", orders=sum(r["orders"] for r in rows), value=sum(r["value"] for r in rows),
                  total=sum(r["total"] for r in rows), share_pct=pct(created, created),
                  currency=spec.filters.currency)
    notes = ["value: booked revenue (ex tax, net of returns); for draft and cancelled orders what they would have"
             " been worth; reached: orders that got at least that far (shipped counts part-shipped orders)"]
    return Report(f"Order funnel ({_when(spec)}, {spec.filters.currency})", cols, rows, totals, measure="orders",
                  label="status", notes=notes)


# --------------------------------------------------------------------------- open orders


_OPEN_SORT = {
    "order_date": "o.order_date", "days_open": "o.order_date", "total": "o.total_cents - o.returned_cents",
    "balance": "o.total_cents - o.returned_cents - o.paid_cents", "due_date": "o.due_date", "number": "o.number",
    "customer": "c.name", "status": "o.status",
}


def open_orders(conn: sqlite3.Connection, spec: Spec, *, as_of: date, limit: int | None = None,
                sort: str | None = None) -> Report:
    """Orders not yet closed or cancelled (confirmed, shipped in part or
    whole, delivered but unpaid), oldest first.  Only the rows shown are
    read; the rest are summed in SQL."""
    where, params, join = _where(spec)
    agg_base = f"FROM orders o{join} WHERE o.status IN ({_OPEN}){_and(where)}"  # (customers joined only to filter)
    if "JOIN customers c" not in join:
        join += " JOIN customers c ON c.id = o.customer_id"
    key, desc = parse_sort(sort, tuple(_OPEN_SORT), "+order_date")
    if key == "days_open":
        desc = not desc
    order = f"{_OPEN_SORT[key]} {'DESC' if desc else 'ASC'}, o.id"
    base = f"FROM orders o{join} WHERE o.status IN ({_OPEN}){_and(where)}"
    sql = (f"SELECT o.id, o.number, o.order_date, o.status, o.customer_id, c.name, o.total_cents, o.returned_cents,"
           f" o.paid_cents, o.due_date,"
           # (only confirmed and part-shipped orders have anything left to ship, as for the rest below and
           # the stock held: the lines of the other open orders, most of them, are not read)
           f" CASE WHEN o.status IN ('confirmed', 'partially_shipped') THEN (SELECT coalesce(sum(l.qty -"
           f" l.shipped_qty), 0) FROM order_lines l WHERE l.order_id = o.id) ELSE 0 END AS to_ship"
           f" {base} ORDER BY {order}" + (" LIMIT ?" if limit else ""))
    rows = []
    today, day = as_of.isoformat(), as_of.toordinal()
    cur = conn.cursor()
    cur.row_factory = None  # (plain tuples: a hundred thousand open orders on a large database)
    for _, number, order_date, status, cid, name, total, returned, paid, due, to_ship in cur.execute(
            sql, params + ([limit] if limit else [])):
        balance = total - returned - paid
        rows.append({"number": number, "order_date": order_date, "status": status, "customer_id": cid,
                     "customer": name, "total": total - returned, "paid": paid, "balance": balance,
                     "units_to_ship": to_ship, "due_date": due,
                     "days_open": day - date.fromisoformat(order_date[:10]).toordinal(),
                     "overdue": bool(due and balance > 0 and due < today)})
    cols = [Col("number"), Col("order_date", "date"), Col("status"), Col("customer_id", "int", "cust id"),
            Col("customer"), Col("total", "money"), Col("paid", "money"), Col("balance", "money"),
            Col("units_to_ship", "int", "to ship"), Col("due_date", "date"), Col("days_open", "int"),
            Col("overdue", "bool"), Col("currency")]
    sums = ("total", "paid", "balance", "units_to_ship")
    notes: list[str] = []
    count, total, paid, balance = conn.execute(
        f"SELECT count(*), coalesce(sum(o.total_cents - o.returned_cents), 0), coalesce(sum(o.paid_cents), 0),"
        f" coalesce(sum(o.total_cents - o.returned_cents - o.paid_cents), 0) {agg_base}", params).fetchone()
    if len(rows) < count:
        # only confirmed and part-shipped orders have anything left to ship
        to_ship = conn.execute(
            f"SELECT coalesce(sum(l.qty - l.shipped_qty), 0) FROM orders o{join.split(' JOIN customers')[0]}"
            f"{' JOIN customers c ON c.id = o.customer_id' if spec.filters.region else ''}"
            f" JOIN order_lines l ON l.order_id = o.id"
            f" WHERE o.status IN ('confirmed', 'partially_shipped'){_and(where)}", params).fetchone()[0]
        shown = {k: sum(r[k] for r in rows) for k in sums}
        rest = count - len(rows)
        other: dict[str, Any] = {c.key: None for c in cols}
        other.update(number=f"(other {rest:,})", total=total - shown["total"], paid=paid - shown["paid"],
                     balance=balance - shown["balance"], units_to_ship=to_ship - shown["units_to_ship"])
        rows.append(other)
        notes.append(f"{rest:,} more open orders are summed in the '(other {rest:,})' row")
    for r in rows:
        r["currency"] = spec.filters.currency
    totals: dict[str, Any] = {c.key: None for c in cols}
    totals["number"] = "total"
    for k in sums:
        totals[k] = sum(r[k] or 0 for r in rows)
    totals["currency"] = spec.filters.currency
    return Report(f"Open orders as of {as_of} ({count:,})", cols, rows, totals, measure="balance",
                  label="number", notes=notes, hide=("customer_id", "paid", "due_date"))


def _name(conn: sqlite3.Connection, rows: list[dict]) -> None:
    ids = list({r["customer_id"] for r in rows if r.get("customer_id")})
    names: dict[int, str] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        names.update(conn.execute(f"SELECT id, name FROM customers WHERE id IN ({', '.join('?' * len(chunk))})",
                                  chunk).fetchall())
    for r in rows:
        if r.get("customer_id"):
            r["customer"] = names.get(r["customer_id"], f"#{r['customer_id']}")


# --------------------------------------------------------------------------- cycle times


def _days(total: float | None, n: int) -> Decimal | None:
    if not n or total is None:
        return None
    return (Decimal(repr(total)) / n).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def cycle(conn: sqlite3.Connection, spec: Spec, unit: str | None = "month") -> Report:
    """Average days from confirmation to (first) shipment and to delivery, by
    the period of the order date (or overall)."""
    if unit is not None and unit not in PERIODS:
        raise UsageError(f"unknown period {unit!r}", "choose from " + ", ".join(PERIODS))
    where, params, join = _where(spec)
    conf = "julianday(o.confirmed_at)"
    sql = (f"SELECT o.order_date, count(*), sum(o.shipped_at IS NOT NULL),"
           f" sum(CASE WHEN o.shipped_at IS NOT NULL THEN julianday(o.shipped_at) - {conf} END),"
           f" sum(o.delivered_at IS NOT NULL),"
           f" sum(CASE WHEN o.delivered_at IS NOT NULL THEN julianday(o.delivered_at) - {conf} END),"
           f" max(CASE WHEN o.shipped_at IS NOT NULL THEN julianday(o.shipped_at) - {conf} END)"
           f" FROM orders o{join} WHERE o.confirmed_at IS NOT NULL AND +o.status <> 'cancelled'"
           f" AND o.order_date >= ''{_and(where)} GROUP BY o.order_date")
    acc: dict[Any, list] = {}
    for r in conn.execute(sql, params):
        k = bucket_start(date.fromisoformat(r[0][:10]), unit) if unit else "all"
        a = acc.setdefault(k, [0, 0, 0.0, 0, 0.0, None])
        a[0] += r[1]
        a[1] += r[2]
        a[2] += r[3] or 0.0
        a[3] += r[4]
        a[4] += r[5] or 0.0
        if r[6] is not None:
            a[5] = r[6] if a[5] is None else max(a[5], r[6])
    keys = sorted(acc) if unit is None else (buckets(min(acc), max(acc), unit) if acc else [])
    if unit and spec.range.bounded and acc:
        keys = buckets(spec.range.start, spec.range.end, unit)  # type: ignore[arg-type]
    rows = []
    for k in keys:
        a = acc.get(k, [0, 0, 0.0, 0, 0.0, None])
        row: dict[str, Any] = {"confirmed": a[0], "shipped": a[1], "days_to_ship": _days(a[2], a[1]),
                               "delivered": a[3], "days_to_deliver": _days(a[4], a[3]),
                               "max_days_to_ship": _days(a[5], 1) if a[5] is not None else None}
        if unit:
            row = {"period": bucket_label(k, unit), "start": k.isoformat(),
                   "end": (next_bucket(k, unit) - timedelta(days=1)).isoformat(), **row}
        else:
            row = {"period": "all", **row}
        rows.append(row)
    cols = ([Col("period")] + ([Col("start", "date", "from"), Col("end", "date", "to")] if unit else [])
            + [Col("confirmed", "int"), Col("shipped", "int"), Col("days_to_ship", "decimal", "avg days to ship"),
               Col("max_days_to_ship", "decimal", "max days to ship"), Col("delivered", "int"),
               Col("days_to_deliver", "decimal", "avg days to deliver")])
    tot = [sum(a[i] for a in acc.values()) for i in range(5)]
    mx = max((a[5] for a in acc.values() if a[5] is not None), default=None)
    totals: dict[str, Any] = {c.key: None for c in cols}
    totals.update(period="all", confirmed=tot[0], shipped=tot[1], days_to_ship=_days(tot[2], tot[1]),
                  delivered=tot[3], days_to_deliver=_days(tot[4], tot[3]),
                  max_days_to_ship=_days(mx, 1) if mx is not None else None)
    return Report(f"Days from confirmation to shipment and delivery ({_when(spec)})", cols, rows, totals,
                  measure="days_to_ship", label="period", notes=[
                      "the totals row averages over all orders, not over the periods"] if unit else [])


# --------------------------------------------------------------------------- ageing


def _bucket(days_overdue: int) -> str:
    if days_overdue <= 0:
        return "current"
    if days_overdue <= 30:
        return "1-30"
    if days_overdue <= 60:
        return "31-60"
    if days_overdue <= 90:
        return "61-90"
    return "90+"


def ageing(conn: sqlite3.Connection, spec: Spec, *, as_of: date, by_customer: bool = False,
           limit: int | None = None) -> Report:
    """Receivables (balance = total - returned - paid, on orders neither
    draft nor cancelled) by days past their due date as of ``as_of``:
    current (not yet due, or no due date), 1-30, 31-60, 61-90, over 90.
    Orders dated after ``as_of`` are left out; payments are as recorded now."""
    where, params, join = _where(spec, dates=False)
    where.append("o.order_date <= ?")
    params.append(as_of.isoformat())
    if spec.range.start:
        where.append("o.order_date >= ?")
        params.append(spec.range.start.isoformat())
    # The same condition as the partial index orders_unpaid_date.
    over = "CAST(julianday(?) - julianday(o.due_date) AS INTEGER)"
    bucket = (f"CASE WHEN o.due_date IS NULL OR {over} <= 0 THEN 0 WHEN {over} <= 30 THEN 1"
              f" WHEN {over} <= 60 THEN 2 WHEN {over} <= 90 THEN 3 ELSE 4 END")
    key = "o.customer_id" if by_customer else "NULL"
    sql = (f"SELECT {key}, {bucket} AS b, count(*), sum(o.total_cents - o.returned_cents - o.paid_cents)"
           f" FROM orders o{join} WHERE o.status NOT IN ('draft', 'cancelled')"
           f" AND o.paid_cents < o.total_cents - o.returned_cents{_and(where)} GROUP BY 1, 2")
    day = as_of.isoformat()
    acc: dict[Any, list[int]] = {}
    counts: dict[Any, list[int]] = {}
    for r in conn.execute(sql, [day] * 4 + params):
        acc.setdefault(r[0], [0] * 5)[r[1]] += r[3]
        counts.setdefault(r[0], [0] * 5)[r[1]] += r[2]
    cur = spec.filters.currency
    if not by_customer:
        a, n = acc.get(None, [0] * 5), counts.get(None, [0] * 5)
        total = sum(a)
        rows = [{"bucket": b, "orders": n[i], "balance": a[i], "share_pct": pct(a[i], total), "currency": cur}
                for i, b in enumerate(AGEING_BUCKETS)]
        cols = [Col("bucket", label="days overdue"), Col("orders", "int"), Col("balance", "money"),
                Col("share_pct", "percent", "share"), Col("currency")]
        totals = {"bucket": "total", "orders": sum(n), "balance": total, "share_pct": pct(total, total),
                  "currency": cur}
        return Report(f"Receivables ageing as of {as_of} ({cur})", cols, rows, totals, measure="balance",
                      label="bucket")
    rows = []
    for cid, a in acc.items():
        row: dict[str, Any] = {"customer_id": cid, "orders": sum(counts[cid]), "balance": sum(a), "currency": cur}
        row.update({f"d_{b.replace('-', '_').replace('+', '_plus')}": a[i] for i, b in enumerate(AGEING_BUCKETS)})
        row["overdue"] = sum(a[1:])
        rows.append(row)
    rows.sort(key=lambda r: (-r["overdue"], -r["balance"], r["customer_id"]))
    bcols = [Col(f"d_{b.replace('-', '_').replace('+', '_plus')}", "money", b) for b in AGEING_BUCKETS]
    cols = [Col("customer_id", "int", "id"), Col("customer"), Col("orders", "int"), *bcols, Col("overdue", "money"),
            Col("balance", "money"), Col("currency")]
    sums = ("orders", *[c.key for c in bcols], "overdue", "balance")
    notes: list[str] = []
    if limit is not None and len(rows) > limit:
        rest = rows[limit:]
        other: dict[str, Any] = {c.key: None for c in cols}
        other["customer"] = f"(other {len(rest):,})"
        for k in sums:
            other[k] = sum(r[k] for r in rest)
        other["currency"] = cur
        rows = rows[:limit] + [other]
        notes.append(f"{len(rest):,} more customers are summed in the '(other {len(rest):,})' row")
    _name(conn, rows)
    totals = {c.key: None for c in cols}
    totals["customer"] = "total"
    for k in sums:
        totals[k] = sum(r[k] for r in rows)
    totals["currency"] = cur
    return Report(f"Receivables ageing by customer as of {as_of} ({cur})", cols, rows, totals, measure="overdue",
                  label="customer", notes=notes)
