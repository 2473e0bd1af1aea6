"""Orders: lines and totals, confirm, ship, deliver, cancel, return, pay,
invoices, and the queries behind ``order show`` and ``order list``.
No Typer, no Rich.

Money
-----
All amounts are int cents; arithmetic in between is ``Decimal``, never
float.  Per line::

    gross    = qty x unit price                        (exact)
    amount   = gross - discount, rounded half-up once  (percent discounts)
    tax-exclusive prices:  net = amount, tax = round(net x rate), total = net + tax
    tax-inclusive prices:  total = amount, net = round(total / (1 + rate)), tax = total - net

    order total = sum(line net) + sum(line tax) + shipping + adjustments

so the parts always add up to the total, to the cent.  Order-level
adjustments (a discount or surcharge, percent of the lines' total or an
amount) are not taxed.  A return credits the returned units' share of the
line (net and tax apportioned cumulatively, so returning every unit credits
exactly the line) plus the same share of the order-level adjustments;
shipping is not credited.

Transactions
------------
Write functions need an open write transaction (``db.write_tx``) and never
open one, so that a whole command is atomic; every state change asks
``salescrm.lifecycle`` first and appends an ``order_events`` row.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from salescrm import db, lifecycle, money, products, promotions, stock, validate
from salescrm.errors import BusinessRule, Conflict, NotFound, ValidationError

# --------------------------------------------------------------------------- value types


class OrderRef(NamedTuple):
    id: int
    number: str


@dataclass(frozen=True)
class LineSpec:
    """A line to add: ``unit_price`` in cents (None = the list price); at
    most one of ``discount_pct`` (Decimal percent) and ``discount_cents``
    (an amount off the whole line)."""

    sku: str
    qty: int
    unit_price: int | None = None
    discount_pct: Decimal | None = None
    discount_cents: int | None = None


@dataclass(frozen=True)
class LineAmounts:
    gross: int
    discount: int
    net: int
    tax: int
    total: int


# --------------------------------------------------------------------------- parsing


def parse_discount(text: str, *, field: str = "discount") -> tuple[Decimal | None, int | None]:
    """'10%' -> (Decimal('10'), None); '1.50' -> (None, 150)."""
    s = str(text).strip()
    if s.endswith("%"):
        return money.parse_percent(s, field=field), None
    if s.startswith("-"):
        raise ValidationError(f"{field} must not be negative: {s}")
    return None, money.parse_money(s, field=field)


def parse_line(spec: str) -> LineSpec:
    """``SKU:QTY[@PRICE][-DISC%|-AMOUNT]`` -> LineSpec.

    ``GT-250:3``, ``MUG-01:1@12.00``, ``MUG-01:2@12.00-10%``, ``MUG-01:2-1.50``.
    """
    s = str(spec).strip()
    sku, sep, rest = s.partition(":")
    if not sep or not sku.strip():
        raise ValidationError(f"not a line: {s!r}", "write SKU:QTY[@PRICE][-DISCOUNT%], e.g. GT-250:3@5.90-10%")
    sku = products.check_sku(sku)
    rest = rest.strip()
    if not rest:
        raise ValidationError(f"line {s!r} has no quantity", "write SKU:QTY, e.g. GT-250:3")
    if rest.startswith("-") or rest.startswith("+"):
        m = re.match(r"[+-]\d*(\.\d+)?", rest)
        shown = m.group(0) if m else rest
        if rest.startswith("-"):
            raise ValidationError(f"quantity must be positive, not {shown} (line {s!r})")
        rest = rest[1:]
    price_text = disc_text = None
    if "@" in rest:
        qty_text, _, after = rest.partition("@")
        if after.startswith("-"):
            raise ValidationError(f"unit price must not be negative (line {s!r})")
        price_text, dash, disc = after.partition("-")
        disc_text = disc if dash else None
    else:
        qty_text, dash, disc = rest.partition("-")
        disc_text = disc if dash else None
    qty = stock.parse_qty(qty_text, field=f"quantity in line {s!r}")
    unit_price = None
    if price_text is not None:
        unit_price = money.parse_money(price_text, field=f"unit price in line {s!r}")
    pct = cents = None
    if disc_text is not None:
        pct, cents = parse_discount(disc_text, field=f"discount in line {s!r}")
    return LineSpec(sku=sku, qty=qty, unit_price=unit_price, discount_pct=pct, discount_cents=cents)


def parse_ship_line(spec: str) -> tuple[str, int]:
    """``SKU:QTY`` for ship and return."""
    s = str(spec).strip()
    sku, sep, qty = s.partition(":")
    if not sep:
        raise ValidationError(f"not SKU:QTY: {s!r}", "e.g. GT-250:2")
    return products.check_sku(sku), stock.parse_qty(qty, field=f"quantity in {s!r}")


def _as_spec(item: LineSpec | str | dict) -> LineSpec:
    if isinstance(item, LineSpec):
        return item
    if isinstance(item, str):
        return parse_line(item)
    if isinstance(item, dict):
        return LineSpec(**item)
    raise TypeError(f"not a line: {item!r}")


# --------------------------------------------------------------------------- arithmetic (pure)


def line_amounts(
    qty: int,
    unit_price: int,
    *,
    tax_rate: Decimal,
    tax_inclusive: bool = False,
    discount_pct: Decimal | None = None,
    discount_cents: int | None = None,
) -> LineAmounts:
    """The money of one line, rounded half-up once per step."""
    if qty <= 0:
        raise ValidationError("quantity must be positive")
    if unit_price < 0:
        raise ValidationError("unit price must not be negative")
    if discount_pct is not None and discount_cents is not None:
        raise ValidationError("give a percent or an amount discount, not both")
    gross = qty * unit_price
    if discount_pct is not None:
        if not Decimal(0) <= discount_pct <= 100:
            raise ValidationError("a discount percent must be between 0 and 100")
        amount = money.round_cents(Decimal(gross) * (100 - discount_pct) / 100)
    elif discount_cents is not None:
        if discount_cents < 0:
            raise ValidationError("a discount must not be negative")
        if discount_cents > gross:
            raise ValidationError(
                f"the discount {money.fmt(discount_cents)} is more than the line's {money.fmt(gross)}"
            )
        amount = gross - discount_cents
    else:
        amount = gross
    if tax_inclusive:
        total = amount
        net = money.round_cents(Decimal(amount) * 100 / (100 + tax_rate))
        tax = total - net
    else:
        net = amount
        tax = money.round_cents(Decimal(net) * tax_rate / 100)
        total = net + tax
    return LineAmounts(gross=gross, discount=gross - amount, net=net, tax=tax, total=total)


def adjustment_amount(kind: str, percent: Decimal | None, amount: int | None, lines_total: int) -> int:
    """Signed cents of an order-level adjustment (a discount is negative)."""
    if percent is not None:
        value = money.round_cents(Decimal(lines_total) * percent / 100)
    else:
        value = int(amount or 0)
    return -value if kind == "discount" else value


def apportion(whole: int, part: int, of: int) -> int:
    """round(whole x part / of), half-up: the cumulative share used for returns."""
    if of == 0:
        return 0
    return money.round_cents(Decimal(whole) * part / of)


# --------------------------------------------------------------------------- lookups


def resolve_customer(conn: sqlite3.Connection, ref: int | str) -> sqlite3.Row:
    """A customer by id or e-mail (case-insensitive)."""
    if isinstance(ref, int) and not isinstance(ref, bool):
        cid, key = ref, None
    else:
        s = str(ref).strip()
        cid = int(s) if s.isdigit() else None
        key = validate.email_key(s)
    row = conn.execute(
        "SELECT id, name, archived_at, forgotten_at, credit_limit, payment_terms_days"
        " FROM customers WHERE id = ? OR email_key = ?",
        (cid, key),
    ).fetchone()
    if row is None:
        raise NotFound(f"no customer {str(ref).strip()!r}", "give a customer id or e-mail; see 'salescrm customer list'")
    return row


def _check_customer_usable(row: sqlite3.Row) -> None:
    if row["forgotten_at"] or row["archived_at"]:
        raise BusinessRule(f"customer {row['id']} is archived: no new orders",
                           "restore the customer first, or choose another")


def normalize_number(ref: str) -> str:
    return str(ref).strip().upper()


def find_order(conn: sqlite3.Connection, ref: int | str) -> sqlite3.Row | None:
    """By number (``SO-000123``, ``so-123``, any imported number) or by id."""
    if isinstance(ref, int) and not isinstance(ref, bool):
        return conn.execute("SELECT * FROM orders WHERE id = ?", (ref,)).fetchone()
    s = str(ref).strip()
    row = conn.execute("SELECT * FROM orders WHERE number = ?", (s,)).fetchone()
    if row is None and s.upper() != s:
        row = conn.execute("SELECT * FROM orders WHERE number = ?", (s.upper(),)).fetchone()
    if row is None:
        m = re.fullmatch(r"(?i)SO-?0*(\d{1,12})", s)
        if m:
            row = conn.execute("SELECT * FROM orders WHERE number = ?", (format_number(int(m.group(1))),)).fetchone()
    if row is None and s.isdigit():
        row = conn.execute("SELECT * FROM orders WHERE id = ?", (int(s),)).fetchone()
    return row


def _order(conn: sqlite3.Connection, ref: int | str) -> sqlite3.Row:
    row = find_order(conn, ref)
    if row is None:
        raise NotFound(f"no order {str(ref).strip()!r}", "see 'salescrm order list'")
    return row


def format_number(n: int) -> str:
    return f"SO-{n:06d}"


def _next_number(conn: sqlite3.Connection) -> str:
    n = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM orders").fetchone()[0]
    while True:
        number = format_number(n)
        if not conn.execute("SELECT 1 FROM orders WHERE number = ?", (number,)).fetchone():
            return number
        n += 1


def _lines(conn: sqlite3.Connection, order_id: int) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT l.*, p.kind, p.active, p.sku_key FROM order_lines l JOIN products p ON p.id = l.product_id"
        " WHERE l.order_id = ? ORDER BY l.line_no",
        (order_id,),
    ).fetchall()


# --------------------------------------------------------------------------- events


def event(conn: sqlite3.Connection, order_id: int, kind: str, detail: str | None = None,
          from_status: str | None = None, to_status: str | None = None) -> None:
    """Append one row to the order's history (``order history``)."""
    conn.execute(
        "INSERT INTO order_events (order_id, at, os_user, kind, from_status, to_status, detail)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (order_id, db.now_iso(), stock.os_user(), kind, from_status, to_status, detail),
    )


