"""Pricing strategies, price history and competitors' prices.  No Typer, no Rich.

Strategies (money in cents, arithmetic in ``Decimal``, rounded half-up to
the cent once):

* cost-plus P%:   price = cost x (1 + P/100)            (0 <= P <= 1000)
* margin M%:      price = cost / (1 - M/100)             (0 <= M < 100)
* match market:   price = lowest current competitor price x (1 - U/100)
  with ``undercut`` U% (0 <= U <= 100); a competitor's current price is its
  latest observation.
* round to an ending (``.99``, ``.95``, ``9.99``): with cost-plus and
  margin the lowest such price not below the computed one (the markup asked
  for is kept); when matching the market the highest one not above it (we
  never end up dearer than the market); when that is below cost, the next
  one up.

A price below the unit cost is refused unless ``allow_below_cost``.  Every
change of a list price is kept in ``price_history`` (by triggers, so that
``product edit`` and imports are recorded too); a strategy names itself on
its row with who applied it.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from salescrm import db, money, products, validate
from salescrm.errors import BusinessRule, ValidationError

MAX_MARKUP = Decimal(1000)


def parse_markup(text: str | Decimal, *, field: str = "cost-plus") -> Decimal:
    """A markup percent, 0 to 1000 ('30%', '150')."""
    s = str(text).strip().removesuffix("%").strip()
    value = money.parse_decimal(s, field=field)
    if value < 0 or value > MAX_MARKUP:
        raise ValidationError(f"{field} must be between 0 and {MAX_MARKUP}%, not {s}%")
    return value


def parse_margin(text: str | Decimal, *, field: str = "margin") -> Decimal:
    """A margin on the price, 0 to under 100 ('25%')."""
    value = money.parse_percent(str(text), field=field)
    if value >= 100:
        raise ValidationError(f"{field} must be below 100%, not {value}%",
                              "a 100% margin would need an infinite price")
    return value


def parse_ending(text: str) -> tuple[int, int]:
    """'.99' -> (99, 100): the ending in cents and the step between prices
    with that ending; '9.99' -> (999, 1000); '5' -> (500, 1000)."""
    s = str(text).strip()
    m = re.fullmatch(r"(\d*)(?:\.(\d{1,2}))?", s)
    if not s or not m or (not m.group(1) and not m.group(2)):
        raise ValidationError(f"not a price ending: {s!r}", "write it like .99, .95 or 9.99")
    whole = m.group(1).lstrip("0")
    cents = int(m.group(1) or 0) * 100 + int((m.group(2) or "0").ljust(2, "0"))
    step = 100 * 10 ** len(whole)
    return cents, step


def round_to_ending(cents: int, ending: str, *, at_least: int | None = None, mode: str = "nearest") -> int:
    """A price ending in ``ending``: the nearest one (a tie goes up), or with
    ``mode`` "up" the lowest one not below ``cents``, or "down" the highest
    one not above it; never below ``at_least`` when given (then the lowest
    such price at or above it)."""
    end, step = parse_ending(ending)
    n = max(0, (cents - end) // step)
    candidates = [n * step + end, (n + 1) * step + end]
    if n > 0:
        candidates.insert(0, (n - 1) * step + end)
    if mode == "down":
        below = [c for c in candidates if c <= cents]
        best = max(below) if below else min(candidates)
    elif mode == "up":
        best = min(c for c in candidates if c >= cents)
    else:
        best = min(candidates, key=lambda c: (abs(c - cents), -c))
    if at_least is not None and best < at_least:
        k = max(0, -(-(at_least - end) // step))  # ceil
        best = k * step + end
    return best


def _cents(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _pct_text(p: Decimal) -> str:
    return f"{products.rate_text(p)}%"


# --------------------------------------------------------------------------- market prices


def add_market_price(conn: sqlite3.Connection, sku: str, *, source: str, price: int,
                     at: str | date | None = None) -> int:
    """Record a competitor's price (cents) for a product, observed on ``at``
    (default today)."""
    assert conn.in_transaction, "pricing.add_market_price must run inside db.write_tx"
    p = products.get(conn, sku)
    src = validate.text(source, field="source", max_len=100, required=True)
    assert src is not None
    if isinstance(price, bool) or not isinstance(price, int):
        raise ValidationError("the price must be in cents")
    if price < 0:
        raise ValidationError("a price must not be negative")
    day = validate.parse_date(at, field="--at").isoformat() if at else date.today().isoformat()
    cur = conn.execute(
        "INSERT INTO market_prices (product_id, source, source_key, price_cents, observed_on, os_user, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (p["id"], src, validate.name_key(src), price, day, db.os_user(), db.now_iso()),
    )
    db.audit(conn, "create", "market_price", cur.lastrowid)
    return int(cur.lastrowid or 0)


def current_market(conn: sqlite3.Connection, product_id: int) -> list[dict[str, Any]]:
    """Each source's latest observation, cheapest first."""
    rows = conn.execute(
        """
        SELECT source, price_cents, observed_on FROM (
            SELECT source, price_cents, observed_on,
                   row_number() OVER (PARTITION BY source_key ORDER BY observed_on DESC, id DESC) AS rn
            FROM market_prices WHERE product_id = ?)
        WHERE rn = 1 ORDER BY price_cents, source
        """,
        (product_id,),
    ).fetchall()
    return [dict(r) for r in rows]


