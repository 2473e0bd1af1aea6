"""Promotions: kinds, conditions, the one precedence rule, and what they do
to an order.  No Typer, no Rich.

Kinds
-----
``percent``      P% off the qualifying lines.
``amount``       an amount off the qualifying lines (once per order), shared
                 among them in proportion to their value.
``fixed_price``  the qualifying lines at a fixed unit price.
``free_items``   buy X get Y free: for every X qualifying units bought (or
                 once, when not repeating) Y units of the free product are
                 added as a free line; whole units only (buy 10 get 1,
                 15 bought: 1 free).  The free product defaults to the one
                 SKU the promotion targets.
``gift``         a gift product added as a free line.

Conditions (all must hold): active, within the validity window (by the
order date), the coupon code (if the promotion has one), the order's
channel, the customer's segment, SKUs or categories (the qualifying lines;
none: every line), a minimum quantity and a minimum amount counted across
all qualifying lines, the total usage limit and the per-customer limit.
Amounts are line totals as the customer pays them (after line discounts,
before any promotion).

Precedence
----------
Every promotion is evaluated.  Exclusive promotions compete: the one giving
the customer the largest saving wins (ties: higher priority, then the one
created first); the others are not applied.  Stackable promotions then
apply on top, in priority order (ties: created first), each on what is left
to pay after the ones before it.  A cap keeps every paid line at or above
its cost plus the minimum margin (setting ``promo_min_margin_pct``, a margin
on the price, default 0) and never below zero; free and gift lines are
outside the cap.

On the order
------------
Each discount is its own order adjustment ("Promotion NAME: ..."), like an
order discount (not taxed); free and gift items are their own lines at
price 0 naming the promotion.  ``apply_to_order`` recomputes a draft's
promotions from scratch (and changes nothing when the result is the same);
usage is counted by ``on_confirm`` and released by ``on_cancel``.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from salescrm import db, money, products, validate
from salescrm.errors import BusinessRule, Conflict, NotFound, ValidationError

KINDS = ("percent", "amount", "fixed_price", "free_items", "gift")
MIN_MARGIN_KEY = "promo_min_margin_pct"

# --------------------------------------------------------------------------- settings


def min_margin(conn: sqlite3.Connection) -> Decimal:
    """The minimum margin (percent of the price) promotions leave on a line."""
    return Decimal(db.get_setting(conn, MIN_MARGIN_KEY, "0") or "0")


def set_min_margin(conn: sqlite3.Connection, value: str | Decimal) -> Decimal:
    assert conn.in_transaction, "promotions.set_min_margin must run inside db.write_tx"
    pct = money.parse_percent(str(value), field="minimum margin")
    if pct >= 100:
        raise ValidationError("the minimum margin must be below 100%")
    db.set_setting(conn, MIN_MARGIN_KEY, products.rate_text(pct))
    db.audit(conn, "set", "setting", MIN_MARGIN_KEY)
    return pct


# --------------------------------------------------------------------------- promotions


def _require_tx(conn: sqlite3.Connection, what: str) -> None:
    assert conn.in_transaction, f"promotions.{what} must run inside db.write_tx"


def _values(values: str | Iterable[str] | None, field: str) -> list[str]:
    if values is None:
        return []
    items = [values] if isinstance(values, str) else list(values)
    out: list[str] = []
    for item in items:
        for part in str(item).split(","):
            v = validate.text(part, field=field, max_len=100)
            if v and v not in out:
                out.append(v)
    return out


def _channels(conn: sqlite3.Connection, values: str | Iterable[str] | None) -> str | None:
    from salescrm import settings

    vals = [v.lower() for v in _values(values, "channel")]
    allowed = settings.get(conn, "channels")
    for v in vals:
        if v not in allowed:
            raise ValidationError(f"unknown channel {v!r}", "use one of: " + ", ".join(allowed))
    return ",".join(vals) or None


def _segments(values: str | Iterable[str] | None) -> str | None:
    return ",".join(v.casefold() for v in _values(values, "segment")) or None


def _category(conn: sqlite3.Connection, value: str) -> str:
    row = conn.execute("SELECT category FROM products WHERE lower(category) = lower(?) LIMIT 1",
                       (value,)).fetchone()
    if row is None:
        raise NotFound(f"no product has the category {value!r}", "see 'salescrm product list'")
    return str(row[0]).casefold()


def _count(value: int | str | None, field: str) -> int | None:
    if value is None:
        return None
    s = str(value).strip()
    if not re.fullmatch(r"-?\d+", s):
        raise ValidationError(f"{field} must be a whole number, not {s!r}")
    n = int(s)
    if n <= 0:
        raise ValidationError(f"{field} must be more than zero")
    return n


def _money_value(value: int | str | None, field: str, *, positive: bool = False) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        cents = value
        if cents < 0:
            raise ValidationError(f"{field} must not be negative")
    else:
        cents = money.parse_money(str(value), field=field)
    if positive and cents <= 0:
        raise ValidationError(f"{field} must be more than zero")
    return cents


def _coupon(value: str | None) -> tuple[str | None, str | None]:
    v = validate.text(value, field="coupon", max_len=64)
    if v is None:
        return None, None
    if not re.fullmatch(r"[\w.-]+", v):
        raise ValidationError(f"a coupon code is letters, digits, '-', '_' or '.', not {v!r}")
    return v, v.casefold()


def _kind_fields(conn: sqlite3.Connection, *, percent=None, amount_off=None, fixed_price=None, buy=None,
                 get=None, free_sku=None, gift=None, gift_qty=None, once=False,
                 skus: Sequence[str] = ()) -> dict[str, Any]:
    given = [n for n, v in (("--percent", percent), ("--amount-off", amount_off), ("--fixed-price", fixed_price),
                            ("--buy/--get", buy if buy is not None else get), ("--gift", gift)) if v is not None]
    if len(given) != 1:
        raise ValidationError("a promotion is one kind: --percent, --amount-off, --fixed-price, --buy X --get Y"
                              " or --gift SKU" if not given else "give one kind, not " + " and ".join(given))
    f: dict[str, Any] = {"percent": None, "amount_cents": None, "buy_qty": None, "get_qty": None,
                         "get_product_id": None, "repeat": 0 if once else 1}
    if percent is not None:
        pct = money.parse_percent(str(percent), field="percent off")
        if pct <= 0:
            raise ValidationError("percent off must be more than zero")
        f.update(kind="percent", percent=products.rate_text(pct))
    elif amount_off is not None:
        f.update(kind="amount", amount_cents=_money_value(amount_off, "amount off", positive=True))
    elif fixed_price is not None:
        f.update(kind="fixed_price", amount_cents=_money_value(fixed_price, "fixed price"))
    elif gift is not None:
        p = products.get(conn, gift)
        f.update(kind="gift", get_product_id=p["id"], get_qty=_count(gift_qty, "gift quantity") or 1)
    else:
        if buy is None or get is None:
            raise ValidationError("buy X get Y free needs both --buy X and --get Y")
        f.update(kind="free_items", buy_qty=_count(buy, "--buy"), get_qty=_count(get, "--get"))
        if free_sku is not None:
            f["get_product_id"] = products.get(conn, free_sku)["id"]
        elif len(skus) == 1:
            f["get_product_id"] = products.get(conn, skus[0])["id"]
        else:
            raise ValidationError("name the free product with --free-sku SKU",
                                  "or give exactly one --sku: the free item is then the same SKU")
    if f["kind"] != "free_items" and (buy is not None or get is not None or free_sku is not None):
        raise ValidationError("--buy, --get and --free-sku go together (buy X get Y free)")
    if f["kind"] != "gift" and gift_qty is not None:
        raise ValidationError("--gift-qty goes with --gift")
    return f


def find(conn: sqlite3.Connection, ref: int | str) -> dict[str, Any] | None:
    if isinstance(ref, int) and not isinstance(ref, bool):
        row = conn.execute("SELECT * FROM promotions WHERE id = ?", (ref,)).fetchone()
    else:
        s = str(ref).strip()
        row = conn.execute("SELECT * FROM promotions WHERE name_key = ?", (validate.name_key(s),)).fetchone()
        if row is None and s.isdigit():
            row = conn.execute("SELECT * FROM promotions WHERE id = ?", (int(s),)).fetchone()
    return _promo(conn, row) if row is not None else None


def get(conn: sqlite3.Connection, ref: int | str) -> dict[str, Any]:
    p = find(conn, ref)
    if p is None:
        raise NotFound(f"no promotion {str(ref).strip()!r}", "see 'salescrm promo list'")
    return p


def _promo(conn: sqlite3.Connection, row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    d["percent"] = Decimal(d["percent"]) if d["percent"] is not None else None
    d["active"] = bool(d["active"])
    d["exclusive"] = bool(d["exclusive"])
    d["repeat"] = bool(d["repeat"])
    tg = conn.execute(
        "SELECT t.product_id, p.sku, t.category FROM promotion_targets t LEFT JOIN products p ON p.id = t.product_id"
        " WHERE t.promotion_id = ? ORDER BY p.sku_key, t.category", (d["id"],)).fetchall()
    d["product_ids"] = {r["product_id"] for r in tg if r["product_id"] is not None}
    d["skus"] = [r["sku"] for r in tg if r["product_id"] is not None]
    d["categories"] = [r["category"] for r in tg if r["category"] is not None]
    d["channel_list"] = d["channels"].split(",") if d["channels"] else []
    d["segment_list"] = d["segments"].split(",") if d["segments"] else []
    if d["get_product_id"] is not None:
        gp = products.get_by_id(conn, d["get_product_id"])
        d["get_sku"], d["get_name"], d["get_active"] = gp["sku"], gp["name"], gp["active"]
    else:
        d["get_sku"] = d["get_name"] = None
        d["get_active"] = True
    d["summary"] = summary(d)
    return d


def _targets_text(p: dict[str, Any]) -> str:
    return ", ".join([*p["skus"], *p["categories"]])


def summary(p: dict[str, Any]) -> str:
    """'10% off tea', 'buy 10 get 1 GT-250 free (every 10)', ..."""
    on = _targets_text(p)
    k = p["kind"]
    if k == "percent":
        text = f"{products.rate_text(p['percent'])}% off" + (f" {on}" if on else "")
    elif k == "amount":
        text = f"{money.fmt(p['amount_cents'])} off" + (f" {on}" if on else "")
    elif k == "fixed_price":
        text = (f"{on} " if on else "every item ") + f"at {money.fmt(p['amount_cents'])} each"
    elif k == "free_items":
        what = on or "any item"
        text = (f"buy {p['buy_qty']} {what} get {p['get_qty']} {p['get_sku']} free"
                f" ({'every ' + str(p['buy_qty']) if p['repeat'] else 'once'})")
    else:
        text = f"gift: {p['get_qty']} x {p['get_sku']}"
    conds = []
    if p["min_amount"]:
        conds.append(f"from {money.fmt(p['min_amount'])}")
    if p["min_qty"]:
        conds.append(f"from {p['min_qty']} units")
    return text + (" " + " ".join(conds) if conds else "")


def _set_targets(conn: sqlite3.Connection, pid: int, skus: Sequence[str], categories: Sequence[str]) -> None:
    conn.execute("DELETE FROM promotion_targets WHERE promotion_id = ?", (pid,))
    seen: set = set()
    for s in skus:
        prod = products.get(conn, s)
        if prod["id"] not in seen:
            seen.add(prod["id"])
            conn.execute("INSERT INTO promotion_targets (promotion_id, product_id) VALUES (?, ?)", (pid, prod["id"]))
    for c in categories:
        key = _category(conn, c)
        if key not in seen:
            seen.add(key)
            conn.execute("INSERT INTO promotion_targets (promotion_id, category) VALUES (?, ?)", (pid, key))


def _window(starts: str | date | None, ends: str | date | None) -> tuple[str | None, str | None]:
    a = validate.parse_date(starts, field="--from").isoformat() if starts else None
    b = validate.parse_date(ends, field="--to").isoformat() if ends else None
    if a and b and a > b:
        raise ValidationError(f"the promotion ends ({b}) before it starts ({a})")
    return a, b


def add(
    conn: sqlite3.Connection,
    *,
    name: str,
    description: str | None = None,
    percent: str | Decimal | None = None,
    amount_off: str | int | None = None,
    fixed_price: str | int | None = None,
    buy: int | str | None = None,
    get: int | str | None = None,
    free_sku: str | None = None,
    once: bool = False,
    gift: str | None = None,
    gift_qty: int | str | None = None,
    skus: Sequence[str] = (),
    categories: Sequence[str] = (),
    channels: str | Sequence[str] | None = None,
    segments: str | Sequence[str] | None = None,
    min_qty: int | str | None = None,
    min_amount: str | int | None = None,
    starts: str | date | None = None,
    ends: str | date | None = None,
    coupon: str | None = None,
    usage_limit: int | str | None = None,
    per_customer_limit: int | str | None = None,
    exclusive: bool = True,
    priority: int = 0,
    active: bool = True,
) -> int:
    """A new promotion; amounts are text ('5.00') or cents.  Returns its id."""
    _require_tx(conn, "add")
    name_v = validate.text(name, field="name", max_len=60, required=True)
    assert name_v is not None
    if conn.execute("SELECT 1 FROM promotions WHERE name_key = ?", (validate.name_key(name_v),)).fetchone():
        raise Conflict(f"a promotion named {name_v!r} already exists", "choose another name or 'promo edit' it")
    skus = _values(skus, "SKU")
    cats = _values(categories, "category")
    kf = _kind_fields(conn, percent=percent, amount_off=amount_off, fixed_price=fixed_price, buy=buy, get=get,
                      free_sku=free_sku, gift=gift, gift_qty=gift_qty, once=once, skus=skus)
    cp, ck = _coupon(coupon)
    if ck and conn.execute("SELECT 1 FROM promotions WHERE coupon_key = ?", (ck,)).fetchone():
        raise Conflict(f"the coupon {cp} belongs to another promotion")
    a, b = _window(starts, ends)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ValidationError("priority must be a whole number")
    now = db.now_iso()
    cur = conn.execute(
        "INSERT INTO promotions (name, name_key, description, kind, percent, amount_cents, buy_qty, get_qty,"
        " get_product_id, repeat, min_qty, min_amount, channels, segments, starts_on, ends_on, coupon, coupon_key,"
        " usage_limit, per_customer_limit, active, exclusive, priority, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (name_v, validate.name_key(name_v), validate.text(description, field="description", max_len=500),
         kf["kind"], kf["percent"], kf["amount_cents"], kf["buy_qty"], kf["get_qty"], kf["get_product_id"],
         kf["repeat"], _count(min_qty, "minimum quantity"), _money_value(min_amount, "minimum amount", positive=True),
         _channels(conn, channels), _segments(segments), a, b, cp, ck, _count(usage_limit, "usage limit"),
         _count(per_customer_limit, "per-customer limit"), 1 if active else 0, 1 if exclusive else 0,
         priority, now, now),
    )
    pid = int(cur.lastrowid or 0)
    _set_targets(conn, pid, skus, cats)
    db.audit(conn, "create", "promotion", pid)
    return pid


_KIND_KEYS = ("percent", "amount_off", "fixed_price", "buy", "get", "free_sku", "once", "gift", "gift_qty")


def edit(conn: sqlite3.Connection, ref: int | str, **changes: Any) -> dict[str, Any]:
    """Change a promotion (None leaves a field alone; ``""`` clears an
    optional one).  Kind options replace the kind; ``skus``/``categories``
    replace the targets."""
    _require_tx(conn, "edit")
    p = get(conn, ref)
    sets: dict[str, Any] = {}
    kind_changes = {k: changes.pop(k) for k in _KIND_KEYS if k in changes}
    skus = changes.pop("skus", None)
    cats = changes.pop("categories", None)
    if skus is not None or cats is not None:
        new_skus = _values(skus, "SKU") if skus is not None else p["skus"]
        new_cats = _values(cats, "category") if cats is not None else p["categories"]
        _set_targets(conn, p["id"], new_skus, new_cats)
        sets["updated_at"] = db.now_iso()
    else:
        new_skus = p["skus"]
    if any(v not in (None, False) for v in kind_changes.values()):
        kf = _kind_fields(conn, skus=new_skus, **kind_changes)
        sets.update(kf)
    for key, value in changes.items():
        if value is None:
            continue
        blank = isinstance(value, str) and not value.strip()
        if key == "name":
            v = validate.text(value, field="name", max_len=60, required=True)
            assert v is not None
            if conn.execute("SELECT 1 FROM promotions WHERE name_key = ? AND id <> ?",
                            (validate.name_key(v), p["id"])).fetchone():
                raise Conflict(f"a promotion named {v!r} already exists")
            sets["name"], sets["name_key"] = v, validate.name_key(v)
        elif key == "description":
            sets["description"] = validate.text(value, field="description", max_len=500)
        elif key == "channels":
            sets["channels"] = None if blank else _channels(conn, value)
        elif key == "segments":
            sets["segments"] = None if blank else _segments(value)
        elif key == "min_qty":
            sets["min_qty"] = None if blank else _count(value, "minimum quantity")
        elif key == "min_amount":
            sets["min_amount"] = None if blank else _money_value(value, "minimum amount", positive=True)
        elif key in ("starts", "ends"):
            col = "starts_on" if key == "starts" else "ends_on"
            sets[col] = None if blank else validate.parse_date(value, field="--from" if key == "starts"
                                                               else "--to").isoformat()
        elif key == "coupon":
            cp, ck = (None, None) if blank else _coupon(value)
            if ck and conn.execute("SELECT 1 FROM promotions WHERE coupon_key = ? AND id <> ?",
                                   (ck, p["id"])).fetchone():
                raise Conflict(f"the coupon {cp} belongs to another promotion")
            sets["coupon"], sets["coupon_key"] = cp, ck
        elif key == "usage_limit":
            sets["usage_limit"] = None if blank else _count(value, "usage limit")
        elif key == "per_customer_limit":
            sets["per_customer_limit"] = None if blank else _count(value, "per-customer limit")
        elif key == "exclusive":
            sets["exclusive"] = 1 if value else 0
        elif key == "priority":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValidationError("priority must be a whole number")
            sets["priority"] = value
        elif key == "active":
            sets["active"] = 1 if value else 0
            if value:
                sets["ended_at"] = None
        elif key == "repeat":
            if sets.get("kind", p["kind"]) != "free_items":
                raise ValidationError("--every/--once go with buy X get Y free promotions")
            sets["repeat"] = 1 if value else 0
        else:
            raise ValidationError(f"cannot edit {key!r}")
    starts = sets.get("starts_on", p["starts_on"])
    ends = sets.get("ends_on", p["ends_on"])
    if starts and ends and starts > ends:
        raise ValidationError(f"the promotion ends ({ends}) before it starts ({starts})")
    if sets:
        sets["updated_at"] = db.now_iso()
        assignments = ", ".join(f"{k} = ?" for k in sets)  # keys from the code above only
        conn.execute(f"UPDATE promotions SET {assignments} WHERE id = ?", [*sets.values(), p["id"]])
        db.audit(conn, "update", "promotion", p["id"])
    return get(conn, p["id"])


def end(conn: sqlite3.Connection, ref: int | str) -> dict[str, Any]:
    """End a promotion now: it no longer applies to drafts priced from now on;
    confirmed orders keep it."""
    _require_tx(conn, "end")
    p = get(conn, ref)
    if p["ended_at"]:
        raise Conflict(f"promotion {p['name']} already ended at {p['ended_at']}",
                       "restart it with 'promo edit NAME --active'")
    now = db.now_iso()
    conn.execute("UPDATE promotions SET active = 0, ended_at = ?, updated_at = ? WHERE id = ?", (now, now, p["id"]))
    db.audit(conn, "end", "promotion", p["id"])
    return get(conn, p["id"])


def usage_count(conn: sqlite3.Connection, promo_id: int, *, customer_id: int | None = None,
                exclude_order: int | None = None) -> int:
    sql = ("SELECT count(*) FROM promotion_usage u JOIN orders o ON o.id = u.order_id"
           " WHERE u.promotion_id = ? AND u.released_at IS NULL AND u.order_id IS NOT ?")
    params: list[Any] = [promo_id, exclude_order]
    if customer_id is not None:
        sql += " AND o.customer_id = ?"
        params.append(customer_id)
    return int(conn.execute(sql, params).fetchone()[0])


def state(p: dict[str, Any], used: int, today: date | None = None) -> str:
    today_s = (today or date.today()).isoformat()
    if p["ended_at"]:
        return "ended"
    if not p["active"]:
        return "inactive"
    if p["starts_on"] and p["starts_on"] > today_s:
        return "scheduled"
    if p["ends_on"] and p["ends_on"] < today_s:
        return "expired"
    if p["usage_limit"] is not None and used >= p["usage_limit"]:
        return "used up"
    return "active"


def list_promotions(conn: sqlite3.Connection, *, include_all: bool = False,
                    today: date | None = None) -> list[dict[str, Any]]:
    """Promotions with their state and usage; without ``include_all`` only
    those active or scheduled."""
    out = []
    for r in conn.execute("SELECT * FROM promotions ORDER BY priority DESC, id").fetchall():
        p = _promo(conn, r)
        p["used"] = usage_count(conn, p["id"])
        p["state"] = state(p, p["used"], today)
        if include_all or p["state"] in ("active", "scheduled"):
            out.append(p)
    return out


# --------------------------------------------------------------------------- the engine


@dataclass
class Line:
    key: int  # order line id, or the position in a hypothetical basket
    line_no: int
    product_id: int
    sku: str
    category: str | None  # casefolded
    qty: int
    unit_price: int
    unit_cost: int
    tax_rate: Decimal
    net: int
    total: int


@dataclass
class Basket:
    lines: list[Line]
    channel: str
    day: date
    tax_inclusive: bool
    customer_id: int | None = None
    segment: str | None = None
    coupon_key: str | None = None
    order_id: int | None = None


@dataclass
class Candidate:
    promo: dict[str, Any]
    applicable: bool = False
    applied: bool = False
    reason: str = ""
    hint: str | None = None
    saving: int = 0
    line_savings: dict[int, int] = field(default_factory=dict)
    free_qty: int = 0
    capped: bool = False
    qualifying: list[Line] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.promo["name"])


@dataclass
class Outcome:
    candidates: list[Candidate]
    applied: list[Candidate]
    basket: Basket

    @property
    def saving(self) -> int:
        return sum(c.saving for c in self.applied)

    @property
    def hints(self) -> list[str]:
        return [c.hint for c in self.candidates if c.hint]


def _qualifies(p: dict[str, Any], line: Line) -> bool:
    if not p["product_ids"] and not p["categories"]:
        return True
    return line.product_id in p["product_ids"] or (line.category is not None and line.category in p["categories"])


def _on(p: dict[str, Any]) -> str:
    t = _targets_text(p)
    return f" of {t}" if t else ""


def _floor(line: Line, margin: Decimal) -> int:
    """The least the seller must keep for a line (net of tax): cost plus the
    minimum margin on the price."""
    return money.round_cents(Decimal(line.unit_cost) * line.qty * 100 / (100 - margin))


def _free_sets(p: dict[str, Any], qty: int) -> int:
    if qty < p["buy_qty"]:
        return 0
    return qty // p["buy_qty"] if p["repeat"] else 1


def _check(conn: sqlite3.Connection, p: dict[str, Any], b: Basket) -> Candidate:
    """The conditions, in order; a failed one is the reason, with a hint when
    only the quantity or the amount is missing."""
    c = Candidate(p)
    day = b.day.isoformat()
    if p["ended_at"]:
        c.reason = f"ended on {p['ended_at'][:10]}"
        return c
    if not p["active"]:
        c.reason = "inactive"
        return c
    if p["starts_on"] and p["starts_on"] > day:
        c.reason = f"not started: starts on {p['starts_on']}"
        return c
    if p["ends_on"] and p["ends_on"] < day:
        c.reason = f"expired on {p['ends_on']}"
        return c
    if p["coupon_key"] and b.coupon_key != p["coupon_key"]:
        c.reason = "needs its coupon code" + (" (another was given)" if b.coupon_key else "")
        return c
    if p["channel_list"] and b.channel not in p["channel_list"]:
        c.reason = f"only for channel {', '.join(p['channel_list'])} (this is {b.channel})"
        return c
    if p["segment_list"] and (b.segment or "").casefold() not in p["segment_list"]:
        seg = b.segment or "none" if b.customer_id is not None else "no customer given"
        c.reason = f"only for segment {', '.join(p['segment_list'])} (customer: {seg})"
        return c
    if p["kind"] in ("free_items", "gift") and not p["get_active"]:
        c.reason = f"the {'gift' if p['kind'] == 'gift' else 'free'} product {p['get_sku']} is archived"
        return c
    if p["usage_limit"] is not None:
        used = usage_count(conn, p["id"], exclude_order=b.order_id)
        if used >= p["usage_limit"]:
            c.reason = f"usage limit reached ({used} of {p['usage_limit']} used)"
            return c
    if p["per_customer_limit"] is not None and b.customer_id is not None:
        used = usage_count(conn, p["id"], customer_id=b.customer_id, exclude_order=b.order_id)
        if used >= p["per_customer_limit"]:
            c.reason = f"used {used} time{'s' if used != 1 else ''} by this customer (limit {p['per_customer_limit']})"
            return c
    c.qualifying = [ln for ln in b.lines if _qualifies(p, ln)]
    if not c.qualifying:
        c.reason = f"no qualifying items (needs {_targets_text(p)})" if _targets_text(p) else "the order has no lines"
        return c
    qty = sum(ln.qty for ln in c.qualifying)
    amount = sum(ln.total for ln in c.qualifying)
    unlock = f"to unlock {p['name']} ({p['summary']})"
    if p["min_qty"] and qty < p["min_qty"]:
        c.reason = f"needs {p['min_qty']} units{_on(p)}, has {qty}"
        c.hint = f"add {p['min_qty'] - qty} more unit{'s' if p['min_qty'] - qty != 1 else ''}{_on(p)} {unlock}"
        return c
    if p["min_amount"] and amount < p["min_amount"]:
        c.reason = f"needs {money.fmt(p['min_amount'])}{_on(p)}, has {money.fmt(amount)}"
        c.hint = f"spend {money.fmt(p['min_amount'] - amount)} more{' on ' + _targets_text(p) if _targets_text(p) else ''} {unlock}"
        return c
    if p["kind"] == "free_items":
        sets = _free_sets(p, qty)
        if sets == 0:
            c.reason = f"buy {p['buy_qty']}{_on(p)} to get {p['get_qty']} free, has {qty}"
            c.hint = f"add {p['buy_qty'] - qty} more{_on(p)} {unlock}"
            return c
        c.free_qty = sets * p["get_qty"]
        if p["repeat"]:
            more = p["buy_qty"] - qty % p["buy_qty"]
            c.hint = (f"add {more} more{_on(p)} to get {p['get_qty']} more {p['get_sku']} free"
                      f" ({p['name']})")
    elif p["kind"] == "gift":
        c.free_qty = p["get_qty"]
    c.applicable = True
    return c


def _free_value(conn: sqlite3.Connection, p: dict[str, Any], qty: int, b: Basket) -> int:
    from salescrm import orders

    gp = products.get_by_id(conn, p["get_product_id"])
    return orders.line_amounts(qty, gp["list_price"], tax_rate=gp["tax_rate"], tax_inclusive=b.tax_inclusive).total


def _share(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` (largest remainder)."""
    wsum = sum(weights)
    if wsum <= 0:
        return [0] * len(weights)
    exact = [Decimal(total) * w / wsum for w in weights]
    parts = [int(x) for x in exact]
    left = total - sum(parts)
    for i in sorted(range(len(weights)), key=lambda i: (-(exact[i] - parts[i]), i))[:left]:
        parts[i] += 1
    return parts