def _require_tx(conn: sqlite3.Connection, what: str) -> None:
    assert conn.in_transaction, f"orders.{what} must run inside db.write_tx"


def _when(at: str | None, field: str = "time") -> str:
    return validate.parse_datetime(at, field=field) if at else db.now_iso()


def _qty_text(q: int) -> str:
    return f"{q:,}"


# --------------------------------------------------------------------------- create and edit


def create(
    conn: sqlite3.Connection,
    *,
    customer: int | str,
    lines: Iterable[LineSpec | str | dict] = (),
    channel: str | None = None,
    salesperson: str | None = None,
    order_date: str | date | None = None,
    currency: str | None = None,
    notes: str | None = None,
    shipping: int = 0,
    discount: str | None = None,
    number: str | None = None,
    coupon: str | None = None,
    apply_promotions: bool = True,
) -> OrderRef:
    """A new draft order.  ``customer`` is an id or e-mail; ``lines`` are
    LineSpec, ``"SKU:QTY[@PRICE][-DISC]"`` strings or dicts; ``shipping`` is
    cents; ``discount`` is ``"10%"`` or an amount ``"5.00"`` off the order.
    ``number`` (for imports) defaults to the next ``SO-000123``.  ``coupon``
    enters a coupon code (``promotions.set_coupon``: an unknown code refuses
    the whole order).  ``apply_promotions=False`` prices the order as given
    and applies no promotion (imports: the file is the truth)."""
    _require_tx(conn, "create")
    from salescrm import settings

    cust = resolve_customer(conn, customer)
    _check_customer_usable(cust)
    ch = _channel(conn, channel)
    day = validate.parse_date(order_date, field="order date").isoformat() if order_date else date.today().isoformat()
    cur_code = settings._currency(currency, "currency") if currency else settings.get(conn, "currency")
    if number is not None:
        number = validate.text(number, field="order number", max_len=40, required=True)
        if conn.execute("SELECT 1 FROM orders WHERE number = ?", (number,)).fetchone():
            raise Conflict(f"order {number} already exists")
    else:
        number = _next_number(conn)
    shipping = _shipping(shipping)
    now = db.now_iso()
    cur = conn.execute(
        "INSERT INTO orders (number, customer_id, status, channel, salesperson, order_date, currency,"
        " tax_inclusive, notes, shipping_cents, total_cents, created_at, updated_at)"
        " VALUES (?, ?, 'draft', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (number, cust["id"], ch, validate.text(salesperson, field="salesperson", max_len=100), day, cur_code,
         1 if settings.get(conn, "tax_inclusive") else 0, validate.text(notes, field="notes", max_len=4000),
         shipping, shipping, now, now),
    )
    oid = int(cur.lastrowid or 0)
    event(conn, oid, "create", f"draft order for customer {cust['id']}, channel {ch}", None, "draft")
    db.audit(conn, "create", "order", oid)
    order = conn.execute("SELECT * FROM orders WHERE id = ?", (oid,)).fetchone()
    for item in lines:
        _insert_line(conn, order, _as_spec(item))
    if discount:
        _set_discount(conn, oid, discount)
    recalc(conn, oid)
    if coupon is not None and coupon.strip():
        if not apply_promotions:
            raise ValidationError("a coupon needs promotions applied to the order")
        promotions.set_coupon(conn, oid, coupon)  # applies the promotions, the coupon's included
    elif apply_promotions:
        promotions.apply_to_order(conn, oid)
    return OrderRef(oid, number)


def _channel(conn: sqlite3.Connection, channel: str | None) -> str:
    from salescrm import settings

    allowed = settings.get(conn, "channels")
    if channel is None:
        return allowed[0]
    ch = channel.strip().lower()
    if ch not in allowed:
        raise ValidationError(f"unknown channel {channel!r}",
                              "use one of: " + ", ".join(allowed) + " (or add it with 'settings set channels')")
    return ch


def _shipping(value: int | None) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("shipping must be an amount in cents")
    if value < 0:
        raise ValidationError("shipping must not be negative")
    return value


def _insert_line(conn: sqlite3.Connection, order: sqlite3.Row, spec: LineSpec) -> int:
    p = products.get(conn, spec.sku)
    if not p["active"]:
        raise BusinessRule(f"product {p['sku']} is archived: it cannot be ordered",
                           "restore it with 'product edit --active' or choose another")
    qty = stock.parse_qty(spec.qty)
    price = p["list_price"] if spec.unit_price is None else spec.unit_price
    if isinstance(price, bool) or not isinstance(price, int) or price < 0:
        raise ValidationError(f"unit price of {p['sku']} must be an amount of zero or more")
    a = line_amounts(qty, price, tax_rate=p["tax_rate"], tax_inclusive=bool(order["tax_inclusive"]),
                     discount_pct=spec.discount_pct, discount_cents=spec.discount_cents)
    line_no = conn.execute("SELECT coalesce(max(line_no), 0) + 1 FROM order_lines WHERE order_id = ?",
                           (order["id"],)).fetchone()[0]
    cur = conn.execute(
        "INSERT INTO order_lines (order_id, line_no, product_id, sku, description, qty, unit_price, unit_cost,"
        " discount_pct, gross_cents, discount_cents, tax_rate, net_cents, tax_cents, total_cents)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (order["id"], line_no, p["id"], p["sku"], p["name"], qty, price, p["unit_cost"],
         products.rate_text(spec.discount_pct) if spec.discount_pct is not None else None,
         a.gross, a.discount, products.rate_text(p["tax_rate"]), a.net, a.tax, a.total),
    )
    disc = ""
    if spec.discount_pct is not None:
        disc = f" -{products.rate_text(spec.discount_pct)}%"
    elif spec.discount_cents:
        disc = f" -{money.fmt(spec.discount_cents)}"
    event(conn, order["id"], "line", f"added line {line_no}: {p['sku']} x {qty} @ {money.fmt(price)}{disc}")
    db.audit(conn, "create", "order_line", cur.lastrowid)
    return line_no


