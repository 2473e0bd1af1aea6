"""What to do next: ``report reorder`` and ``report next-customers``.
No Typer, no Rich.

Reorder point and quantity
--------------------------
For each stocked product, daily demand over the last ``window`` days
(kept units of booked orders by order date, days without sales counted as
zero): mean ``d`` and sample standard deviation ``s``.  With a supplier
lead time of ``L`` days and a cycle service level ``p`` (the chance of not
running out while waiting for a delivery, 95% by default)::

    safety stock   = z(p) x s x sqrt(L)
    reorder point  = d x L + safety stock
    order-up-to    = reorder point + d x cover days
    order quantity = order-up-to - available, when available <= reorder point

``z(p)`` is the standard normal quantile (1.645 for 95%).  This is the
textbook continuous-review (s, S) policy under normally distributed daily
demand and a fixed lead time; it needs no holding or ordering cost.
Quantities are rounded up to whole units.

Next customers
--------------
Customers with at least two orders whose time since their last order is
longer than their own usual interval (the mean gap between their orders),
and customers the RFM scores put in *at risk* or *cannot lose*.  Ranked
by expected value: their average order value, times how many of their usual
orders they have missed (at least one), so that a big customer a week
late and a small one months late both surface.  With their last order and
their open follow-ups (tasks not done).
"""

from __future__ import annotations

import math
import sqlite3
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from statistics import NormalDist
from typing import Any

from salescrm.errors import UsageError
from salescrm.output import Col
from salescrm.reports.common import BOOKED_SQL, Range, Report, Spec, div_round


