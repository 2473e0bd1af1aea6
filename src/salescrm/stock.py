"""The stock ledger.  No Typer, no Rich.

Every change of stock is one row in ``stock_movements``:

========  =================  ==================
kind      on hand            reserved
========  =================  ==================
receive   + qty              
adjust    + qty (signed)     
reserve                      + qty
release                      - qty
ship      - qty              - qty
return    + qty              
========  =================  ==================

On hand and reserved are cached on ``products`` by a trigger on insert;
available = on hand - reserved.  ``check_ledger`` recomputes both from the
movements (``db check``).  The ledger is append-only.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import Iterator
from typing import Any

from salescrm import db, products, validate
from salescrm.errors import BusinessRule, ValidationError

KINDS = ("receive", "adjust", "reserve", "release", "ship", "return")
MAX_QTY = 1_000_000_000

ON_HAND_SQL = (
    "CASE kind WHEN 'receive' THEN qty WHEN 'adjust' THEN qty WHEN 'return' THEN qty"
    " WHEN 'ship' THEN -qty ELSE 0 END"
)
RESERVED_SQL = "CASE kind WHEN 'reserve' THEN qty WHEN 'release' THEN -qty WHEN 'ship' THEN -qty ELSE 0 END"


@functools.lru_cache(maxsize=1)
def os_user() -> str:
    """``db.os_user()`` once per process (a passwd lookup each time is slow)."""
    return db.os_user()


def parse_qty(text: str | int, *, field: str = "quantity", allow_negative: bool = False) -> int:
    """A whole number of units from text: '3' -> 3.  Zero is refused; a
    negative number only with ``allow_negative`` (adjustments)."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        s = str(text).strip()
        if not re.fullmatch(r"[+-]?\d+", s):
            if re.fullmatch(r"[+-]?\d*\.\d+", s):
                raise ValidationError(f"{field} must be a whole number of units, not {s}")
            raise ValidationError(f"{field} is not a number: {s!r}", "write a whole number such as 3")
        value = int(s)
    if value == 0:
        raise ValidationError(f"{field} must not be zero")
    if value < 0 and not allow_negative:
        raise ValidationError(f"{field} must be positive, not {value}")
    if abs(value) > MAX_QTY:
        raise ValidationError(f"{field} is too large: {value}")
    return value


def record(
    conn: sqlite3.Connection,
    product_id: int,
    kind: str,
    qty: int,
    *,
    order_id: int | None = None,
    line_id: int | None = None,
    reason: str | None = None,
    at: str | None = None,
) -> int:
    """Append one movement (the trigger updates the product's cache)."""
    assert conn.in_transaction, "stock.record must run inside db.write_tx"
    if kind not in KINDS:
        raise ValueError(f"unknown movement kind {kind!r}")
    cur = conn.execute(
        "INSERT INTO stock_movements (product_id, kind, qty, order_id, line_id, reason, at, os_user)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (product_id, kind, qty, order_id, line_id, reason, at or db.now_iso(), os_user()),
    )
    return int(cur.lastrowid or 0)


def _goods(conn: sqlite3.Connection, sku: str) -> dict[str, Any]:
    p = products.get(conn, sku)
    if p["kind"] != "goods":
        raise ValidationError(f"{p['sku']} is a service: it has no stock")
    return p


def receive(conn: sqlite3.Connection, sku: str, qty: int, *, note: str | None = None,
            at: str | None = None) -> dict[str, Any]:
    """Goods in.  Returns the product with its new levels."""
    assert conn.in_transaction, "stock.receive must run inside db.write_tx"
    p = _goods(conn, sku)
    qty = parse_qty(qty)
    mid = record(conn, p["id"], "receive", qty,
                 reason=validate.text(note, field="note", max_len=500), at=at)
    db.audit(conn, "receive", "stock_movement", mid)
    return products.get_by_id(conn, p["id"])