def _set_discount(conn: sqlite3.Connection, order_id: int, spec: str | None) -> None:
    """Replace the order-level discount (``None``/``"0"`` removes it)."""
    conn.execute("DELETE FROM order_adjustments WHERE order_id = ? AND kind = 'discount'", (order_id,))
    if spec is None or str(spec).strip() in ("", "0", "0%", "0.00"):
        return
    pct, cents = parse_discount(str(spec), field="order discount")
    desc = f"Discount {products.rate_text(pct)}%" if pct is not None else "Discount"
    conn.execute(
        "INSERT INTO order_adjustments (order_id, kind, description, percent, amount_cents)"
        " VALUES (?, 'discount', ?, ?, ?)",
        (order_id, desc, products.rate_text(pct) if pct is not None else None, -(cents or 0)),
    )


def add_adjustment(conn: sqlite3.Connection, order: int | str, *, kind: str, description: str,
                   percent: Decimal | None = None, amount: int | None = None) -> int:
    """An extra order-level discount or surcharge (draft only), e.g. from a
    promotion.  ``percent`` of the lines' total, or ``amount`` in cents."""
    _require_tx(conn, "add_adjustment")
    o = _order(conn, order)
    lifecycle.require(o["status"], "edit", number=o["number"])
    if kind not in ("discount", "surcharge"):
        raise ValidationError("an adjustment is a discount or a surcharge")
    if (percent is None) == (amount is None):
        raise ValidationError("give a percent or an amount")
    if amount is not None and amount < 0:
        raise ValidationError("give the adjustment as a positive amount")
    desc = validate.text(description, field="description", max_len=200, required=True)
    cur = conn.execute(
        "INSERT INTO order_adjustments (order_id, kind, description, percent, amount_cents) VALUES (?, ?, ?, ?, ?)",
        (o["id"], kind, desc, products.rate_text(percent) if percent is not None else None,
         adjustment_amount(kind, None, amount, 0) if amount is not None else 0),
    )
    event(conn, o["id"], "edit", f"{kind} added: {desc}")
    recalc(conn, o["id"])
    db.audit(conn, "create", "order_adjustment", cur.lastrowid)
    return int(cur.lastrowid or 0)


def recalc(conn: sqlite3.Connection, order_id: int) -> None:
    """Recompute the order's totals from its lines and adjustments."""
    gross, disc, net, tax, lines_total = conn.execute(
        "SELECT coalesce(sum(gross_cents), 0), coalesce(sum(discount_cents), 0), coalesce(sum(net_cents), 0),"
        " coalesce(sum(tax_cents), 0), coalesce(sum(total_cents), 0) FROM order_lines WHERE order_id = ?",
        (order_id,),
    ).fetchone()
    adj_total = 0
    for a in conn.execute("SELECT id, kind, percent, amount_cents FROM order_adjustments WHERE order_id = ?",
                          (order_id,)).fetchall():
        if a["percent"] is not None:
            value = adjustment_amount(a["kind"], Decimal(a["percent"]), None, lines_total)
            conn.execute("UPDATE order_adjustments SET amount_cents = ? WHERE id = ?", (value, a["id"]))
        else:
            value = a["amount_cents"]
        adj_total += value
    if lines_total + adj_total < 0:
        raise ValidationError(
            f"the order discount ({money.fmt(-adj_total)}) is more than the lines' total ({money.fmt(lines_total)})"
        )
    shipping = conn.execute("SELECT shipping_cents FROM orders WHERE id = ?", (order_id,)).fetchone()[0]
    conn.execute(
        "UPDATE orders SET gross_cents = ?, discount_cents = ?, subtotal_cents = ?, tax_cents = ?,"
        " adjustment_cents = ?, total_cents = ?, updated_at = ? WHERE id = ?",
        (gross, disc, net, tax, adj_total, net + tax + shipping + adj_total, db.now_iso(), order_id),
    )


def add_line(conn: sqlite3.Connection, order: int | str, line: LineSpec | str | dict, *,
             apply_promotions: bool = True) -> int:
    """Add a line to a draft order; returns its line number.
    ``apply_promotions=False`` leaves the order's promotions as they are."""
    _require_tx(conn, "add_line")
    o = _order(conn, order)
    lifecycle.require(o["status"], "edit", number=o["number"])
    line_no = _insert_line(conn, o, _as_spec(line))
    recalc(conn, o["id"])
    if apply_promotions:
        promotions.apply_to_order(conn, o["id"])
    return line_no


def remove_line(conn: sqlite3.Connection, order: int | str, line: int | str, *,
                apply_promotions: bool = True) -> int:
    """Remove a line from a draft order by line number or SKU; returns the line number.
    ``apply_promotions=False`` leaves the order's promotions as they are."""
    _require_tx(conn, "remove_line")
    o = _order(conn, order)
    lifecycle.require(o["status"], "edit", number=o["number"])
    rows = _lines(conn, o["id"])
    s = str(line).strip()
    if s.startswith("#"):
        s = s[1:]
    if s.isdigit() and any(r["line_no"] == int(s) for r in rows):
        match = [r for r in rows if r["line_no"] == int(s)]
    else:
        match = [r for r in rows if r["sku_key"] == products.sku_key(s)]
    if not match:
        raise NotFound(f"{o['number']} has no line {s!r}", "give a line number or SKU from 'order show'")
    if len(match) > 1:
        raise ValidationError(f"{o['number']} has {len(match)} lines of {match[0]['sku']}",
                              "give the line number instead: " + ", ".join(str(r["line_no"]) for r in match))
    r = match[0]
    conn.execute("DELETE FROM order_lines WHERE id = ?", (r["id"],))
    event(conn, o["id"], "line", f"removed line {r['line_no']}: {r['sku']} x {r['qty']}")
    if apply_promotions:
        promotions.apply_to_order(conn, o["id"])  # before the totals: drops discounts the rest no longer earns
    recalc(conn, o["id"])
    db.audit(conn, "delete", "order_line", r["id"])
    return int(r["line_no"])