def _savings(conn: sqlite3.Connection, c: Candidate, b: Basket, paid: dict[int, int], room: dict[int, int]) -> None:
    """Fill ``c.saving`` / ``c.line_savings`` against what is left to pay
    (``paid``) and the room above each line's floor (``room``)."""
    from salescrm import orders

    p = c.promo
    c.line_savings, c.capped = {}, False
    k = p["kind"]
    if k in ("free_items", "gift"):
        c.saving = _free_value(conn, p, c.free_qty, b)
        return
    lines = c.qualifying
    if k == "percent":
        want = {ln.key: money.round_cents(Decimal(paid[ln.key]) * p["percent"] / 100) for ln in lines}
    elif k == "fixed_price":
        want = {}
        for ln in lines:
            at = orders.line_amounts(ln.qty, p["amount_cents"], tax_rate=ln.tax_rate,
                                     tax_inclusive=b.tax_inclusive).total
            want[ln.key] = max(0, paid[ln.key] - at)
    else:  # amount: shared by value; what a capped line cannot take goes to the others
        want = {ln.key: 0 for ln in lines}
        left = p["amount_cents"]
        open_lines = [ln for ln in lines if room[ln.key] > 0]
        while left > 0 and open_lines:
            parts = _share(left, [max(paid[ln.key], 1) for ln in open_lines])
            placed = 0
            for ln, part in zip(open_lines, parts):
                put = min(part, room[ln.key] - want[ln.key])
                want[ln.key] += put
                placed += put
            left -= placed
            open_lines = [ln for ln in open_lines if want[ln.key] < room[ln.key]]
            if placed == 0:
                break
        if left > 0:
            c.capped = True
    for ln in lines:
        w = want.get(ln.key, 0)
        s = min(w, room[ln.key])
        if s < w:
            c.capped = True
        if s > 0:
            c.line_savings[ln.key] = s
    c.saving = sum(c.line_savings.values())