def adjust(conn: sqlite3.Connection, sku: str, qty: int, *, reason: str) -> dict[str, Any]:
    """A correction (stock-take, damage, loss): signed quantity, a reason required.
    On hand may not go below zero."""
    assert conn.in_transaction, "stock.adjust must run inside db.write_tx"
    p = _goods(conn, sku)
    qty = parse_qty(qty, allow_negative=True)
    why = validate.text(reason, field="reason", max_len=500, required=True)
    if p["on_hand"] + qty < 0:
        raise BusinessRule(
            f"cannot take {-qty} off {p['sku']}: only {p['on_hand']} on hand",
            f"the largest decrease is -{p['on_hand']}",
        )
    mid = record(conn, p["id"], "adjust", qty, reason=why)
    db.audit(conn, "adjust", "stock_movement", mid)
    return products.get_by_id(conn, p["id"])


def movements(conn: sqlite3.Connection, sku: str, *, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """A product's movements, newest first, with the running on hand and reserved."""
    p = products.get(conn, sku)
    sql = (
        "SELECT m.id, m.at, m.kind, m.qty, o.number AS order_number, m.reason, m.os_user,"
        f" sum({ON_HAND_SQL.replace('kind', 'm.kind').replace('qty', 'm.qty')})"
        "   OVER (ORDER BY m.id) AS on_hand,"
        f" sum({RESERVED_SQL.replace('kind', 'm.kind').replace('qty', 'm.qty')})"
        "   OVER (ORDER BY m.id) AS reserved"
        " FROM stock_movements m LEFT JOIN orders o ON o.id = m.order_id"
        " WHERE m.product_id = ? ORDER BY m.id DESC"
    )
    params: list[Any] = [p["id"]]
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    for row in conn.execute(sql, params):
        yield dict(row)


def levels_from_ledger(conn: sqlite3.Connection, product_id: int) -> tuple[int, int]:
    row = conn.execute(
        f"SELECT coalesce(sum({ON_HAND_SQL}), 0), coalesce(sum({RESERVED_SQL}), 0)"
        " FROM stock_movements WHERE product_id = ?",
        (product_id,),
    ).fetchone()
    return int(row[0]), int(row[1])


def check_ledger(conn: sqlite3.Connection) -> list[str]:
    """``db check``: on hand and reserved on every product equal the sums of
    its movements; no service holds stock; no negative level."""
    problems = []
    sql = (
        "SELECT p.id, p.sku, p.on_hand, p.reserved,"
        f" coalesce(l.on_hand, 0), coalesce(l.reserved, 0)"
        " FROM products p LEFT JOIN ("
        f"   SELECT product_id, sum({ON_HAND_SQL}) AS on_hand, sum({RESERVED_SQL}) AS reserved"
        "   FROM stock_movements GROUP BY product_id) l ON l.product_id = p.id"
        " WHERE p.on_hand IS NOT coalesce(l.on_hand, 0) OR p.reserved IS NOT coalesce(l.reserved, 0)"
    )
    for pid, sku, on_hand, reserved, l_on, l_res in conn.execute(sql):
        problems.append(
            f"stock: product {pid} ({sku}) shows on hand {on_hand}, reserved {reserved};"
            f" its ledger says {l_on}, {l_res}"
        )
    for (pid,) in conn.execute(
        "SELECT DISTINCT m.product_id FROM stock_movements m JOIN products p ON p.id = m.product_id"
        " WHERE p.kind = 'service'"
    ):
        problems.append(f"stock: service product {pid} has stock movements")
    # reservations per order line must match what is still to ship on open orders
    sql = (
        "WITH h AS (SELECT line_id, sum(" + RESERVED_SQL + ") AS held FROM stock_movements"
        "   WHERE line_id IS NOT NULL GROUP BY line_id)"
        " SELECT l.id, o.number, coalesce(h.held, 0),"
        "  CASE WHEN o.status IN ('confirmed', 'partially_shipped') THEN l.qty - l.shipped_qty ELSE 0 END"
        " FROM order_lines l JOIN orders o ON o.id = l.order_id"
        " JOIN products p ON p.id = l.product_id AND p.kind = 'goods'"
        " LEFT JOIN h ON h.line_id = l.id"
        " WHERE coalesce(h.held, 0) <> CASE WHEN o.status IN ('confirmed', 'partially_shipped')"
        "   THEN l.qty - l.shipped_qty ELSE 0 END"
    )
    for line_id, number, held, expected in conn.execute(sql):
        problems.append(f"stock: order {number} line {line_id} holds {held} reserved; expected {expected}")
    return problems