def _d2(x: float) -> Decimal:
    return Decimal(repr(x)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def reorder(conn: sqlite3.Connection, *, as_of: date, lead_time: int = 14, service: Decimal = Decimal(95),
            window: int = 90, cover: int = 30, category: list[str] | None = None, all_items: bool = False,
            limit: int | None = None) -> Report:
    if lead_time < 0 or window < 2 or cover < 0:
        raise UsageError("--lead-time and --cover must be zero or more, --window at least 2 days")
    if not Decimal(50) <= service < Decimal(100):
        raise UsageError("--service must be at least 50 and below 100 (percent)")
    z = NormalDist().inv_cdf(float(service) / 100)
    start = as_of - timedelta(days=window - 1)
    # daily units per product, then the sum and sum of squares of the days
    sql = (f"SELECT product_id, sum(u), sum(u * u) FROM (SELECT l.product_id, o.order_date,"
           f" sum(l.qty - l.returned_qty) AS u FROM orders o JOIN order_lines l ON l.order_id = o.id"
           f" WHERE o.order_date BETWEEN ? AND ? AND +o.status IN ({BOOKED_SQL})"
           f" GROUP BY l.product_id, o.order_date) GROUP BY product_id")
    dem = {r[0]: (r[1], r[2]) for r in conn.execute(sql, (start.isoformat(), as_of.isoformat()))}
    where, params = ["kind = 'goods'", "active = 1"], []
    if category:
        where.append(f"category IN ({', '.join('?' * len(category))})")
        params += category
    rows = []
    for p in conn.execute("SELECT id, sku, name, category, on_hand, reserved, reorder_level FROM products WHERE "
                          + " AND ".join(where), params):
        total, sumsq = dem.get(p["id"], (0, 0))
        mean = total / window
        var = max((sumsq - total * total / window) / (window - 1), 0.0)
        sd = math.sqrt(var)
        safety = z * sd * math.sqrt(lead_time)
        rop = mean * lead_time + safety
        up_to = rop + mean * cover
        available = p["on_hand"] - p["reserved"]
        need = available <= rop and mean > 0
        qty = max(0, math.ceil(up_to - available - 1e-9)) if need else 0
        rows.append({"sku": p["sku"], "product": p["name"], "category": p["category"], "available": available,
                     "daily_demand": _d2(mean), "demand_sd": _d2(sd), "lead_time_days": lead_time,
                     "service_level_pct": service, "safety_stock": math.ceil(safety - 1e-9),
                     "reorder_point": math.ceil(rop - 1e-9), "order_qty": qty,
                     "days_of_cover": _d2(available / mean) if mean > 0 else None,
                     "action": "reorder now" if qty > 0 else ("no demand" if mean == 0 else "ok")})
    if not all_items:
        rows = [r for r in rows if r["order_qty"] > 0]
    rows.sort(key=lambda r: (r["order_qty"] == 0, r["days_of_cover"] is None,
                             r["days_of_cover"] if r["days_of_cover"] is not None else 0, r["sku"].casefold()))
    notes: list[str] = []
    if limit is not None and len(rows) > limit:
        notes.append(f"{len(rows) - limit:,} more products not shown")
        rows = rows[:limit]
    cols = [Col("sku"), Col("product"), Col("category"), Col("available", "int"),
            Col("daily_demand", "decimal", "per day"), Col("demand_sd", "decimal", "sd"),
            Col("lead_time_days", "int", "lead time"), Col("service_level_pct", "percent", "service"),
            Col("safety_stock", "int", "safety"), Col("reorder_point", "int", "reorder at"),
            Col("order_qty", "int", "order"), Col("days_of_cover", "decimal", "days of cover"), Col("action")]
    totals: dict[str, Any] = {c.key: None for c in cols}
    totals.update(sku="total", order_qty=sum(r["order_qty"] for r in rows))
    return Report(f"Reorder advice as of {as_of}: service level {service}%, lead time {lead_time} days, demand from"
                  f" the last {window} days, order up to {cover} days of cover", cols, rows, totals,
                  measure="order_qty", label="sku", notes=notes, hide=("category", "lead_time_days",
                                                                       "service_level_pct"))


def next_customers(conn: sqlite3.Connection, spec: Spec, *, as_of: date, limit: int | None = 20) -> Report:
    from salescrm.reports.customers import _customer_sql, quintile_scores, segment

    sql, params = _customer_sql(conn, Spec(spec.basis, Range(None, as_of), spec.filters))
    stats = {r["customer_id"]: r for r in conn.execute(sql, params)}
    # RFM from the same figures (one pass over the orders)
    r_score = quintile_scores({c: r["last_order"] for c, r in stats.items()})
    f_score = quintile_scores({c: r["orders"] for c, r in stats.items()})
    slipping = {c for c in stats if segment(r_score[c], f_score[c]) in ("at risk", "cannot lose")}
    cands = []
    for cid, r in stats.items():
        orders, revenue = r["orders"], r["revenue"]
        last = date.fromisoformat(r["last_order"][:10])
        since = (as_of - last).days
        interval = None
        if orders >= 2:
            span = (last - date.fromisoformat(r["first_order"][:10])).days
            interval = Decimal(span) / (orders - 1)
        due = interval is not None and interval > 0 and since > interval
        if not due and cid not in slipping:
            continue
        aov = div_round(revenue, orders) or 0
        missed = max(1, int(Decimal(since) / interval)) if interval else 1
        reasons = []
        if due:
            reasons.append("past their usual interval")
        if cid in slipping:
            reasons.append("slipping (RFM at risk)")
        cands.append({"customer_id": cid, "orders": orders, "last_order": r["last_order"][:10],
                      "days_since": since,
                      "usual_interval_days": interval.quantize(Decimal("0.1"), ROUND_HALF_UP) if interval else None,
                      "overdue_days": int(since - interval) if due and interval is not None else None,
                      "aov": aov, "expected_value": aov * missed, "reason": "; ".join(reasons)})
    cands.sort(key=lambda x: (-x["expected_value"], x["customer_id"]))
    notes: list[str] = []
    if limit is not None and len(cands) > limit:
        notes.append(f"{len(cands) - limit:,} more customers not shown")
        cands = cands[:limit]
    ids = [c["customer_id"] for c in cands]
    info: dict[int, tuple] = {}
    tasks: dict[int, list] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        marks = ", ".join("?" * len(chunk))
        for row in conn.execute(f"SELECT id, name, email, phone FROM customers WHERE id IN ({marks})", chunk):
            info[row[0]] = tuple(row[1:])
        for row in conn.execute(f"SELECT customer_id, due, text FROM tasks WHERE done_at IS NULL AND customer_id IN"
                                f" ({marks}) ORDER BY due, id", chunk):
            tasks.setdefault(row[0], []).append((row[1], row[2]))
    for c in cands:
        name, email, phone = info.get(c["customer_id"], (f"#{c['customer_id']}", None, None))
        t = tasks.get(c["customer_id"], [])
        c.update(customer=name, email=email, phone=phone, open_tasks=len(t),
                 next_task=f"{t[0][0]}: {t[0][1]}" if t else None, currency=spec.filters.currency)
    cols = [Col("customer_id", "int", "id"), Col("customer"), Col("email"), Col("phone"), Col("orders", "int"),
            Col("last_order", "date"), Col("days_since", "int"), Col("usual_interval_days", "decimal", "usual gap"),
            Col("overdue_days", "int", "overdue"), Col("aov", "money", "avg order"),
            Col("expected_value", "money", "expected"), Col("reason"), Col("open_tasks", "int", "tasks"),
            Col("next_task"), Col("currency")]
    totals: dict[str, Any] = {c.key: None for c in cols}
    totals.update(customer="total", expected_value=sum(c["expected_value"] for c in cands),
                  open_tasks=sum(c["open_tasks"] for c in cands), currency=spec.filters.currency)
    return Report(f"Customers to call next as of {as_of} (ranked by expected value)", cols, cands, totals,
                  measure="expected_value", label="customer", notes=notes, hide=("customer_id", "email", "phone", "aov", "orders"))