#: Promotions that ended or expired longer ago than this (before the order date) are no longer candidates.
RECENT_DAYS = 30


def evaluate(conn: sqlite3.Connection, b: Basket) -> Outcome:
    """Every promotion against the basket, with the precedence rule applied
    (those that ended more than ``RECENT_DAYS`` before the order date are
    left out)."""
    cutoff = (b.day - timedelta(days=RECENT_DAYS)).isoformat()
    promos = [_promo(conn, r) for r in conn.execute(
        "SELECT * FROM promotions WHERE (ends_on IS NULL OR ends_on >= ?)"
        " AND (ended_at IS NULL OR substr(ended_at, 1, 10) >= ?) ORDER BY id", (cutoff, cutoff)).fetchall()]
    margin = min_margin(conn)
    floors = {ln.key: _floor(ln, margin) for ln in b.lines}
    base_paid = {ln.key: ln.total for ln in b.lines}
    base_room = {ln.key: max(0, min(ln.total, ln.net - floors[ln.key])) for ln in b.lines}
    cands = [_check(conn, p, b) for p in promos]
    for c in cands:
        if c.applicable:
            _savings(conn, c, b, base_paid, base_room)
            if c.saving == 0:
                c.applicable = False
                c.reason = ("no saving: the lines are at their cost floor (cost + minimum margin)" if c.capped
                            else "no saving on these prices")
    applied: list[Candidate] = []
    exclusive = [c for c in cands if c.applicable and c.promo["exclusive"]]
    if exclusive:
        win = max(exclusive, key=lambda c: (c.saving, c.promo["priority"], -c.promo["id"]))
        win.applied = True
        win.reason = "applied: the exclusive promotion with the largest saving" if len(exclusive) > 1 else \
            "applied (exclusive)"
        applied.append(win)
        for c in exclusive:
            if c is win:
                continue
            if c.saving < win.saving:
                why = f"saves {money.fmt(c.saving)}, less than {win.name} ({money.fmt(win.saving)})"
            elif c.promo["priority"] < win.promo["priority"]:
                why = f"same saving as {win.name}, lower priority"
            else:
                why = f"same saving and priority as {win.name}, created later"
            c.reason = f"not applied: exclusive, {why}"
    paid = dict(base_paid)
    room = dict(base_room)

    def take(c: Candidate) -> None:
        for key, s in c.line_savings.items():
            paid[key] -= s
            room[key] -= s

    for c in applied:
        take(c)
    stackable = sorted((c for c in cands if c.applicable and not c.promo["exclusive"]),
                       key=lambda c: (-c.promo["priority"], c.promo["id"]))
    for c in stackable:
        _savings(conn, c, b, paid, room)
        if c.saving == 0:
            c.reason = "not applied: no saving left on these lines after the promotions before it (cost floor)"
            continue
        c.applied = True
        c.reason = "applied (stackable)" if len(applied) == 0 else "applied on top (stackable)"
        applied.append(c)
        take(c)
    for c in applied:
        if c.capped:
            c.reason += "; capped at cost + minimum margin"
    for c in cands:
        if c.applicable and not c.applied:
            c.hint = None  # "add N more to get more free" only helps when it applies
    order = {id(c): i for i, c in enumerate(applied)}
    cands.sort(key=lambda c: (0 if c.applied else 1, order.get(id(c), 0), -c.promo["priority"], c.promo["id"]))
    return Outcome(cands, applied, b)


