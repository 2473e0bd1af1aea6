"""The dashboard: today on one screen.  No Typer, no Rich.

Revenue this month (booked, month to date) against the same days of the
previous month and, when plans exist, against every revenue plan running
today; open orders (as in ``report orders open``); overdue receivables; stock at or below its reorder
level; the top customers of the last 90 days; revenue for the last twelve
months.  Each figure is one indexed query.
"""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta
from typing import Any

from salescrm.reports.common import (
    BOOKED_SQL,
    OPEN_SQL,
    Filters,
    Range,
    Spec,
    bucket_label,
    bucket_start,
    buckets,
    next_bucket,
    order_revenue_sql,
    pct,
    revenue_series,
)


def _month_ago(d: date) -> date:
    first = next_bucket(bucket_start(d, "month"), "month", -1)
    last = bucket_start(d, "month") - timedelta(days=1)
    return min(first.replace(day=d.day) if d.day <= last.day else last, last)


def _plans(conn: sqlite3.Connection, today: date) -> list[dict[str, Any]] | None:
    """Revenue plans running today, or None when there are no plans at all."""
    has = conn.execute("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'plans'").fetchone()
    if not has or not conn.execute("SELECT 1 FROM plans LIMIT 1").fetchone():
        return None
    try:
        from salescrm import plans
    except ImportError:  # pragma: no cover - the plans module ships with its table
        return None
    from salescrm.errors import SalesError

    out = []
    try:
        running = plans.status_all(conn, today=today, current_only=True)
    except SalesError:  # a plan that cannot be measured must not take the dashboard down
        return None
    for s in running:
        if s["metric"] != "revenue":
            continue
        out.append({"name": s["name"], "target": s["target"], "achieved": s["achieved"],
                    "attainment_pct": s["attainment_pct"], "expected": s["expected"], "state": s["state"],
                    "period_end": s["period_end"], "scope": s["scope"]})
    return out