def median(values: list[int]) -> int | None:
    if not values:
        return None
    v = sorted(values)
    mid = len(v) // 2
    if len(v) % 2:
        return v[mid]
    return _cents(Decimal(v[mid - 1] + v[mid]) / 2)


def market_summary(conn: sqlite3.Connection, sku: str) -> dict[str, Any]:
    """Min, median and max of the competitors' current prices, ours, and
    where ours stands: rank 1 is the cheapest of all (ours included)."""
    p = products.get(conn, sku)
    sources = current_market(conn, p["id"])
    prices = [s["price_cents"] for s in sources]
    ours = p["list_price"]
    out: dict[str, Any] = {
        "sku": p["sku"], "name": p["name"], "ours": ours, "cost": p["unit_cost"], "sources": sources,
        "count": len(prices), "min": min(prices) if prices else None, "median": median(prices),
        "max": max(prices) if prices else None, "rank": None, "position": "no market prices recorded",
        "vs_median_pct": None,
    }
    history = [dict(r) for r in conn.execute(
        "SELECT source, price_cents, observed_on, os_user FROM market_prices WHERE product_id = ?"
        " ORDER BY observed_on DESC, id DESC", (p["id"],))]
    out["history"] = history
    if not prices:
        return out
    cheaper = sum(1 for x in prices if x < ours)
    dearer = sum(1 for x in prices if x > ours)
    n = len(prices)
    out["rank"] = cheaper + 1
    if dearer == n:
        out["position"] = f"cheapest: below all {n} competitor{'s' if n != 1 else ''}"
    elif cheaper == n:
        out["position"] = f"dearest: above all {n} competitor{'s' if n != 1 else ''}"
    else:
        same = n - cheaper - dearer
        text = f"rank {cheaper + 1} of {n + 1}: {cheaper} cheaper, {dearer} dearer"
        out["position"] = text + (f", {same} the same" if same else "")
    if out["median"]:
        out["vs_median_pct"] = (Decimal(ours - out["median"]) * 100 / out["median"]).quantize(
            Decimal("0.1"), rounding=ROUND_HALF_UP)
    return out


# --------------------------------------------------------------------------- strategies