# --------------------------------------------------------------------------- baskets


def _order_row(conn: sqlite3.Connection, order: int | str) -> sqlite3.Row:
    from salescrm import orders

    row = orders.find_order(conn, order)
    if row is None:
        raise NotFound(f"no order {str(order).strip()!r}", "see 'salescrm order list'")
    return row


def _promo_line_ids(conn: sqlite3.Connection, order_id: int) -> set[int]:
    return {r[0] for r in conn.execute(
        "SELECT line_id FROM order_promotions WHERE order_id = ? AND line_id IS NOT NULL", (order_id,))}


def order_basket(conn: sqlite3.Connection, order: int | str) -> Basket:
    """The order's paid lines (promotion lines left out) and its context."""
    o = _order_row(conn, order)
    free = _promo_line_ids(conn, o["id"])
    lines = []
    for r in conn.execute(
            "SELECT l.*, p.category FROM order_lines l JOIN products p ON p.id = l.product_id"
            " WHERE l.order_id = ? ORDER BY l.line_no", (o["id"],)).fetchall():
        if r["id"] in free:
            continue
        lines.append(Line(key=r["id"], line_no=r["line_no"], product_id=r["product_id"], sku=r["sku"],
                          category=r["category"].casefold() if r["category"] else None, qty=r["qty"],
                          unit_price=r["unit_price"], unit_cost=r["unit_cost"], tax_rate=Decimal(r["tax_rate"]),
                          net=r["net_cents"], total=r["total_cents"]))
    cust = conn.execute("SELECT segment FROM customers WHERE id = ?", (o["customer_id"],)).fetchone()
    coupon = conn.execute("SELECT coupon_key FROM order_coupons WHERE order_id = ?", (o["id"],)).fetchone()
    return Basket(lines=lines, channel=o["channel"], day=date.fromisoformat(o["order_date"]),
                  tax_inclusive=bool(o["tax_inclusive"]), customer_id=o["customer_id"],
                  segment=cust["segment"] if cust else None, coupon_key=coupon[0] if coupon else None,
                  order_id=o["id"])