def edit(
    conn: sqlite3.Connection,
    order: int | str,
    *,
    customer: int | str | None = None,
    channel: str | None = None,
    salesperson: str | None = None,
    order_date: str | date | None = None,
    currency: str | None = None,
    notes: str | None = None,
    shipping: int | None = None,
    discount: str | None = None,
    apply_promotions: bool = True,
) -> list[str]:
    """Change a draft order's header (None leaves a field alone; ``discount="0"``
    removes the order discount).  Returns the names of the fields changed.
    ``apply_promotions=False`` leaves the order's promotions as they are."""
    _require_tx(conn, "edit")
    from salescrm import settings

    o = _order(conn, order)
    lifecycle.require(o["status"], "edit", number=o["number"])
    sets: dict[str, Any] = {}
    changed: list[str] = []
    if customer is not None:
        c = resolve_customer(conn, customer)
        _check_customer_usable(c)
        if c["id"] != o["customer_id"]:
            sets["customer_id"] = c["id"]
            changed.append(f"customer {o['customer_id']} -> {c['id']}")
    if channel is not None:
        ch = _channel(conn, channel)
        if ch != o["channel"]:
            sets["channel"] = ch
            changed.append(f"channel {o['channel']} -> {ch}")
    if salesperson is not None:
        sp = validate.text(salesperson, field="salesperson", max_len=100)
        if sp != o["salesperson"]:
            sets["salesperson"] = sp
            changed.append("salesperson")
    if order_date is not None:
        d = validate.parse_date(order_date, field="order date").isoformat()
        if d != o["order_date"]:
            sets["order_date"] = d
            changed.append(f"date {o['order_date']} -> {d}")
    if currency is not None:
        cc = settings._currency(currency, "currency")
        if cc != o["currency"]:
            sets["currency"] = cc
            changed.append(f"currency {o['currency']} -> {cc}")
    if notes is not None:
        n = validate.text(notes, field="notes", max_len=4000)
        if n != o["notes"]:
            sets["notes"] = n
            changed.append("notes")
    if shipping is not None:
        sh = _shipping(shipping)
        if sh != o["shipping_cents"]:
            sets["shipping_cents"] = sh
            sets["total_cents"] = o["total_cents"] - o["shipping_cents"] + sh  # the total CHECK holds at once
            changed.append(f"shipping {money.fmt(o['shipping_cents'])} -> {money.fmt(sh)}")
    if sets:
        assignments = ", ".join(f"{k} = ?" for k in sets)  # keys from the code above only
        conn.execute(f"UPDATE orders SET {assignments} WHERE id = ?", [*sets.values(), o["id"]])
    if discount is not None:
        before = conn.execute("SELECT percent, amount_cents FROM order_adjustments WHERE order_id = ?"
                              " AND kind = 'discount'", (o["id"],)).fetchall()
        _set_discount(conn, o["id"], discount)
        after = conn.execute("SELECT percent, amount_cents FROM order_adjustments WHERE order_id = ?"
                             " AND kind = 'discount'", (o["id"],)).fetchall()
        if [tuple(r) for r in before] != [tuple(r) for r in after]:
            changed.append(f"discount {discount.strip()}")
    if changed:
        recalc(conn, o["id"])
        event(conn, o["id"], "edit", "; ".join(changed))
        db.audit(conn, "update", "order", o["id"])
    if apply_promotions:
        promotions.apply_to_order(conn, o["id"])  # always: --discount replaces promotion discounts too
    return changed


# --------------------------------------------------------------------------- confirm


def open_receivables(conn: sqlite3.Connection, customer_id: int, *, exclude_order: int | None = None) -> int:
    """What the customer owes on confirmed, unsettled orders (cents)."""
    marks = ",".join("?" * len(lifecycle.RECEIVABLE))
    row = conn.execute(
        f"SELECT coalesce(sum(total_cents - returned_cents - paid_cents), 0) FROM orders"
        f" WHERE customer_id = ? AND status IN ({marks}) AND id IS NOT ?",
        (customer_id, *lifecycle.RECEIVABLE, exclude_order),
    ).fetchone()
    return int(row[0])


def _line_discount_pct(line: sqlite3.Row) -> Decimal:
    if line["gross_cents"] == 0:
        return Decimal(0)
    return Decimal(line["discount_cents"]) * 100 / line["gross_cents"]


def confirm(
    conn: sqlite3.Connection,
    order: int | str,
    *,
    allow_backorder: bool = False,
    override: str | None = None,
    at: str | None = None,
) -> dict[str, Any]:
    """Confirm a draft: check the business rules, reserve stock, set the due
    date.  ``override`` (a reason) lets a line discount above the limit or a
    credit-limit excess through, and is recorded.  Returns a summary."""
    _require_tx(conn, "confirm")
    from salescrm import settings

    o = _order(conn, order)
    new = lifecycle.after_confirm(o["status"], number=o["number"])
    reason = validate.text(override, field="override reason", max_len=500) if override is not None else None
    if override is not None and not reason:
        raise ValidationError("--override needs a reason")
    lines = _lines(conn, o["id"])
    if not lines:
        raise BusinessRule(f"{o['number']} has no lines", "add one with 'order add-line'")
    cust = resolve_customer(conn, o["customer_id"])
    _check_customer_usable(cust)
    archived = sorted({r["sku"] for r in lines if not r["active"]})
    if archived:
        raise BusinessRule(f"{o['number']} has archived products: {', '.join(archived)}",
                           "remove those lines or restore the products")
    overridden: list[str] = []
    limit = settings.get(conn, "max_line_discount_pct")
    over = [(r["sku"], _line_discount_pct(r)) for r in lines if _line_discount_pct(r) > limit]
    if over:
        listed = ", ".join(f"{sku} ({pct.quantize(Decimal('0.1'))}%)" for sku, pct in over)
        if not reason:
            raise BusinessRule(
                f"line discount above the {products.rate_text(limit)}% limit on {o['number']}: {listed}",
                "confirm with --override REASON to allow it",
            )
        overridden.append(f"discount above {products.rate_text(limit)}% ({listed})")
    if cust["credit_limit"] is not None:
        owing = open_receivables(conn, cust["id"], exclude_order=o["id"])
        if owing + o["total_cents"] > cust["credit_limit"]:
            text = (f"open {money.fmt(owing)} + this order {money.fmt(o['total_cents'])}"
                    f" = {money.fmt(owing + o['total_cents'])} exceeds the credit limit"
                    f" {money.fmt(cust['credit_limit'])}")
            if not reason:
                raise BusinessRule(f"credit limit of customer {cust['id']}: {text}",
                                   "take a payment on open orders first, or confirm with --override REASON")
            overridden.append("credit limit (" + text + ")")
    need: dict[int, int] = {}
    for r in lines:
        if r["kind"] == "goods":
            need[r["product_id"]] = need.get(r["product_id"], 0) + r["qty"]
    shortages = []
    for pid, qty in need.items():
        p = products.get_by_id(conn, pid)
        if qty > p["available"]:
            shortages.append(f"{p['sku']} (need {qty:,}, available {p['available']:,})")
    if shortages and not allow_backorder:
        raise BusinessRule(f"not enough stock for {o['number']}: " + "; ".join(shortages),
                           "receive stock first, or confirm with --allow-backorder")
    promotions.on_confirm(conn, o["id"])  # counts usage; refuses a promotion used up since pricing
    when = _when(at, "confirm time")
    units = 0
    for r in lines:
        if r["kind"] == "goods":
            stock.record(conn, r["product_id"], "reserve", r["qty"], order_id=o["id"], line_id=r["id"],
                         reason=o["number"], at=when)
            units += r["qty"]
    terms = cust["payment_terms_days"]
    if terms is None:
        terms = settings.get(conn, "payment_terms_days")
    due = (date.fromisoformat(o["order_date"]) + timedelta(days=int(terms))).isoformat()
    conn.execute("UPDATE orders SET status = ?, confirmed_at = ?, due_date = ?, updated_at = ? WHERE id = ?",
                 (new, when, due, db.now_iso(), o["id"]))
    detail = [f"reserved {units:,} units", f"due {due} (net {terms})"]
    if shortages:
        detail.append("backorder: " + "; ".join(shortages))
    if overridden:
        detail.append(f"override ({reason}): " + "; ".join(overridden))
    event(conn, o["id"], "confirm", "; ".join(detail), o["status"], new)
    db.audit(conn, "confirm", "order", o["id"])
    return {"number": o["number"], "status": new, "reserved": units, "due_date": due,
            "backorder": shortages, "overridden": overridden}


# --------------------------------------------------------------------------- ship, deliver, cancel