def propose(
    conn: sqlite3.Connection,
    sku: str,
    *,
    cost_plus: str | Decimal | None = None,
    margin: str | Decimal | None = None,
    match_market: bool = False,
    undercut: str | Decimal | None = None,
    round_to: str | None = None,
    allow_below_cost: bool = False,
) -> dict[str, Any]:
    """The price a strategy gives, without changing anything."""
    p = products.get(conn, sku)
    chosen = [name for name, on in (("--cost-plus", cost_plus is not None), ("--margin", margin is not None),
                                    ("--match-market", match_market)) if on]
    if len(chosen) != 1:
        raise ValidationError("choose one strategy: --cost-plus P%, --margin M% or --match-market"
                              if not chosen else "choose one strategy, not " + " and ".join(chosen))
    if undercut is not None and not match_market:
        raise ValidationError("--undercut goes with --match-market")
    cost = p["unit_cost"]
    detail: list[str] = []
    if cost_plus is not None or margin is not None:
        if cost <= 0:
            raise BusinessRule(f"{p['sku']} has no unit cost", f"set it with 'product edit {p['sku']} --cost AMOUNT'")
        if cost_plus is not None:
            pct = parse_markup(cost_plus)
            raw = _cents(Decimal(cost) * (100 + pct) / 100)
            strategy = f"cost-plus {_pct_text(pct)}"
        else:
            pct = parse_margin(margin)  # type: ignore[arg-type]
            raw = _cents(Decimal(cost) * 100 / (100 - pct))
            strategy = f"margin {_pct_text(pct)}"
        detail.append(f"cost {money.fmt(cost)}")
    else:
        sources = current_market(conn, p["id"])
        if not sources:
            raise BusinessRule(f"no market prices recorded for {p['sku']}",
                               f"record some with 'market add {p['sku']} --source NAME --price X'")
        low = sources[0]
        cut = money.parse_percent(str(undercut), field="undercut") if undercut is not None else Decimal(0)
        raw = _cents(Decimal(low["price_cents"]) * (100 - cut) / 100)
        strategy = "match-market" + (f" -{_pct_text(cut)}" if cut else "")
        detail.append(f"lowest of {len(sources)} source{'s' if len(sources) != 1 else ''}: "
                      f"{low['source']} {money.fmt(low['price_cents'])} on {low['observed_on']}")
    price = raw
    floor = None if allow_below_cost else cost
    if floor is not None and raw < floor:
        raise BusinessRule(
            f"{strategy} gives {money.fmt(raw)} for {p['sku']}, below its cost {money.fmt(cost)}",
            "add --allow-below-cost to sell below cost",
        )
    if round_to is not None:
        price = round_to_ending(raw, round_to, at_least=floor, mode="down" if match_market else "up")
        strategy += f", rounded to {round_to.strip()}"
        detail.append(f"before rounding {money.fmt(raw)}")
    if price < cost:
        detail.append("below cost (allowed)")
    margin_pct = (Decimal(price - cost) * 100 / price).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP) \
        if price else None
    return {
        "sku": p["sku"], "product_id": p["id"], "cost": cost, "old_price": p["list_price"], "new_price": price,
        "raw_price": raw, "change": price - p["list_price"], "margin_pct": margin_pct, "strategy": strategy,
        "detail": "; ".join(detail), "changed": price != p["list_price"],
    }


def set_price(conn: sqlite3.Connection, sku: str, **strategy: Any) -> dict[str, Any]:
    """Apply a strategy (see ``propose``): change the list price and name the
    strategy and the user on the price-history row."""
    assert conn.in_transaction, "pricing.set_price must run inside db.write_tx"
    prop = propose(conn, sku, **strategy)
    if not prop["changed"]:
        return prop
    products.edit(conn, prop["sku"], price=prop["new_price"])
    row = conn.execute("SELECT max(id) FROM price_history WHERE product_id = ?", (prop["product_id"],)).fetchone()
    conn.execute("UPDATE price_history SET strategy = ?, os_user = ?, detail = ? WHERE id = ?",
                 (prop["strategy"], db.os_user(), prop["detail"] or None, row[0]))
    db.audit(conn, "reprice", "product", prop["product_id"])
    return prop


def history(conn: sqlite3.Connection, sku: str) -> list[dict[str, Any]]:
    """Every change of the product's list price, oldest first.  Changes made
    outside 'product price' take the user and command from the audit trail."""
    p = products.get(conn, sku)
    rows = conn.execute(
        """
        SELECT h.id, h.at, h.old_price, h.new_price, h.strategy, h.detail,
               coalesce(h.os_user, a.os_user) AS os_user, a.command
        FROM price_history h
        LEFT JOIN audit a ON a.id = (SELECT min(a2.id) FROM audit a2 WHERE a2.id > h.audit_mark
                                     AND a2.entity = 'product' AND a2.entity_id = CAST(h.product_id AS TEXT))
        WHERE h.product_id = ? ORDER BY h.id
        """,
        (p["id"],),
    ).fetchall()
    out = []
    for r in rows:
        d = dict(r)
        if d["strategy"] in ("manual", "initial") and d["command"] and d["command"] != "library":
            d["strategy"] = f"{d['strategy']} ({d['command']})"
        d["change_pct"] = (Decimal(d["new_price"] - d["old_price"]) * 100 / d["old_price"]).quantize(
            Decimal("0.1"), rounding=ROUND_HALF_UP) if d["old_price"] else None
        out.append(d)
    return out