def hypothetical_basket(conn: sqlite3.Connection, lines: Sequence[str], *, customer: int | str | None = None,
                        channel: str | None = None, coupon: str | None = None,
                        day: str | date | None = None) -> Basket:
    """A basket from ``SKU:QTY[@PRICE][-DISC]`` specs, priced like a new order."""
    from salescrm import orders, settings

    if not lines:
        raise ValidationError("give an order or at least one --line SKU:QTY")
    inclusive = bool(settings.get(conn, "tax_inclusive"))
    out = []
    for i, spec in enumerate(lines, start=1):
        s = orders.parse_line(spec)
        p = products.get(conn, s.sku)
        price = p["list_price"] if s.unit_price is None else s.unit_price
        a = orders.line_amounts(s.qty, price, tax_rate=p["tax_rate"], tax_inclusive=inclusive,
                                discount_pct=s.discount_pct, discount_cents=s.discount_cents)
        out.append(Line(key=i, line_no=i, product_id=p["id"], sku=p["sku"],
                        category=p["category"].casefold() if p["category"] else None, qty=s.qty, unit_price=price,
                        unit_cost=p["unit_cost"], tax_rate=p["tax_rate"], net=a.net, total=a.total))
    cid = segment = None
    if customer is not None:
        c = orders.resolve_customer(conn, customer)
        cid = c["id"]
        segment = conn.execute("SELECT segment FROM customers WHERE id = ?", (cid,)).fetchone()[0]
    ch = orders._channel(conn, channel)
    _, ck = _coupon(coupon)
    d = validate.parse_date(day, field="--date") if day else date.today()
    return Basket(lines=out, channel=ch, day=d, tax_inclusive=inclusive, customer_id=cid, segment=segment,
                  coupon_key=ck)