def _plan(lines: Sequence[sqlite3.Row], wanted: Sequence[tuple[str, int]] | None, *, room: str,
          number: str, verb: str) -> dict[int, int]:
    """Spread requested SKU quantities over the order's lines (in line order).
    ``room`` names the per-line capacity: 'ship' (qty - shipped) or 'return'
    (shipped - returned)."""
    def capacity(r: sqlite3.Row) -> int:
        return r["qty"] - r["shipped_qty"] if room == "ship" else r["shipped_qty"] - r["returned_qty"]

    plan: dict[int, int] = {}
    if wanted is None:
        for r in lines:
            if capacity(r) > 0:
                plan[r["id"]] = capacity(r)
        return plan
    left = {r["id"]: capacity(r) for r in lines}
    for sku, qty in wanted:
        qty = stock.parse_qty(qty)
        match = [r for r in lines if r["sku_key"] == products.sku_key(sku)]
        if not match:
            raise NotFound(f"{number} has no line for {sku}", "see the lines with 'order show'")
        available = sum(left[r["id"]] for r in match)
        if qty > available:
            what = "left to ship" if room == "ship" else "shipped and not yet returned"
            raise BusinessRule(f"cannot {verb} {qty:,} x {match[0]['sku']}: only {available:,} {what} on {number}")
        for r in match:
            take = min(qty, left[r["id"]])
            if take:
                plan[r["id"]] = plan.get(r["id"], 0) + take
                left[r["id"]] -= take
                qty -= take
    return plan


def ship(
    conn: sqlite3.Connection,
    order: int | str,
    *,
    lines: Sequence[tuple[str, int]] | None = None,
    carrier: str | None = None,
    tracking: str | None = None,
    at: str | None = None,
) -> dict[str, Any]:
    """Ship everything left, or the given ``(SKU, qty)`` pairs.  Stock moves
    from reserved to shipped.  Returns the shipment id and the new status."""
    _require_tx(conn, "ship")
    o = _order(conn, order)
    lifecycle.require(o["status"], "ship", number=o["number"])
    rows = _lines(conn, o["id"])
    plan = _plan(rows, lines, room="ship", number=o["number"], verb="ship")
    if not plan:
        raise BusinessRule(f"nothing left to ship on {o['number']}")
    by_id = {r["id"]: r for r in rows}
    need: dict[int, int] = {}
    for lid, q in plan.items():
        r = by_id[lid]
        if r["kind"] == "goods":
            need[r["product_id"]] = need.get(r["product_id"], 0) + q
    short = []
    for pid, q in need.items():
        p = products.get_by_id(conn, pid)
        if q > p["on_hand"]:
            short.append(f"{p['sku']} (need {q:,}, on hand {p['on_hand']:,})")
    if short:
        raise BusinessRule(f"cannot ship {o['number']}: not enough on hand: " + "; ".join(short),
                           "receive stock first, or ship part of it with --line SKU:QTY")
    when = _when(at, "ship time")
    cur = conn.execute(
        "INSERT INTO shipments (order_id, shipped_at, carrier, tracking, created_at) VALUES (?, ?, ?, ?, ?)",
        (o["id"], when, validate.text(carrier, field="carrier", max_len=100),
         validate.text(tracking, field="tracking", max_len=100), db.now_iso()),
    )
    sid = int(cur.lastrowid or 0)
    parts = []
    for lid, q in plan.items():
        r = by_id[lid]
        conn.execute("INSERT INTO shipment_lines (shipment_id, line_id, qty) VALUES (?, ?, ?)", (sid, lid, q))
        conn.execute("UPDATE order_lines SET shipped_qty = shipped_qty + ? WHERE id = ?", (q, lid))
        if r["kind"] == "goods":
            stock.record(conn, r["product_id"], "ship", q, order_id=o["id"], line_id=lid, reason=o["number"], at=when)
        parts.append(f"{r['sku']} x {q:,}")
    remaining = conn.execute("SELECT coalesce(sum(qty - shipped_qty), 0) FROM order_lines WHERE order_id = ?",
                             (o["id"],)).fetchone()[0]
    new = lifecycle.after_ship(o["status"], fully_shipped=remaining == 0, number=o["number"])
    conn.execute("UPDATE orders SET status = ?, shipped_at = coalesce(shipped_at, ?), updated_at = ? WHERE id = ?",
                 (new, when, db.now_iso(), o["id"]))
    detail = f"shipment {sid}: " + ", ".join(parts)
    if carrier or tracking:
        detail += f" ({', '.join(x for x in (carrier, tracking) if x)})"
    event(conn, o["id"], "ship", detail, o["status"], new)
    db.audit(conn, "create", "shipment", sid)
    return {"number": o["number"], "shipment": sid, "status": new, "remaining": int(remaining)}


def _paid_in_full(conn: sqlite3.Connection, order_id: int) -> bool:
    r = conn.execute("SELECT total_cents - returned_cents - paid_cents FROM orders WHERE id = ?",
                     (order_id,)).fetchone()
    return r[0] <= 0


def deliver(conn: sqlite3.Connection, order: int | str, *, at: str | None = None) -> dict[str, Any]:
    """Mark the order's shipments delivered; a fully shipped order becomes
    delivered (and closed if fully paid)."""
    _require_tx(conn, "deliver")
    o = _order(conn, order)
    lifecycle.require(o["status"], "deliver", number=o["number"])
    when = _when(at, "delivery time")
    cur = conn.execute("UPDATE shipments SET delivered_at = ? WHERE order_id = ? AND delivered_at IS NULL",
                       (when, o["id"]))
    marked = cur.rowcount
    if marked == 0 and o["status"] != lifecycle.SHIPPED:
        raise BusinessRule(f"every shipment of {o['number']} is already delivered", "ship the rest first")
    new = lifecycle.after_deliver(o["status"], all_delivered=True, paid_in_full=_paid_in_full(conn, o["id"]),
                                  number=o["number"])
    conn.execute(
        "UPDATE orders SET status = ?, delivered_at = CASE WHEN ? IN ('delivered', 'closed') THEN ? ELSE delivered_at END,"
        " closed_at = CASE WHEN ? = 'closed' THEN ? ELSE closed_at END, updated_at = ? WHERE id = ?",
        (new, new, when, new, when, db.now_iso(), o["id"]),
    )
    detail = f"{marked} shipment{'s' if marked != 1 else ''} delivered"
    event(conn, o["id"], "deliver", detail, o["status"], new if new != o["status"] else None)
    if new == lifecycle.CLOSED:
        event(conn, o["id"], "close", "delivered and fully paid", lifecycle.DELIVERED, lifecycle.CLOSED)
    db.audit(conn, "deliver", "order", o["id"])
    return {"number": o["number"], "status": new, "shipments": marked}


def cancel(conn: sqlite3.Connection, order: int | str, *, reason: str | None = None) -> dict[str, Any]:
    """Cancel a draft or confirmed order; reservations are released.  An
    order holding payments must be refunded first."""
    _require_tx(conn, "cancel")
    o = _order(conn, order)
    new = lifecycle.after_cancel(o["status"], number=o["number"])
    if o["paid_cents"] > 0:
        raise BusinessRule(f"{o['number']} has {money.fmt(o['paid_cents'])} paid",
                           "record the refund first with 'order refund'")
    why = validate.text(reason, field="reason", max_len=500)
    released = 0
    if o["status"] == lifecycle.CONFIRMED:
        for r in _lines(conn, o["id"]):
            open_qty = r["qty"] - r["shipped_qty"]
            if r["kind"] == "goods" and open_qty > 0:
                stock.record(conn, r["product_id"], "release", open_qty, order_id=o["id"], line_id=r["id"],
                             reason=f"{o['number']} cancelled")
                released += open_qty
    now = db.now_iso()
    conn.execute("UPDATE orders SET status = ?, cancelled_at = ?, updated_at = ? WHERE id = ?",
                 (new, now, now, o["id"]))
    detail = f"released {released:,} units" if released else "nothing reserved"
    if why:
        detail += f"; reason: {why}"
    promotions.on_cancel(conn, o["id"])
    event(conn, o["id"], "cancel", detail, o["status"], new)
    db.audit(conn, "cancel", "order", o["id"])
    return {"number": o["number"], "status": new, "released": released}


# --------------------------------------------------------------------------- returns