def dashboard(conn: sqlite3.Connection, *, today: date, currency: str) -> dict[str, Any]:
    f = Filters(currency=currency)
    month = bucket_start(today, "month")
    mtd = sum(revenue_series(conn, Spec("booked", Range(month, today), f)).values())
    prev_start = next_bucket(month, "month", -1)
    prev_mtd = sum(revenue_series(conn, Spec("booked", Range(prev_start, _month_ago(today)), f)).values())
    orders_mtd = conn.execute(
        f"SELECT count(*) FROM orders WHERE order_date BETWEEN ? AND ? AND status IN ({BOOKED_SQL})"
        " AND currency = ?", (month.isoformat(), today.isoformat(), currency)).fetchone()[0]

    open_orders = conn.execute(
        "SELECT count(*), coalesce(sum(total_cents - returned_cents), 0) FROM orders"
        f" WHERE status IN ({OPEN_SQL}) AND currency = ?", (currency,)).fetchone()
    to_ship = conn.execute(
        "SELECT count(*) FROM orders WHERE status = 'confirmed' AND currency = ?", (currency,)).fetchone()[0]
    # one pass over the partial index orders_unpaid_date (its very condition);
    # "+due_date" keeps the planner off the due-date index, which would read
    # every order ever due
    overdue_n, overdue_amt, oldest_due, receivable = conn.execute(
        "SELECT count(CASE WHEN +due_date < ? THEN 1 END),"
        " coalesce(sum(CASE WHEN +due_date < ? THEN total_cents - returned_cents - paid_cents END), 0),"
        " min(CASE WHEN +due_date < ? THEN due_date END),"
        " coalesce(sum(total_cents - returned_cents - paid_cents), 0)"
        " FROM orders WHERE status NOT IN ('draft', 'cancelled') AND paid_cents < total_cents - returned_cents"
        " AND currency = ?", (today.isoformat(),) * 3 + (currency,)).fetchone()
    overdue = (overdue_n, overdue_amt, oldest_due)
    low = conn.execute(
        "SELECT sku, name, on_hand - reserved AS available, reorder_level FROM products"
        " WHERE active = 1 AND kind = 'goods' AND on_hand - reserved <= reorder_level"
        " ORDER BY on_hand - reserved - reorder_level, sku_key").fetchall()
    since = today - timedelta(days=89)
    top = conn.execute(
        f"SELECT cid, count(*) AS orders, sum(rev) AS revenue FROM (SELECT o.customer_id AS cid,"
        f" {order_revenue_sql()} AS rev FROM orders o WHERE o.order_date BETWEEN ? AND ?"
        f" AND +o.status IN ({BOOKED_SQL}) AND o.currency = ? LIMIT -1) GROUP BY cid"
        f" ORDER BY revenue DESC, cid LIMIT 5", (since.isoformat(), today.isoformat(), currency)).fetchall()
    names = dict(conn.execute(f"SELECT id, name FROM customers WHERE id IN ({', '.join('?' * len(top))})",
                              [t[0] for t in top]).fetchall()) if top else {}
    first = next_bucket(month, "month", -11)
    by_day = revenue_series(conn, Spec("booked", Range(first, today), f))
    months = {b: 0 for b in buckets(first, today, "month")}
    for d, v in by_day.items():
        months[bucket_start(d, "month")] += v
    return {
        "today": today.isoformat(),
        "currency": currency,
        "revenue_month": mtd,
        "orders_month": orders_mtd,
        "revenue_prev_month_same_days": prev_mtd,
        "revenue_change_pct": pct(mtd - prev_mtd, prev_mtd) if prev_mtd else None,
        "plans": _plans(conn, today),
        "open_orders": open_orders[0],
        "open_value": open_orders[1],
        "orders_to_ship": to_ship,
        "overdue_orders": overdue[0],
        "overdue_amount": overdue[1],
        "oldest_due": overdue[2],
        "receivables": receivable,
        "low_stock": [{"sku": r[0], "product": r[1], "available": r[2], "reorder_level": r[3]} for r in low],
        "top_customers": [{"customer_id": r[0], "customer": names.get(r[0], f"#{r[0]}"), "orders": r[1],
                           "revenue": r[2]} for r in top],
        "months": [{"month": bucket_label(b, "month"), "revenue": v} for b, v in months.items()],
    }


def rows(d: dict[str, Any]) -> list[dict[str, Any]]:
    """The dashboard as metric rows for machine formats: section, metric,
    value (plain), kind, detail."""
    cur = d["currency"]
    out: list[dict[str, Any]] = []

    def add(section: str, metric: str, value: Any, kind: str, detail: str | None = None) -> None:
        out.append({"section": section, "metric": metric, "value": value, "kind": kind,
                    "currency": cur if kind == "money" else None, "detail": detail})

    add("revenue", "revenue_month_to_date", d["revenue_month"], "money", d["today"][:7])
    add("revenue", "orders_month_to_date", d["orders_month"], "int")
    add("revenue", "revenue_previous_month_same_days", d["revenue_prev_month_same_days"], "money")
    add("revenue", "change_pct", d["revenue_change_pct"], "percent")
    for p in d["plans"] or []:
        add("plan", "target", p["target"], "money", p["name"])
        add("plan", "achieved", p["achieved"], "money", p["name"])
        add("plan", "attainment_pct", p["attainment_pct"], "percent", p["name"])
    add("orders", "open_orders", d["open_orders"], "int")
    add("orders", "open_value", d["open_value"], "money")
    add("orders", "orders_to_ship", d["orders_to_ship"], "int")
    add("receivables", "overdue_orders", d["overdue_orders"], "int")
    add("receivables", "overdue_amount", d["overdue_amount"], "money", d["oldest_due"])
    add("receivables", "receivables", d["receivables"], "money")
    add("stock", "low_stock_items", len(d["low_stock"]), "int")
    for s in d["low_stock"][:5]:
        add("stock", "low_stock", s["available"], "int", s["sku"])
    for c in d["top_customers"]:
        add("top_customers", "revenue_90_days", c["revenue"], "money", c["customer"])
    for m in d["months"]:
        add("months", "revenue", m["revenue"], "money", m["month"])
    return out