def explain(conn: sqlite3.Connection, order: int | str | None = None, **hypothetical: Any) -> Outcome:
    """Every candidate promotion for an order (or a hypothetical basket: see
    ``hypothetical_basket``) with why it applies or not."""
    if order is not None:
        if any(v for v in hypothetical.values()):
            raise ValidationError("give an order or --line ..., not both")
        return evaluate(conn, order_basket(conn, order))
    return evaluate(conn, hypothetical_basket(conn, **hypothetical))


# --------------------------------------------------------------------------- orders


def _desired(conn: sqlite3.Connection, out: Outcome) -> list[tuple]:
    want = []
    for c in out.applied:
        p = c.promo
        if p["kind"] in ("free_items", "gift"):
            desc = f"{p['get_name']} ({'gift' if p['kind'] == 'gift' else 'free'}, promotion {p['name']})"
            want.append(("line", p["id"], p["get_product_id"], c.free_qty, c.saving, desc[:200]))
        else:
            desc = f"Promotion {p['name']}: {p['summary']}"
            want.append(("adjustment", p["id"], None, None, c.saving, desc[:200]))
    return want


def _existing(conn: sqlite3.Connection, order_id: int) -> list[tuple]:
    have = []
    for r in conn.execute(
            "SELECT op.promotion_id, op.saving_cents, op.adjustment_id, a.description AS adesc, a.amount_cents,"
            " l.product_id, l.qty, l.description AS ldesc"
            " FROM order_promotions op LEFT JOIN order_adjustments a ON a.id = op.adjustment_id"
            " LEFT JOIN order_lines l ON l.id = op.line_id WHERE op.order_id = ? ORDER BY op.id", (order_id,)):
        if r["adjustment_id"] is not None:
            have.append(("adjustment", r["promotion_id"], None, None, -r["amount_cents"], r["adesc"]))
        else:
            have.append(("line", r["promotion_id"], r["product_id"], r["qty"], r["saving_cents"], r["ldesc"]))
    return have