def return_items(
    conn: sqlite3.Connection,
    order: int | str,
    *,
    lines: Sequence[tuple[str, int]],
    refund: bool = False,
    method: str | None = None,
    reason: str | None = None,
    at: str | None = None,
) -> dict[str, Any]:
    """Take back shipped units: goods are restocked and the order is
    credited.  If the customer has then paid more than the order is worth,
    ``refund=True`` records the difference as a refund (a negative
    payment); without it the return is refused."""
    _require_tx(conn, "return_items")
    o = _order(conn, order)
    lifecycle.require(o["status"], "return", number=o["number"])
    if not lines:
        raise ValidationError("name what comes back with --line SKU:QTY")
    rows = _lines(conn, o["id"])
    plan = _plan(rows, lines, room="return", number=o["number"], verb="return")
    by_id = {r["id"]: r for r in rows}
    lines_total = sum(r["total_cents"] for r in rows)

    def credited(cumulative_lines: int) -> int:
        return cumulative_lines + apportion(o["adjustment_cents"], cumulative_lines, lines_total)

    def line_cum(r: sqlite3.Row, q: int) -> tuple[int, int]:
        return apportion(r["net_cents"], q, r["qty"]), apportion(r["tax_cents"], q, r["qty"])

    before_cum = sum(sum(line_cum(r, r["returned_qty"])) for r in rows)
    when = _when(at, "return time")
    cur = conn.execute("INSERT INTO returns (order_id, returned_at, reason, amount_cents, created_at)"
                       " VALUES (?, ?, ?, 0, ?)",
                       (o["id"], when, validate.text(reason, field="reason", max_len=500), db.now_iso()))
    rid = int(cur.lastrowid or 0)
    added = 0
    parts = []
    for lid, q in plan.items():
        r = by_id[lid]
        n0, t0 = line_cum(r, r["returned_qty"])
        n1, t1 = line_cum(r, r["returned_qty"] + q)
        conn.execute("INSERT INTO return_lines (return_id, line_id, qty, net_cents, tax_cents, total_cents)"
                     " VALUES (?, ?, ?, ?, ?, ?)", (rid, lid, q, n1 - n0, t1 - t0, (n1 + t1) - (n0 + t0)))
        conn.execute("UPDATE order_lines SET returned_qty = returned_qty + ? WHERE id = ?", (q, lid))
        if r["kind"] == "goods":
            stock.record(conn, r["product_id"], "return", q, order_id=o["id"], line_id=lid,
                         reason=f"{o['number']} return {rid}", at=when)
        added += (n1 + t1) - (n0 + t0)
        parts.append(f"{r['sku']} x {q:,}")
    amount = credited(before_cum + added) - credited(before_cum)
    conn.execute("UPDATE returns SET amount_cents = ? WHERE id = ?", (amount, rid))
    new_due = o["total_cents"] - o["returned_cents"] - amount
    excess = o["paid_cents"] - new_due
    refund_id = None
    if excess > 0:
        if not refund:
            raise BusinessRule(
                f"after this return {o['number']} is worth {money.fmt(new_due)} but {money.fmt(o['paid_cents'])}"
                f" was paid",
                f"add --refund to record the refund of {money.fmt(excess)}",
            )
        refund_id = _insert_payment(conn, o, -excess, kind="refund", method=method or _last_method(conn, o["id"]),
                                    at=when, reference=f"return {rid}", return_id=rid)
    conn.execute("UPDATE orders SET returned_cents = returned_cents + ?, paid_cents = paid_cents - ?,"
                 " updated_at = ? WHERE id = ?", (amount, max(excess, 0), db.now_iso(), o["id"]))
    new = lifecycle.settle(o["status"], paid_in_full=_paid_in_full(conn, o["id"]))
    if new != o["status"]:
        conn.execute("UPDATE orders SET status = ?, closed_at = ? WHERE id = ?", (new, when, o["id"]))
    detail = f"return {rid}: " + ", ".join(parts) + f"; credited {money.fmt(amount)}"
    if refund_id:
        detail += f"; refunded {money.fmt(excess)}"
    event(conn, o["id"], "return", detail, o["status"], new if new != o["status"] else None)
    db.audit(conn, "create", "return", rid)
    return {"number": o["number"], "return": rid, "credited": amount, "refunded": max(excess, 0),
            "status": new}


# --------------------------------------------------------------------------- payments


def _method(conn: sqlite3.Connection, method: str) -> str:
    from salescrm import settings

    m = (method or "").strip().lower()
    allowed = settings.get(conn, "payment_methods")
    if m not in allowed:
        raise ValidationError(f"unknown payment method {method!r}",
                              "use one of: " + ", ".join(allowed) + " (or 'settings set payment_methods')")
    return m


def _last_method(conn: sqlite3.Connection, order_id: int) -> str:
    row = conn.execute("SELECT method FROM payments WHERE order_id = ? AND kind = 'payment' ORDER BY id DESC LIMIT 1",
                       (order_id,)).fetchone()
    return row[0] if row else "other"


def _insert_payment(conn: sqlite3.Connection, o: sqlite3.Row, amount: int, *, kind: str, method: str,
                    at: str, reference: str | None, return_id: int | None = None) -> int:
    cur = conn.execute(
        "INSERT INTO payments (order_id, kind, amount_cents, method, paid_at, reference, return_id, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (o["id"], kind, amount, method, at, reference, return_id, db.now_iso()),
    )
    db.audit(conn, "create", "payment", cur.lastrowid)
    return int(cur.lastrowid or 0)


def pay(
    conn: sqlite3.Connection,
    order: int | str,
    *,
    amount: int,
    method: str,
    at: str | None = None,
    reference: str | None = None,
) -> dict[str, Any]:
    """Record a payment of ``amount`` cents.  More than the balance is
    refused; the check runs inside the caller's ``BEGIN IMMEDIATE``
    transaction, so two payers cannot both pass it."""
    _require_tx(conn, "pay")
    o = _order(conn, order)  # read under the write lock
    lifecycle.require(o["status"], "pay", number=o["number"])
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValidationError("amount must be in cents")
    if amount <= 0:
        raise ValidationError("a payment must be more than zero", "record money back with 'order refund'")
    m = _method(conn, method)
    balance = o["total_cents"] - o["returned_cents"] - o["paid_cents"]
    if amount > balance:
        if balance <= 0:
            raise BusinessRule(f"{o['number']} is already fully paid")
        raise BusinessRule(
            f"overpayment refused: {o['number']} has {money.fmt(balance)} left to pay, not {money.fmt(amount)}",
            f"pay at most {money.fmt(balance)}",
        )
    when = _when(at, "payment time")
    ref = validate.text(reference, field="reference", max_len=200)
    pid = _insert_payment(conn, o, amount, kind="payment", method=m, at=when, reference=ref)
    conn.execute("UPDATE orders SET paid_cents = paid_cents + ?, updated_at = ? WHERE id = ?",
                 (amount, db.now_iso(), o["id"]))
    left = balance - amount
    new = lifecycle.settle(o["status"], paid_in_full=left <= 0)
    if new != o["status"]:
        conn.execute("UPDATE orders SET status = ?, closed_at = ? WHERE id = ?", (new, when, o["id"]))
    event(conn, o["id"], "pay", f"payment {pid}: {money.fmt(amount)} by {m}; balance {money.fmt(left)}",
           o["status"], new if new != o["status"] else None)
    return {"number": o["number"], "payment": pid, "balance": left, "status": new,
            "payment_status": lifecycle.payment_status(left, o["paid_cents"] + amount)}


def refund(
    conn: sqlite3.Connection,
    order: int | str,
    *,
    amount: int,
    method: str | None = None,
    at: str | None = None,
    reference: str | None = None,
) -> dict[str, Any]:
    """Give money back on an open order (e.g. before cancelling it): a
    negative payment of at most what was paid."""
    _require_tx(conn, "refund")
    o = _order(conn, order)
    lifecycle.require(o["status"], "pay", number=o["number"])
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValidationError("a refund must be more than zero")
    if amount > o["paid_cents"]:
        raise BusinessRule(f"cannot refund {money.fmt(amount)}: {o['number']} has {money.fmt(o['paid_cents'])} paid")
    m = _method(conn, method) if method else _last_method(conn, o["id"])
    when = _when(at, "refund time")
    pid = _insert_payment(conn, o, -amount, kind="refund", method=m, at=when,
                          reference=validate.text(reference, field="reference", max_len=200))
    conn.execute("UPDATE orders SET paid_cents = paid_cents - ?, updated_at = ? WHERE id = ?",
                 (amount, db.now_iso(), o["id"]))
    event(conn, o["id"], "refund", f"refund {pid}: {money.fmt(amount)} by {m}")
    return {"number": o["number"], "payment": pid, "paid": o["paid_cents"] - amount}


