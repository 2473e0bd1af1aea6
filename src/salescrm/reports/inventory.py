"""``report inventory``: on hand, reserved, available, stock value at cost,
items at or below their reorder level, and days of cover from the last 90
days of sales.  No Typer, no Rich.

On hand and reserved are the ledger's cached levels on ``products`` (kept
in step with ``stock_movements`` by a trigger; ``db check`` verifies them).
Demand is the kept units (ordered less returned) of booked orders dated in
the window; days of cover = available / (demand / window days).
"""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from salescrm.errors import UsageError
from salescrm.output import Col
from salescrm.reports.common import BOOKED_SQL, Report, parse_sort, sort_rows


def demand(conn: sqlite3.Connection, start: date, end: date, *, category: list[str] | None = None) -> dict[int, int]:
    """Kept units per product in booked orders dated ``start``..``end``."""
    sql = ("SELECT l.product_id, sum(l.qty - l.returned_qty) FROM orders o JOIN order_lines l ON l.order_id = o.id"
           f" WHERE o.order_date BETWEEN ? AND ? AND +o.status IN ({BOOKED_SQL}) GROUP BY l.product_id")
    return {r[0]: r[1] for r in conn.execute(sql, (start.isoformat(), end.isoformat()))}


def inventory(conn: sqlite3.Connection, *, as_of: date, window: int = 90, category: list[str] | None = None,
              low_only: bool = False, include_services: bool = False, sort: str | None = None,
              limit: int | None = None, currency: str = "") -> Report:
    if window <= 0:
        raise UsageError("--window must be a positive number of days")
    sold = demand(conn, as_of - timedelta(days=window - 1), as_of)
    where = ["active = 1"]
    params: list[Any] = []
    if not include_services:
        where.append("kind = 'goods'")
    if category:
        where.append(f"category IN ({', '.join('?' * len(category))})")
        params += category
    if low_only:
        where.append("on_hand - reserved <= reorder_level")
    sql = ("SELECT id, sku, name, category, unit, on_hand, reserved, on_hand - reserved AS available, reorder_level,"
           " unit_cost FROM products WHERE " + " AND ".join(where))
    rows = []
    for r in conn.execute(sql, params):
        units = sold.get(r["id"], 0)
        rate = Decimal(units) / window
        cover = None
        if rate > 0:
            cover = (Decimal(max(r["available"], 0)) / rate).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
        rows.append({"sku": r["sku"], "product": r["name"], "category": r["category"], "on_hand": r["on_hand"],
                     "reserved": r["reserved"], "available": r["available"], "reorder_level": r["reorder_level"],
                     "unit_cost": r["unit_cost"], "stock_value": r["on_hand"] * r["unit_cost"],
                     "sold": units, "per_day": rate.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP),
                     "days_of_cover": cover, "low": r["available"] <= r["reorder_level"], "currency": currency})
    allowed = ("sku", "product", "category", "on_hand", "available", "stock_value", "sold", "days_of_cover",
               "reorder_level")
    key, desc = parse_sort(sort, allowed, "+sku")
    if sort is None:
        # the most urgent first: at or below the reorder level, then the fewest days of cover
        rows.sort(key=lambda x: (not x["low"], x["days_of_cover"] is None,
                                 x["days_of_cover"] if x["days_of_cover"] is not None else 0, x["sku"].casefold()))
    else:
        sort_rows(rows, key, desc)
    cols = [Col("sku"), Col("product"), Col("category"), Col("on_hand", "int"), Col("reserved", "int"),
            Col("available", "int"), Col("reorder_level", "int", "reorder at"), Col("low", "bool", "low"),
            Col("unit_cost", "money"), Col("stock_value", "money"), Col("sold", "int", f"sold {window}d"),
            Col("per_day", "decimal"), Col("days_of_cover", "decimal", "days of cover"), Col("currency")]
    notes: list[str] = []
    low = sum(1 for x in rows if x["low"])
    if low:
        notes.append(f"{low:,} item{'s' if low != 1 else ''} at or below the reorder level")
    sums = ("on_hand", "reserved", "available", "stock_value", "sold")
    if limit is not None and len(rows) > limit:
        rest = rows[limit:]
        other: dict[str, Any] = {c.key: None for c in cols}
        other["sku"] = f"(other {len(rest):,})"
        other["currency"] = currency
        for k in sums:
            other[k] = sum(x[k] for x in rest)
        rows = rows[:limit] + [other]
        notes.append(f"{len(rest):,} more products are summed in the '(other {len(rest):,})' row")
    totals: dict[str, Any] = {c.key: None for c in cols}
    totals["sku"] = "total"
    totals["currency"] = currency
    for k in sums:
        totals[k] = sum(x[k] or 0 for x in rows)
    return Report(f"Inventory as of {as_of} (demand from the last {window} days)", cols, rows, totals,
                  measure="stock_value", label="sku", notes=notes, hide=("category", "reserved", "unit_cost", "per_day"))