def apply_to_order(conn: sqlite3.Connection, order: int | str) -> Outcome | None:
    """Recompute a draft order's promotions from scratch: remove what
    promotions added, evaluate, add each discount as an order adjustment and
    each free item as a line at price 0, then recompute the order's totals
    once.  Nothing is written when the result is unchanged.  Other states:
    nothing happens (returns None).

    It writes the rows itself (it never calls back into ``orders``' line or
    adjustment functions), so ``orders`` may call it from any of them; in
    ``remove_line`` call it before the totals are recomputed, so that a
    discount the remaining lines no longer earn is gone first."""
    _require_tx(conn, "apply_to_order")
    from salescrm import orders

    o = _order_row(conn, order)
    if o["status"] != "draft":
        return None
    out = evaluate(conn, order_basket(conn, o["id"]))
    want = _desired(conn, out)
    # rows whose adjustment or line was removed by hand are gone (cascade): compare what is left
    if sorted(want, key=repr) == sorted(_existing(conn, o["id"]), key=repr):
        return out
    events: list[str] = []
    for r in conn.execute("SELECT op.id, op.adjustment_id, op.line_id, a.description, l.line_no, l.sku, l.qty"
                          " FROM order_promotions op LEFT JOIN order_adjustments a ON a.id = op.adjustment_id"
                          " LEFT JOIN order_lines l ON l.id = op.line_id WHERE op.order_id = ? ORDER BY op.id",
                          (o["id"],)).fetchall():
        if r["adjustment_id"] is not None:
            conn.execute("DELETE FROM order_adjustments WHERE id = ?", (r["adjustment_id"],))
            db.audit(conn, "delete", "order_adjustment", r["adjustment_id"])
            events.append(f"removed {r['description']}")
        elif r["line_id"] is not None:
            conn.execute("DELETE FROM order_lines WHERE id = ?", (r["line_id"],))
            db.audit(conn, "delete", "order_line", r["line_id"])
            events.append(f"removed line {r['line_no']}: {r['sku']} x {r['qty']}")
    conn.execute("DELETE FROM order_promotions WHERE order_id = ?", (o["id"],))
    for kind, pid, product_id, qty, saving, desc in want:
        if kind == "adjustment":
            cur = conn.execute("INSERT INTO order_adjustments (order_id, kind, description, percent, amount_cents)"
                               " VALUES (?, 'discount', ?, NULL, ?)", (o["id"], desc, -saving))
            target = int(cur.lastrowid or 0)
            db.audit(conn, "create", "order_adjustment", target)
            cur = conn.execute("INSERT INTO order_promotions (order_id, promotion_id, adjustment_id, saving_cents)"
                               " VALUES (?, ?, ?, ?)", (o["id"], pid, target, saving))
            events.append(f"added {desc} (-{money.fmt(saving)})")
        else:
            gp = products.get_by_id(conn, product_id)
            line_no = conn.execute("SELECT coalesce(max(line_no), 0) + 1 FROM order_lines WHERE order_id = ?",
                                   (o["id"],)).fetchone()[0]
            cur = conn.execute(
                "INSERT INTO order_lines (order_id, line_no, product_id, sku, description, qty, unit_price, unit_cost,"
                " discount_pct, gross_cents, discount_cents, tax_rate, net_cents, tax_cents, total_cents)"
                " VALUES (?, ?, ?, ?, ?, ?, 0, ?, NULL, 0, 0, ?, 0, 0, 0)",
                (o["id"], line_no, gp["id"], gp["sku"], desc, qty, gp["unit_cost"], products.rate_text(gp["tax_rate"])))
            target = int(cur.lastrowid or 0)
            db.audit(conn, "create", "order_line", target)
            cur = conn.execute("INSERT INTO order_promotions (order_id, promotion_id, line_id, saving_cents)"
                               " VALUES (?, ?, ?, ?)", (o["id"], pid, target, saving))
            events.append(f"added line {line_no}: {gp['sku']} x {qty} free ({desc})")
        db.audit(conn, "create", "order_promotion", cur.lastrowid)
    orders.recalc(conn, o["id"])
    orders.event(conn, o["id"], "promotion", "; ".join(events))
    return out