# --------------------------------------------------------------------------- invoices


def issue_invoice(conn: sqlite3.Connection, order: int | str, *, at: str | date | None = None) -> dict[str, Any]:
    """The order's invoice: issued once, numbered from a gap-free sequence.
    Asking again returns the same invoice (``new`` False)."""
    _require_tx(conn, "issue_invoice")
    from salescrm import settings

    o = _order(conn, order)
    existing = conn.execute("SELECT * FROM invoices WHERE order_id = ?", (o["id"],)).fetchone()
    if existing:
        return {**dict(existing), "new": False}
    lifecycle.require(o["status"], "invoice", number=o["number"])
    seq = conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM invoices").fetchone()[0]
    number = f"{settings.get(conn, 'invoice_prefix')}{seq:06d}"
    day = validate.parse_date(at, field="invoice date").isoformat() if at else date.today().isoformat()
    cur = conn.execute(
        "INSERT INTO invoices (seq, number, order_id, issued_at, due_date, total_cents, tax_cents, os_user)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, number, o["id"], day, o["due_date"], o["total_cents"], o["tax_cents"], db.os_user()),
    )
    event(conn, o["id"], "invoice", f"invoice {number} issued")
    db.audit(conn, "create", "invoice", cur.lastrowid)
    row = conn.execute("SELECT * FROM invoices WHERE id = ?", (cur.lastrowid,)).fetchone()
    return {**dict(row), "new": True}


def invoice_of(conn: sqlite3.Connection, order_id: int) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM invoices WHERE order_id = ?", (order_id,)).fetchone()
    return dict(row) if row else None


# --------------------------------------------------------------------------- queries


def _derived(d: dict[str, Any], today: date | None = None) -> dict[str, Any]:
    today_s = (today or date.today()).isoformat()
    d["net_total_cents"] = d["total_cents"] - d["returned_cents"]
    d["balance_cents"] = d["net_total_cents"] - d["paid_cents"]
    if d["status"] in ("draft", "cancelled"):
        d["payment_status"] = None
        d["overdue"] = False
    else:
        d["payment_status"] = lifecycle.payment_status(d["balance_cents"], d["paid_cents"])
        d["overdue"] = bool(d["status"] in lifecycle.RECEIVABLE and d["balance_cents"] > 0
                            and d["due_date"] and d["due_date"] < today_s)
    return d


def get(conn: sqlite3.Connection, order: int | str, *, today: date | None = None) -> dict[str, Any]:
    """The order header with its customer's name and derived figures:
    net_total_cents (after returns), balance_cents, payment_status, overdue."""
    o = _order(conn, order)
    d = dict(o)
    c = conn.execute("SELECT name, company, email, address, city, region, country FROM customers WHERE id = ?",
                     (o["customer_id"],)).fetchone()
    d["customer"] = c["name"] if c else None
    d["customer_details"] = dict(c) if c else {}
    d["tax_inclusive"] = bool(d["tax_inclusive"])
    inv = invoice_of(conn, o["id"])
    d["invoice_number"] = inv["number"] if inv else None
    return _derived(d, today)


def lines(conn: sqlite3.Connection, order: int | str) -> list[dict[str, Any]]:
    o = _order(conn, order)
    out = []
    for r in _lines(conn, o["id"]):
        d = dict(r)
        d["tax_rate"] = Decimal(d["tax_rate"])
        d["discount_pct"] = Decimal(d["discount_pct"]) if d["discount_pct"] is not None else None
        d["unit"] = conn.execute("SELECT unit FROM products WHERE id = ?", (r["product_id"],)).fetchone()[0]
        out.append(d)
    return out


def adjustments(conn: sqlite3.Connection, order: int | str) -> list[dict[str, Any]]:
    o = _order(conn, order)
    return [dict(r) for r in conn.execute(
        "SELECT id, kind, description, percent, amount_cents FROM order_adjustments WHERE order_id = ? ORDER BY id",
        (o["id"],))]


def payments(conn: sqlite3.Connection, order: int | str) -> list[dict[str, Any]]:
    o = _order(conn, order)
    return [dict(r) for r in conn.execute(
        "SELECT id, paid_at, kind, amount_cents, method, reference FROM payments WHERE order_id = ? ORDER BY id",
        (o["id"],))]


def shipments(conn: sqlite3.Connection, order: int | str) -> list[dict[str, Any]]:
    o = _order(conn, order)
    out = []
    for s in conn.execute("SELECT * FROM shipments WHERE order_id = ? ORDER BY id", (o["id"],)).fetchall():
        d = dict(s)
        d["lines"] = ", ".join(
            f"{r[0]} x {r[1]:,}" for r in conn.execute(
                "SELECT l.sku, sl.qty FROM shipment_lines sl JOIN order_lines l ON l.id = sl.line_id"
                " WHERE sl.shipment_id = ? ORDER BY l.line_no", (s["id"],)))
        out.append(d)
    return out


def returns(conn: sqlite3.Connection, order: int | str) -> list[dict[str, Any]]:
    o = _order(conn, order)
    out = []
    for s in conn.execute("SELECT * FROM returns WHERE order_id = ? ORDER BY id", (o["id"],)).fetchall():
        d = dict(s)
        d["lines"] = ", ".join(
            f"{r[0]} x {r[1]:,}" for r in conn.execute(
                "SELECT l.sku, rl.qty FROM return_lines rl JOIN order_lines l ON l.id = rl.line_id"
                " WHERE rl.return_id = ? ORDER BY l.line_no", (s["id"],)))
        out.append(d)
    return out


def history(conn: sqlite3.Connection, order: int | str) -> list[dict[str, Any]]:
    o = _order(conn, order)
    return [dict(r) for r in conn.execute(
        "SELECT id, at, os_user, kind, from_status, to_status, detail FROM order_events"
        " WHERE order_id = ? ORDER BY id", (o["id"],))]


SORTS = {
    "number": "o.number",
    "date": "o.order_date",
    "order_date": "o.order_date",
    "status": "o.status",
    "customer": "customer",
    "channel": "o.channel",
    "salesperson": "o.salesperson",
    "total": "(o.total_cents - o.returned_cents)",
    "paid": "o.paid_cents",
    "balance": "(o.total_cents - o.returned_cents - o.paid_cents)",
    "due": "o.due_date",
    "due_date": "o.due_date",
}

STATUS_ALIASES = {
    "open": lifecycle.RECEIVABLE,
    "booked": lifecycle.BOOKED,
}

_UNPAID_SQL = "o.status NOT IN ('draft', 'cancelled') AND o.paid_cents < o.total_cents - o.returned_cents"


def parse_statuses(text: str | Sequence[str] | None) -> list[str]:
    if not text:
        return []
    items = text.split(",") if isinstance(text, str) else [x for t in text for x in t.split(",")]
    out: list[str] = []
    for raw in items:
        s = raw.strip().lower().replace("-", "_")
        if not s:
            continue
        if s == "partial":
            s = lifecycle.PARTIALLY_SHIPPED
        group = STATUS_ALIASES.get(s, (s,))
        for g in group:
            if g not in lifecycle.STATES:
                raise ValidationError(f"unknown status {raw.strip()!r}",
                                      "use " + ", ".join(lifecycle.STATES) + ", open or booked")
            if g not in out:
                out.append(g)
    return out