def set_coupon(conn: sqlite3.Connection, order: int | str, code: str | None) -> Outcome | None:
    """Enter (or with ``None``/``""`` remove) a coupon code on a draft order
    and reprice its promotions."""
    _require_tx(conn, "set_coupon")
    from salescrm import lifecycle

    o = _order_row(conn, order)
    lifecycle.require(o["status"], "edit", number=o["number"])
    cp, ck = _coupon(code)
    conn.execute("DELETE FROM order_coupons WHERE order_id = ?", (o["id"],))
    if ck:
        if not conn.execute("SELECT 1 FROM promotions WHERE coupon_key = ?", (ck,)).fetchone():
            raise NotFound(f"no promotion has the coupon {cp}", "see 'salescrm promo list --all'")
        conn.execute("INSERT INTO order_coupons (order_id, coupon, coupon_key) VALUES (?, ?, ?)", (o["id"], cp, ck))
    db.audit(conn, "update", "order_coupon", o["id"])
    return apply_to_order(conn, o["id"])


def order_promotions(conn: sqlite3.Connection, order: int | str) -> list[dict[str, Any]]:
    """What promotions did to an order: one row per discount or free line."""
    o = _order_row(conn, order)
    return [dict(r) for r in conn.execute(
        "SELECT p.name AS promotion, p.kind, op.saving_cents AS saving,"
        " CASE WHEN op.adjustment_id IS NOT NULL THEN 'adjustment' ELSE 'line ' || l.line_no END AS applied_as,"
        " coalesce(a.description, l.description) AS description"
        " FROM order_promotions op JOIN promotions p ON p.id = op.promotion_id"
        " LEFT JOIN order_adjustments a ON a.id = op.adjustment_id LEFT JOIN order_lines l ON l.id = op.line_id"
        " WHERE op.order_id = ? ORDER BY op.id", (o["id"],))]


def on_confirm(conn: sqlite3.Connection, order: int | str) -> int:
    """Count the order's promotions as used (call when it is confirmed, in
    the same transaction).  A promotion that reached a limit since the order
    was priced is refused.  Returns the number of promotions counted."""
    _require_tx(conn, "on_confirm")
    o = _order_row(conn, order)
    rows = conn.execute("SELECT promotion_id, sum(saving_cents) FROM order_promotions WHERE order_id = ?"
                        " GROUP BY promotion_id ORDER BY promotion_id", (o["id"],)).fetchall()
    n = 0
    for pid, saving in rows:
        p = get(conn, pid)
        if p["usage_limit"] is not None:
            used = usage_count(conn, pid, exclude_order=o["id"])
            if used >= p["usage_limit"]:
                raise BusinessRule(
                    f"promotion {p['name']} reached its usage limit ({used} of {p['usage_limit']} used)"
                    f" after {o['number']} was priced",
                    f"reprice it with 'salescrm promo apply {o['number']}', then confirm")
        if p["per_customer_limit"] is not None:
            used = usage_count(conn, pid, customer_id=o["customer_id"], exclude_order=o["id"])
            if used >= p["per_customer_limit"]:
                raise BusinessRule(
                    f"promotion {p['name']} is used up for customer {o['customer_id']}"
                    f" ({used} of {p['per_customer_limit']}) since {o['number']} was priced",
                    f"reprice it with 'salescrm promo apply {o['number']}', then confirm")
        cur = conn.execute(
            "INSERT INTO promotion_usage (promotion_id, order_id, saving_cents, used_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (promotion_id, order_id) DO UPDATE SET released_at = NULL, saving_cents = excluded.saving_cents",
            (pid, o["id"], int(saving), db.now_iso()))
        db.audit(conn, "use", "promotion", pid)
        n += 1 if cur.rowcount else 0
    return n


def on_cancel(conn: sqlite3.Connection, order: int | str) -> int:
    """Release the order's promotion usage (call when it is cancelled).
    Returns the number of promotions released."""
    _require_tx(conn, "on_cancel")
    o = _order_row(conn, order)
    rows = conn.execute("SELECT id, promotion_id FROM promotion_usage WHERE order_id = ? AND released_at IS NULL",
                        (o["id"],)).fetchall()
    now = db.now_iso()
    for r in rows:
        conn.execute("UPDATE promotion_usage SET released_at = ? WHERE id = ?", (now, r["id"]))
        db.audit(conn, "release", "promotion", r["promotion_id"])
    return len(rows)


# --------------------------------------------------------------------------- effectiveness


def effectiveness(conn: sqlite3.Connection, *, date_from: str | date | None = None,
                  date_to: str | date | None = None) -> list[dict[str, Any]]:
    """Per promotion: orders that used it (confirmed, not cancelled), their
    revenue (order totals after returns) and the discount given (the value
    of free items included), by order date."""
    where, params = ["u.released_at IS NULL"], []
    if date_from:
        where.append("o.order_date >= ?")
        params.append(validate.parse_date(date_from, field="--from").isoformat())
    if date_to:
        where.append("o.order_date <= ?")
        params.append(validate.parse_date(date_to, field="--to").isoformat())
    sql = f"""
        SELECT p.id, p.name, p.kind, p.exclusive, p.priority,
               count(x.order_id) AS orders,
               coalesce(sum(x.revenue), 0) AS revenue,
               coalesce(sum(x.saving_cents), 0) AS discount
        FROM promotions p LEFT JOIN (
            SELECT u.promotion_id, u.order_id, u.saving_cents, o.total_cents - o.returned_cents AS revenue
            FROM promotion_usage u JOIN orders o ON o.id = u.order_id
            WHERE {' AND '.join(where)} AND o.status <> 'cancelled'
        ) x ON x.promotion_id = p.id
        GROUP BY p.id ORDER BY discount DESC, p.id
    """
    out = []
    for r in conn.execute(sql, params):
        d = dict(r)
        d["exclusive"] = bool(d["exclusive"])
        gross = d["revenue"] + d["discount"]
        d["discount_pct"] = (Decimal(d["discount"]) * 100 / gross).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP) \
            if gross else None
        out.append(d)
    return out