def list_where(conn: sqlite3.Connection, *, status=None, customer=None, channel=None, salesperson=None,
               date_from=None, date_to=None, unpaid=False, overdue=False, search=None,
               today: date | None = None) -> tuple[list[str], list[Any]]:
    """The WHERE terms and parameters of ``order list``'s filters (orders ``o``)."""
    where: list[str] = []
    params: list[Any] = []
    statuses = parse_statuses(status)
    if statuses:
        where.append(f"o.status IN ({','.join('?' * len(statuses))})")
        params += statuses
    if customer is not None and str(customer).strip():
        where.append("o.customer_id = ?")
        params.append(resolve_customer(conn, customer)["id"])
    if channel:
        chans = [c.strip().lower() for c in str(channel).split(",") if c.strip()]
        where.append(f"o.channel IN ({','.join('?' * len(chans))})")
        params += chans
    if salesperson:
        where.append("o.salesperson = ? COLLATE NOCASE")
        params.append(salesperson.strip())
    if date_from:
        where.append("o.order_date >= ?")
        params.append(validate.parse_date(date_from, field="--from").isoformat())
    if date_to:
        where.append("o.order_date <= ?")
        params.append(validate.parse_date(date_to, field="--to").isoformat())
    if unpaid or overdue:
        where.append(_UNPAID_SQL)
    if overdue:
        marks = ",".join("?" * len(lifecycle.RECEIVABLE))
        where.append(f"o.due_date < ? AND o.status IN ({marks})")
        params += [(today or date.today()).isoformat(), *lifecycle.RECEIVABLE]
    if search:
        where.append("o.number LIKE ? ESCAPE '\\'")
        params.append(products._like(search.strip().upper()))
    return where, params


def list_orders(
    conn: sqlite3.Connection,
    *,
    status: str | Sequence[str] | None = None,
    customer: int | str | None = None,
    channel: str | None = None,
    salesperson: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    unpaid: bool = False,
    overdue: bool = False,
    search: str | None = None,
    sort: str | None = None,
    limit: int | None = None,
    today: date | None = None,
) -> Iterator[dict[str, Any]]:
    """Orders matching every filter given (AND), newest first by default.
    ``sort`` is whitelisted (``SORTS``), ``-`` for descending."""
    where, params = list_where(conn, status=status, customer=customer, channel=channel, salesperson=salesperson,
                                date_from=date_from, date_to=date_to, unpaid=unpaid, overdue=overdue,
                                search=search, today=today)
    order_by = products.parse_sort(sort, SORTS, "-date")
    desc_id = "DESC" if (sort or "-date").strip().startswith("-") else "ASC"
    sql = (
        "SELECT o.id, o.number, o.order_date, o.status, o.customer_id,"
        " (SELECT c.name FROM customers c WHERE c.id = o.customer_id) AS customer,"
        " o.channel, o.salesperson, o.currency, o.total_cents, o.returned_cents, o.paid_cents, o.due_date"
        " FROM orders o"
    )
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY {order_by}, o.id {desc_id}"
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    for row in conn.execute(sql, params):
        yield _derived(dict(row), today)


def count_orders(conn: sqlite3.Connection, **filters: Any) -> int:
    where, params = list_where(conn, **filters)
    sql = "SELECT count(*) FROM orders o" + (" WHERE " + " AND ".join(where) if where else "")
    return int(conn.execute(sql, params).fetchone()[0])


def customer_summary(conn: sqlite3.Connection, customer_id: int) -> dict[str, Any]:
    """For ``customer show``: booked orders (not draft or cancelled) only
    (``customers.booked_summary``, the one query)."""
    from salescrm.customers import booked_summary

    return booked_summary(conn, customer_id)


# --------------------------------------------------------------------------- db check

#: Every money column (cents) in the orders schema, for the ``typeof`` check.
MONEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "products": ("unit_cost", "list_price"),
    "orders": ("gross_cents", "discount_cents", "subtotal_cents", "tax_cents", "shipping_cents",
               "adjustment_cents", "total_cents", "returned_cents", "paid_cents"),
    "order_lines": ("unit_price", "unit_cost", "gross_cents", "discount_cents", "net_cents", "tax_cents",
                    "total_cents"),
    "order_adjustments": ("amount_cents",),
    "returns": ("amount_cents",),
    "return_lines": ("net_cents", "tax_cents", "total_cents"),
    "payments": ("amount_cents",),
    "invoices": ("total_cents", "tax_cents"),
    "customers": ("credit_limit",),
}


def check_money_types(conn: sqlite3.Connection) -> list[str]:
    problems = []
    for table, cols in MONEY_COLUMNS.items():
        for col in cols:  # names from the constant above, never from input
            n = conn.execute(
                f"SELECT count(*) FROM {table} WHERE {col} IS NOT NULL AND typeof({col}) <> 'integer'"
            ).fetchone()[0]
            if n:
                problems.append(f"money: {table}.{col} holds {n} value{'s' if n != 1 else ''} that are not integer cents")
    return problems


def check_totals(conn: sqlite3.Connection) -> list[str]:
    """Order totals equal their lines, adjustments, payments and returns;
    line quantities equal their shipments and returns."""
    problems = []
    sql = """
        WITH l AS (SELECT order_id, sum(gross_cents) g, sum(discount_cents) d, sum(net_cents) n,
                          sum(tax_cents) t FROM order_lines GROUP BY order_id),
             a AS (SELECT order_id, sum(amount_cents) s FROM order_adjustments GROUP BY order_id),
             p AS (SELECT order_id, sum(amount_cents) s FROM payments GROUP BY order_id),
             r AS (SELECT order_id, sum(amount_cents) s FROM returns GROUP BY order_id)
        SELECT o.number,
               o.gross_cents = coalesce(l.g, 0) AND o.discount_cents = coalesce(l.d, 0)
                 AND o.subtotal_cents = coalesce(l.n, 0) AND o.tax_cents = coalesce(l.t, 0),
               o.adjustment_cents = coalesce(a.s, 0),
               o.total_cents = o.subtotal_cents + o.tax_cents + o.shipping_cents + o.adjustment_cents,
               o.paid_cents = coalesce(p.s, 0),
               o.returned_cents = coalesce(r.s, 0)
        FROM orders o LEFT JOIN l ON l.order_id = o.id LEFT JOIN a ON a.order_id = o.id
             LEFT JOIN p ON p.order_id = o.id LEFT JOIN r ON r.order_id = o.id
        WHERE NOT (o.gross_cents = coalesce(l.g, 0) AND o.discount_cents = coalesce(l.d, 0)
                   AND o.subtotal_cents = coalesce(l.n, 0) AND o.tax_cents = coalesce(l.t, 0)
                   AND o.adjustment_cents = coalesce(a.s, 0)
                   AND o.total_cents = o.subtotal_cents + o.tax_cents + o.shipping_cents + o.adjustment_cents
                   AND o.paid_cents = coalesce(p.s, 0) AND o.returned_cents = coalesce(r.s, 0))
    """
    names = ("lines", "adjustments", "total", "payments", "returns")
    for row in conn.execute(sql):
        bad = [n for n, ok in zip(names, row[1:]) if not ok]
        problems.append(f"order {row[0]}: stored totals differ from its {', '.join(bad)}")
    sql = """
        WITH s AS (SELECT line_id, sum(qty) q FROM shipment_lines GROUP BY line_id),
             r AS (SELECT line_id, sum(qty) q FROM return_lines GROUP BY line_id)
        SELECT o.number, l.line_no FROM order_lines l JOIN orders o ON o.id = l.order_id
        LEFT JOIN s ON s.line_id = l.id LEFT JOIN r ON r.line_id = l.id
        WHERE l.shipped_qty <> coalesce(s.q, 0) OR l.returned_qty <> coalesce(r.q, 0)
           OR l.gross_cents - l.discount_cents <> CASE o.tax_inclusive WHEN 1 THEN l.total_cents ELSE l.net_cents END
    """
    for number, line_no in conn.execute(sql):
        problems.append(f"order {number} line {line_no}: quantities or amounts differ from its records")
    return problems
