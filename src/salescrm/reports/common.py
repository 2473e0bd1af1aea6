"""What every report shares: the revenue definition, periods, filters and
the whitelists of dimensions and sort keys.  No Typer, no Rich.

Revenue: the one definition
===========================

booked (the default basis)
    Orders that are neither draft nor cancelled, dated by ``order_date``.
    A line's revenue is its net (ex tax, after the line discount) less the
    net credited by its returns (``return_lines.net_cents``), plus its share
    of the order-level adjustments (order discounts, promotions, surcharges)
    that returns did not credit back.  The share is apportioned over the
    lines' kept totals cumulatively, so the shares of one order add up to
    its kept adjustment exactly, and an order's revenue is
    ``subtotal + adjustments - (returned_cents - returned tax)``, to the
    cent.  Tax and shipping are not revenue.
shipped
    The same line revenue, recognised when the goods leave: each shipment
    line carries the line's revenue in proportion to the kept units it
    shipped (returned units come off the latest shipments first), dated by
    the shipment's local day.  Apportioned cumulatively, so a fully shipped
    line carries exactly its booked revenue.
collected
    Payments less refunds (a refund is a negative payment) on orders that
    are neither draft nor cancelled, dated by the payment's local day.  This
    is money received, so tax and shipping are in it.  Payments belong to
    orders, not lines: the collected basis has no product or category.

Units are the quantities kept (ordered less returned); cost is kept units
times the line's unit cost at the time of sale (``order_lines.unit_cost``);
margin is revenue less cost.  Discounts are the line discounts on kept
units plus the order-level discounts' kept share.  Cancelled and returned
sales never count.  Money is integer cents from the database to the output.

Speed
=====

Every figure is aggregated in SQL.  Period reports group by the day in the
order of the ``orders(order_date)`` index (a streaming aggregate, no sort of
millions of rows) and roll the days up into weeks, months, quarters or
years here; the revenue expression only reaches into returns and
adjustments for the lines that have them (``CASE`` guards).
"""

from __future__ import annotations

import json
import sqlite3
import time as _time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from salescrm import lifecycle, validate
from salescrm.errors import NotFound, UsageError, ValidationError

BASES = ("booked", "shipped", "collected")
PERIODS = ("day", "week", "month", "quarter", "year")
ORDER_DIMS = ("customer", "channel", "region", "salesperson")
LINE_DIMS = ("product", "category")
DIMENSIONS = PERIODS + ORDER_DIMS + LINE_DIMS
MEASURES = ("orders", "units", "revenue", "discounts", "cost", "margin", "margin_pct", "aov")

BOOKED_SQL = ", ".join(f"'{s}'" for s in lifecycle.BOOKED)  # constants, not user input
#: Open orders: confirmed and not yet closed (delivered but unpaid included).
OPEN_SQL = ", ".join(f"'{s}'" for s in lifecycle.RECEIVABLE)


# --------------------------------------------------------------------------- small helpers


def rdiv(a: str, b: str) -> str:
    """SQL for ``round(a / b)`` half away from zero in integers (``b > 0``),
    the same rounding as ``money.round_cents``."""
    return (f"(CASE WHEN ({a}) >= 0 THEN (2 * ({a}) + ({b})) / (2 * ({b}))"
            f" ELSE -((2 * -({a}) + ({b})) / (2 * ({b}))) END)")


def pct(part: int | None, whole: int | None) -> Decimal | None:
    """``part / whole`` as a percent with one decimal (half-up), or None."""
    if part is None or not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def div_round(a: int, b: int) -> int | None:
    """Integer ``a / b`` rounded half away from zero; None when ``b`` is 0."""
    if not b:
        return None
    q, r = divmod(abs(a), abs(b))
    if 2 * r >= abs(b):
        q += 1
    return q if (a >= 0) == (b > 0) else -q


def choice(value: str | None, allowed: Sequence[str], what: str) -> str:
    """Whitelist a word (case-insensitive); a usage error names the choices."""
    v = (value or "").strip().lower().replace("_", "-")
    for a in allowed:
        if v == a.replace("_", "-"):
            return a
    raise UsageError(f"unknown {what} {value!r}", "choose one of " + ", ".join(allowed))


def local_day_sql(col: str) -> str:
    """SQL for the local calendar day of an ISO UTC timestamp column.  When
    the machine's zone is UTC, that is just its first ten characters."""
    if _time.timezone == 0 and _time.altzone == 0:
        return f"substr({col}, 1, 10)"
    return f"date({col}, 'localtime')"


def utc_bound(d: date, *, days: int = 0) -> str:
    """The UTC instant (ISO text) at which the local day ``d + days`` begins:
    the first second whose local date is that day, as SQLite's 'localtime'
    dates an instant.  A midnight the clocks skip (Havana, Cairo, Santiago
    in spring) begins the day when they land; one they pass twice, at the
    first."""
    day = d + timedelta(days=days)
    midnight = datetime(day.year, day.month, day.day)
    first, last = sorted(midnight.replace(fold=f).astimezone(timezone.utc) for f in (0, 1))
    if first.astimezone().date() < day:  # (skipped: the first second of the day lies between the two readings)
        while (last - first).total_seconds() > 1:
            mid = first + (last - first) / 2
            first, last = (first, mid) if mid.replace(microsecond=0).astimezone().date() >= day else (mid, last)
        first = last.replace(microsecond=0)
    return first.strftime("%Y-%m-%dT%H:%M:%SZ")


@contextmanager
def snapshot(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One read transaction around a report's statements, so that they all
    see the database as it was when the first one ran (in WAL mode a write
    that commits meanwhile is not seen); inside a transaction already, that
    one.  Nothing is written: it ends by a COMMIT of nothing (by ROLLBACK on
    an error)."""
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")  # (a statement left half read is let go)
        raise
    if conn.in_transaction:
        conn.execute("COMMIT")


def tune(conn: sqlite3.Connection) -> sqlite3.Connection:
    """Settings for one read-only report: a 32 MiB page cache (the default 2 MiB
    re-reads the same pages from the OS for every join; more makes the sorts
    hold more in memory for little gain).  Per connection; nothing is written."""
    conn.execute("PRAGMA cache_size = -32768")
    conn.execute("PRAGMA threads = 0")
    return conn


_HINTABLE = ("orders_date", "orders_customer_date", "payments_paid_at")


def index_hint(conn: sqlite3.Connection, name: str) -> str:
    """``INDEXED BY name`` when that index exists (names from a fixed list),
    else nothing: the query stays correct either way."""
    assert name in _HINTABLE
    row = conn.execute("SELECT 1 FROM sqlite_schema WHERE type = 'index' AND name = ?", (name,)).fetchone()
    return f" INDEXED BY {name}" if row else ""


# --------------------------------------------------------------------------- periods


def bucket_start(d: date, unit: str) -> date:
    if unit == "day":
        return d
    if unit == "week":
        return d - timedelta(days=d.weekday())
    if unit == "month":
        return d.replace(day=1)
    if unit == "quarter":
        return date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)
    if unit == "year":
        return date(d.year, 1, 1)
    raise ValueError(unit)


def next_bucket(start: date, unit: str, n: int = 1) -> date:
    """The start of the bucket ``n`` after the one starting at ``start``
    (``n`` may be negative)."""
    if unit == "day":
        return start + timedelta(days=n)
    if unit == "week":
        return start + timedelta(weeks=n)
    months = {"month": 1, "quarter": 3, "year": 12}[unit] * n
    m = start.year * 12 + start.month - 1 + months
    return date(m // 12, m % 12 + 1, 1)


def bucket_label(start: date, unit: str) -> str:
    if unit == "day":
        return start.isoformat()
    if unit == "week":
        y, w, _ = start.isocalendar()
        return f"{y}-W{w:02d}"
    if unit == "month":
        return f"{start.year}-{start.month:02d}"
    if unit == "quarter":
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    return str(start.year)


def buckets(start: date, end: date, unit: str) -> list[date]:
    """Every bucket start from the one holding ``start`` to the one holding ``end``."""
    out, b = [], bucket_start(start, unit)
    while b <= end:
        out.append(b)
        b = next_bucket(b, unit)
    return out


def bucket_sql(day: str, unit: str) -> str:
    """SQL giving the ISO start date of the bucket holding the date text ``day``."""
    if unit == "day":
        return day
    if unit == "week":
        return f"date({day}, 'weekday 0', '-6 days')"
    if unit == "month":
        return f"(substr({day}, 1, 7) || '-01')"
    if unit == "quarter":
        return (f"(substr({day}, 1, 5) || CASE (CAST(substr({day}, 6, 2) AS INTEGER) + 2) / 3"
                f" WHEN 1 THEN '01' WHEN 2 THEN '04' WHEN 3 THEN '07' ELSE '10' END || '-01')")
    if unit == "year":
        return f"(substr({day}, 1, 4) || '-01-01')"
    raise ValueError(unit)


# --------------------------------------------------------------------------- date range


@dataclass(frozen=True)
class Range:
    start: date | None = None
    end: date | None = None  # inclusive

    @property
    def bounded(self) -> bool:
        return self.start is not None and self.end is not None

    def days(self) -> int:
        assert self.start and self.end
        return (self.end - self.start).days + 1


def parse_range(start: str | date | None, end: str | date | None, *, today: date | None = None) -> Range:
    s = validate.parse_date(start, field="--from", today=today) if start not in (None, "") else None
    e = validate.parse_date(end, field="--to", today=today) if end not in (None, "") else None
    if s and e and s > e:
        raise ValidationError(f"--from {s} is after --to {e}", "swap them")
    return Range(s, e)


def shift_year(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


# --------------------------------------------------------------------------- filters


@dataclass
class Filters:
    """Filters AND together; the values of one filter OR.  Values are
    resolved against the database (``resolve``) so that an unknown one is
    refused instead of silently matching nothing."""

    channel: list[str] = field(default_factory=list)
    category: list[str] = field(default_factory=list)
    region: list[str] = field(default_factory=list)
    salesperson: list[str] = field(default_factory=list)
    customer: list[int] = field(default_factory=list)
    currency: str | None = None

    @property
    def by_line(self) -> bool:
        return bool(self.category)

    @property
    def by_order(self) -> bool:
        """A filter on what belongs to the whole order: its channel,
        salesperson or customer, or the customer's region."""
        return bool(self.channel or self.salesperson or self.customer or self.region)

    @property
    def by_customer_row(self) -> bool:
        return bool(self.region)


def split_values(values: Iterable[str] | str | None) -> list[str]:
    """``["a,b", "c"]`` -> ``["a", "b", "c"]``; blanks dropped, order kept."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for v in values:
        for part in str(v).split(","):
            p = part.strip()
            if p and p not in out:
                out.append(p)
    return out


def _resolve_text(conn: sqlite3.Connection, what: str, wanted: list[str], exact_sql: str,
                  nocase_sql: str, known_sql: str, extra_known: Sequence[str] = ()) -> list[str]:
    """Map each wanted value to the stored value(s) that match it ignoring case."""
    out: list[str] = []
    for w in wanted:
        got = [r[0] for r in conn.execute(exact_sql, (w,))]
        if not got:
            got = [r[0] for r in conn.execute(nocase_sql, (w,))]
        if not got and w.casefold() in (k.casefold() for k in extra_known):
            got = [w.lower()]
        if not got:
            known = sorted({r[0] for r in conn.execute(known_sql) if r[0]} | set(extra_known))
            hint = ("known: " + ", ".join(known[:12]) + (" ..." if len(known) > 12 else "")) if known else \
                f"no {what} is recorded yet"
            raise NotFound(f"unknown {what} {w!r}", hint)
        out += [g for g in got if g not in out]
    return out


def resolve_filters(
    conn: sqlite3.Connection,
    *,
    channel: Iterable[str] | str | None = None,
    category: Iterable[str] | str | None = None,
    region: Iterable[str] | str | None = None,
    salesperson: Iterable[str] | str | None = None,
    customer: Iterable[str] | str | None = None,
    currency: str | None = None,
) -> Filters:
    from salescrm import customers as customers_mod
    from salescrm import settings

    f = Filters()
    ch = split_values(channel)
    if ch:
        f.channel = _resolve_text(
            conn, "channel", ch,
            "SELECT channel FROM orders WHERE channel = ? LIMIT 1",
            "SELECT DISTINCT channel FROM orders WHERE channel = ? COLLATE NOCASE",
            "SELECT DISTINCT channel FROM orders", settings.get(conn, "channels"))
    cat = split_values(category)
    if cat:
        f.category = _resolve_text(
            conn, "category", cat,
            "SELECT category FROM products WHERE category = ? LIMIT 1",
            "SELECT DISTINCT category FROM products WHERE category = ? COLLATE NOCASE",
            "SELECT DISTINCT category FROM products")
    reg = split_values(region)
    if reg:
        f.region = _resolve_text(
            conn, "region", reg,
            "SELECT region FROM customers WHERE region = ? LIMIT 1",
            "SELECT DISTINCT region FROM customers WHERE region = ? COLLATE NOCASE",
            "SELECT DISTINCT region FROM customers")
    sp = split_values(salesperson)
    if sp:
        f.salesperson = _resolve_text(
            conn, "salesperson", sp,
            "SELECT salesperson FROM orders WHERE salesperson = ? LIMIT 1",
            "SELECT DISTINCT salesperson FROM orders WHERE salesperson = ? COLLATE NOCASE",
            "SELECT DISTINCT salesperson FROM orders WHERE salesperson IS NOT NULL")
    for ref in split_values(customer):
        cid = customers_mod.resolve(conn, ref)
        if cid not in f.customer:
            f.customer.append(cid)
    if currency:
        cur = currency.strip().upper()
        if len(cur) != 3 or not cur.isalpha():
            raise ValidationError(f"not a currency code: {currency!r}", "use a three-letter code such as EUR")
        f.currency = cur
    else:
        f.currency = settings.get(conn, "currency")
    return f


def filter_sql(f: Filters, *, o: str = "o", c: str = "c", p: str = "p",
               by_time: bool = False, region_of_customer: bool = False) -> tuple[list[str], list[Any]]:
    """WHERE terms (ANDed) and their parameters.  The products alias ``p`` and
    the customers alias ``c`` must be joined when the filters need them.
    ``by_time``: the query walks ``o`` by a range of time, so its columns are
    written ``+o.col``, which keeps the planner from an index on them (an
    index led by currency would read every row of the currency instead).
    ``region_of_customer``: a region filter as ``o.customer_id IN`` the
    region's customers (looked up once), so no customer is joined per row."""
    where: list[str] = []
    params: list[Any] = []
    if by_time:
        o = "+" + o

    def _in(col: str, values: Sequence[Any]) -> None:
        where.append(f"{col} IN ({', '.join('?' * len(values))})")
        params.extend(values)

    if f.currency:
        where.append(f"{o}.currency = ?")
        params.append(f.currency)
    if f.channel:
        _in(f"{o}.channel", f.channel)
    if f.salesperson:
        _in(f"{o}.salesperson", f.salesperson)
    if f.customer:
        _in(f"{o}.customer_id", f.customer)
    if f.region and region_of_customer:
        where.append(f"{o}.customer_id IN (SELECT id FROM customers WHERE region IN ({', '.join('?' * len(f.region))}))")
        params.extend(f.region)
    elif f.region:
        _in(f"{c}.region", f.region)
    if f.category:
        _in(f"{p}.category", f.category)
    return where, params


# --------------------------------------------------------------------------- revenue in SQL


def ret_sql(line: str, col: str) -> str:
    """What the returns of a line credited (``net_cents`` or ``total_cents``)."""
    return (f"(CASE WHEN {line}.returned_qty = 0 THEN 0 ELSE (SELECT coalesce(sum(rl.{col}), 0)"
            f" FROM return_lines rl WHERE rl.line_id = {line}.id) END)")


def adj_share_sql(o: str = "o", line: str = "l") -> str:
    """A line's share of the order-level adjustments that returns did not
    credit back, apportioned cumulatively over the lines' kept totals (in
    line number order) so that the shares add up exactly."""
    kt = f"x.total_cents - {ret_sql('x', 'total_cents')}"
    return (
        f"(CASE WHEN {o}.adjustment_cents = 0 THEN 0 ELSE (SELECT CASE WHEN a.w = 0 THEN 0 ELSE "
        f"{rdiv('a.k * a.c', 'a.w')} - {rdiv('a.k * (a.c - a.kt)', 'a.w')} END FROM ("
        f"SELECT {o}.adjustment_cents - {o}.returned_cents + sum({ret_sql('x', 'total_cents')}) AS k,"
        f" sum({kt}) AS w,"
        f" sum(CASE WHEN x.line_no <= {line}.line_no THEN {kt} ELSE 0 END) AS c,"
        f" sum(CASE WHEN x.line_no = {line}.line_no THEN {kt} ELSE 0 END) AS kt"
        f" FROM order_lines x WHERE x.order_id = {o}.id) a) END)"
    )


def line_revenue_sql(o: str = "o", line: str = "l") -> str:
    """Booked revenue of one line (see the module docstring)."""
    return f"({line}.net_cents - {ret_sql(line, 'net_cents')} + {adj_share_sql(o, line)})"


def line_discount_sql(o: str = "o", line: str = "l") -> str:
    """Line discount on the kept units plus the order-level discount share."""
    kept_disc = (f"({line}.discount_cents - CASE WHEN {line}.returned_qty = 0 THEN 0 ELSE "
                 f"{rdiv(f'{line}.discount_cents * {line}.returned_qty', f'{line}.qty')} END)")
    return (f"({kept_disc} + CASE WHEN {o}.adjustment_cents < 0 THEN -{adj_share_sql(o, line)}"
            f" ELSE 0 END)")


def order_revenue_sql(o: str = "o") -> str:
    """Booked revenue of a whole order, from the order row alone (plus the
    returned tax when it had returns): equal to the sum of its lines'."""
    return (f"({o}.subtotal_cents + {o}.adjustment_cents - CASE WHEN {o}.returned_cents = 0 THEN 0"
            f" ELSE {o}.returned_cents - (SELECT coalesce(sum(rl.tax_cents), 0) FROM return_lines rl"
            f" JOIN order_lines rx ON rx.id = rl.line_id WHERE rx.order_id = {o}.id) END)")


def shipped_rows_sql(where: Sequence[str] = ()) -> str:
    """Per shipment line of a booked order (``where``: more conditions on
    ``s`` shipments, ``o`` orders): order_id, shipment_id, line_id,
    shipped_at, currency, customer_id, channel, salesperson, product_id,
    units, revenue, cost, counts_order, prev_at.  The line's booked revenue is carried in proportion
    to the kept units each shipment took (returned units come off the latest
    shipments first), apportioned cumulatively so that a fully shipped line
    carries exactly its booked revenue."""
    # Units shipped by this line's earlier shipments (only looked up when the
    # line shipped more than once).
    before = ("CASE WHEN sl.qty = l.shipped_qty THEN 0 ELSE (SELECT coalesce(sum(sl2.qty), 0)"
              " FROM shipment_lines sl2 JOIN shipments s2 ON s2.id = sl2.shipment_id"
              " WHERE sl2.line_id = sl.line_id AND (s2.shipped_at < s.shipped_at"
              " OR (s2.shipped_at = s.shipped_at AND s2.id < s.id))) END")
    # Kept units shipped up to and including this shipment, and before it.
    cum = "(f.before + f.q - max(0, f.returned_qty - (f.shipped_qty - f.before - f.q)))"
    prev = "(f.before - max(0, f.returned_qty - (f.shipped_qty - f.before)))"
    kq = "(f.qty - f.returned_qty)"
    value = f"(CASE WHEN {kq} = 0 THEN 0 ELSE {rdiv(f'f.rev * {cum}', kq)} - {rdiv(f'f.rev * {prev}', kq)} END)"
    # Each shipment's first line stands for it when orders are counted, with
    # the time of the order's previous shipment: an order has a shipment in
    # [lo, hi) exactly when one such row there has no previous one or one
    # before lo (so a count needs no DISTINCT).
    previous = ("(SELECT max(s4.shipped_at) FROM shipments s4 WHERE s4.order_id = f.order_id"
                " AND (s4.shipped_at < f.shipped_at OR (s4.shipped_at = f.shipped_at AND s4.id < f.shipment_id)))")
    return (
        f"SELECT f.order_id, f.shipment_id, f.line_id, f.shipped_at, f.currency, f.customer_id, f.channel,"
        f" f.salesperson, f.product_id, {cum} - {prev} AS units, {value} AS revenue,"
        f" ({cum} - {prev}) * f.unit_cost AS cost, f.counts_order,"
        f" CASE WHEN f.counts_order = 1 THEN {previous} END AS prev_at"
        f" FROM (SELECT s.id AS shipment_id, sl.line_id, s.shipped_at, sl.qty AS q, l.order_id, l.product_id,"
        f" sl.line_id = (SELECT min(x.line_id) FROM shipment_lines x WHERE x.shipment_id = s.id) AS counts_order,"
        f" l.qty, l.returned_qty, l.shipped_qty, l.unit_cost, o.customer_id, o.channel, o.salesperson, o.currency,"
        f" {before} AS before, {line_revenue_sql()} AS rev"
        f" FROM shipments s JOIN shipment_lines sl ON sl.shipment_id = s.id"
        f" JOIN order_lines l ON l.id = sl.line_id JOIN orders o ON o.id = l.order_id"
        f" WHERE +o.status IN ({BOOKED_SQL})" + "".join(" AND " + w for w in where)
        # not flattened (LIMIT -1): each shipment line's values once, not once per use
        + " LIMIT -1) f"
    )


def collected_rows_sql(where: Sequence[str] = ()) -> str:
    """Per payment or refund of a booked order (``where``: more conditions on
    ``p2`` payments, ``o`` orders): payment_id, order_id, paid_at, currency,
    customer_id, channel, salesperson, amount (a refund is negative)."""
    return ("SELECT p2.id AS payment_id, p2.order_id, p2.paid_at, o.currency, o.customer_id, o.channel,"
            " o.salesperson, p2.amount_cents AS amount FROM payments p2 JOIN orders o ON o.id = p2.order_id"
            f" WHERE +o.status IN ({BOOKED_SQL})" + "".join(" AND " + w for w in where))


# --------------------------------------------------------------------------- measures


@dataclass
class Measures:
    orders: int = 0
    units: int | None = 0
    revenue: int = 0
    discounts: int | None = 0
    cost: int | None = 0

    def add(self, other: Measures) -> None:
        self.orders += other.orders
        self.revenue += other.revenue
        for k in ("units", "discounts", "cost"):
            a, b = getattr(self, k), getattr(other, k)
            setattr(self, k, None if a is None or b is None else a + b)

    def row(self) -> dict[str, Any]:
        margin = None if self.cost is None else self.revenue - self.cost
        return {
            "orders": self.orders,
            "units": self.units,
            "revenue": self.revenue,
            "discounts": self.discounts,
            "cost": self.cost,
            "margin": margin,
            "margin_pct": pct(margin, self.revenue),
            "aov": div_round(self.revenue, self.orders),
        }


def empty_measures(basis: str) -> Measures:
    if basis == "collected":
        return Measures(units=None, discounts=None, cost=None)
    if basis == "shipped":
        return Measures(discounts=None)
    return Measures()


# --------------------------------------------------------------------------- the aggregate


@dataclass
class Spec:
    basis: str = "booked"
    range: Range = field(default_factory=Range)
    filters: Filters = field(default_factory=Filters)


def _dim_key(dim: str, o: str = "o", line: str = "l") -> str:
    """SQL key of a non-period dimension.  Whitelisted: only these names ever
    reach SQL text."""
    return {
        "customer": f"{o}.customer_id",
        "channel": f"{o}.channel",
        "salesperson": f"{o}.salesperson",
        "region": "c.region",
        "product": f"{line}.product_id",
        "category": "p.category",
    }[dim]


_HIGH_CARDINALITY = {"customer", "product"}


def _check_dims(dims: Sequence[str], basis: str) -> None:
    for d in dims:
        if d not in DIMENSIONS:
            raise UsageError(f"unknown dimension {d!r}", "choose from " + ", ".join(DIMENSIONS))
    if len(set(dims)) != len(dims):
        raise UsageError("the same --by twice")
    if basis == "collected" and any(d in LINE_DIMS for d in dims):
        raise UsageError("the collected basis has no product or category: payments belong to whole orders",
                         "use --basis booked or shipped")


def aggregate(conn: sqlite3.Connection, spec: Spec, dims: Sequence[str]) -> dict[tuple, Measures]:
    """Measures per key tuple (one element per dimension; periods as the ISO
    start date of their bucket)."""
    _check_dims(dims, spec.basis)
    if spec.basis == "collected" and spec.filters.by_line:
        raise UsageError("the collected basis cannot filter by category: payments belong to whole orders",
                         "use --basis booked or shipped")
    periods = [d for d in dims if d in PERIODS]
    others = [d for d in dims if d not in PERIODS]
    # Group by the day and roll up here, unless that would bring back a row per
    # day and customer (or product): then let SQL group by the bucket itself.
    # On the shipped and collected bases one order can fall on several days of
    # a period: count its orders per period in SQL, not per day.
    by_bucket_in_sql = bool(periods) and (any(d in _HIGH_CARDINALITY for d in others)
                                          or (spec.basis != "booked" and len(periods) == 1))
    if spec.basis == "booked":
        day = "o.order_date"
    elif spec.basis == "shipped":
        day = local_day_sql("f.shipped_at")
    else:
        day = local_day_sql("o.paid_at")
    keys: list[str] = []
    if periods:
        keys.append(bucket_sql(day, periods[0]) if by_bucket_in_sql and len(periods) == 1 else day)
    if spec.basis == "shipped":
        keys += [_dim_key(d, "f", "f") for d in others]
    else:
        keys += [_dim_key(d) for d in others]
    if spec.basis == "collected" and not others and len(periods) <= 1:
        return _collected_by_bucket(conn, spec, periods[0] if periods else None)
    if spec.basis == "shipped" and not others and len(periods) <= 1:
        from salescrm import salesfacts

        if salesfacts.ready(conn):
            return _shipped_by_bucket(conn, spec, periods[0] if periods else None)
    if spec.basis == "shipped" and others == ["category"] and len(periods) <= 1 and spec.filters.currency \
            and not spec.filters.customer:  # (a customer's few lines: the query below, by time, is quicker)
        from salescrm import salesfacts

        if salesfacts.ready(conn):
            return _shipped_by_category(conn, spec, dims)
    rows = _from_summaries(conn, spec, periods, others) if spec.basis == "booked" else None
    if rows is None and spec.basis == "shipped" and list(dims) == ["product"]:
        rows = _shipped_by_product(conn, spec)
    if rows is None and spec.basis != "booked" and list(dims) in (["customer"], ["region"]):
        rows = _by_customer_totals(conn, spec, dims[0])
    if rows is None:
        rows = _run(conn, spec, keys, dims)
    out: dict[tuple, Measures] = {}
    for r in rows:
        kvals = list(r[: len(keys)])
        pday = None
        if periods:
            pday = date.fromisoformat(kvals.pop(0))
        key_parts: dict[str, Any] = dict(zip(others, kvals))
        for pname in periods:
            key_parts[pname] = bucket_start(pday, pname) if pday else None
        key = tuple(key_parts[d] for d in dims)
        m = Measures(*r[len(keys):])
        if spec.basis == "collected":
            m.units = m.discounts = m.cost = None
        elif spec.basis == "shipped":
            m.discounts = None
        if key in out:
            out[key].add(m)
        else:
            out[key] = m
    return out


def summary_source(spec: Spec, dims: Sequence[str]) -> str | None:
    """Which summary table (``salescrm.salesfacts``) can answer a booked
    aggregate exactly, or None.  The summaries hold orders per day with
    their channel, salesperson and customer, each customer's all-time
    totals, lines per day and product or category, and each order's part of
    each product; a report that mixes an order attribute with a line one
    reads those parts with their orders (``order_products``), as does one
    filtered by several categories (whose orders the category totals would
    count twice)."""
    if spec.basis != "booked":
        return None
    f = spec.filters
    others = {d for d in dims if d not in PERIODS}
    order_filters = f.by_order
    if others & set(LINE_DIMS) or f.category:
        if order_filters or others - set(LINE_DIMS):
            return "order_products"
        if "product" in others:
            return "products"
        if len(f.category) > 1 and "category" not in others:
            return "order_products"
        return "categories"
    if others <= {"channel", "salesperson"} and not (f.customer or f.region):
        return "days"
    if others == {"customer"} and len(dims) == 1 and not (order_filters or spec.range.start or spec.range.end):
        return "customers"
    return "orders"


def _from_summaries(conn: sqlite3.Connection, spec: Spec, periods: Sequence[str],
                    others: Sequence[str]) -> list[tuple] | None:
    """Rows shaped as ``_run``'s (the day or period start, the other keys,
    then orders, units, revenue, discounts, cost) from the summary tables, or
    None when they cannot answer (see ``summary_source``) or are not current."""
    from salescrm import salesfacts

    source = summary_source(spec, [*periods, *others])
    if source is None or not salesfacts.ready(conn):
        return None
    f, rng = spec.filters, spec.range
    if source == "customers":  # all history by customer: the customers' totals, no date at all
        sql = ("SELECT customer_id, sum(orders), sum(units), sum(revenue), sum(discounts), sum(cost)"
               " FROM sales_customers" + (" WHERE currency = ?" if f.currency else "") + " GROUP BY customer_id")
        return conn.execute(sql, [f.currency] if f.currency else []).fetchall()
    table = {"days": "sales_days", "orders": "sales_orders", "products": "sales_products",
             "categories": "sales_categories",
             # each order's part of each product, with the order's attributes: the orders in the range of
             # days drive (their covering index), each one's parts a key range
             "order_products": "sales_orders s INDEXED BY sales_orders_day"
                               " CROSS JOIN sales_order_products op ON op.order_id = s.order_id"}[source]
    parts = source == "order_products"
    m = "op" if parts else "s"  # (the alias that holds the measures and the line attributes)
    where: list[str] = ["s.day >= ?"]
    params: list[Any] = [rng.start.isoformat() if rng.start else ""]
    if rng.end:
        where.append("s.day <= ?")
        params.append(rng.end.isoformat())
    if f.currency:
        where.append("s.currency = ?")
        params.append(f.currency)
    join = ""

    def _in(col: str, values: Sequence[Any]) -> None:
        where.append(f"{col} IN ({', '.join('?' * len(values))})")
        params.extend(values)

    if f.channel:
        _in("s.channel", f.channel)
    if f.salesperson:
        _in("s.salesperson", f.salesperson if source != "days" else [v or "" for v in f.salesperson])
    if f.customer:
        _in("s.customer_id", f.customer)
    if f.region or "region" in others:
        join = (" CROSS" if parts else "") + " JOIN customers c ON c.id = s.customer_id"
        if f.region:
            _in("c.region", f.region)
    if f.category:
        if source == "products":
            join = " JOIN products p ON p.id = s.product_id"
            _in("p.category", f.category)
        else:
            _in(f"{m}.category", [v or "" for v in f.category])
    col = {"customer": "s.customer_id", "channel": "s.channel", "region": "c.region",
           "salesperson": "NULLIF(s.salesperson, '')" if source == "days" else "s.salesperson",
           "product": f"{m}.product_id",
           "category": "p.category" if source == "products" else f"NULLIF({m}.category, '')"}
    if "category" in others and source == "products" and not join:
        join = " JOIN products p ON p.id = s.product_id"
    keys: list[str] = []
    if periods:  # by day in index order (rolled up by the caller) unless a day x customer/product grouping
        in_sql = len(periods) == 1 and any(d in _HIGH_CARDINALITY for d in others)
        keys.append(bucket_sql("s.day", periods[0]) if in_sql else "s.day")
    keys += [col[d] for d in others]
    if source == "orders":
        count = "count(*)"
    elif parts:  # an order has one part per product, and is counted once in a category (or several)
        count = "count(*)" if "product" in others else "count(DISTINCT op.order_id)"
    else:
        count = "coalesce(sum(s.orders), 0)"
    sql = (f"SELECT {''.join(k + ', ' for k in keys)}{count}, sum({m}.units), sum({m}.revenue),"
           f" sum({m}.discounts), sum({m}.cost) FROM {table}{'' if parts else ' s'}{join} WHERE "
           + " AND ".join(where)
           + (f" GROUP BY {', '.join(keys)}" if keys else ""))
    return conn.execute(sql, params).fetchall()


def _time_bounds(rng: Range, col: str = "f.shipped_at") -> tuple[list[str], list[Any], list[str], list[Any]]:
    """WHERE terms on a UTC timestamp column for a range of local days: the
    UTC instants a day either side (an index range) and then the exact local
    day, each with its parameters."""
    day = local_day_sql(col)
    bounds: list[str] = []
    bparams: list[Any] = []
    days: list[str] = []
    dparams: list[Any] = []
    if rng.start:
        bounds.append(f"{col} >= ?")
        bparams.append(utc_bound(rng.start, days=-1))
        days.append(f"{day} >= ?")
        dparams.append(rng.start.isoformat())
    if rng.end:
        bounds.append(f"{col} < ?")
        bparams.append(utc_bound(rng.end, days=2))
        days.append(f"{day} <= ?")
        dparams.append(rng.end.isoformat())
    return bounds, bparams, days, dparams


#: From this many days a shipped-basis report by product walks the summary's
#: product index (every shipment line of the currency, already in product and
#: order order) rather than the range by time and a sort of what it holds.
_PRODUCT_INDEX_FROM_DAYS = 366


def _shipped_by_product(conn: sqlite3.Connection, spec: Spec) -> list[tuple] | None:
    """The shipped basis by product alone: over all history from the
    products' totals (``sales_shipped_products``); over a long range off the
    index ``sales_shipped_product``, grouped as it streams, the distinct
    orders of each product counted in product and order order, so nothing as
    large as the lines is sorted.  None when it does not apply (other filters, a
    short range, summaries not current)."""
    from salescrm import salesfacts

    f, rng = spec.filters, spec.range
    if f.by_order or not f.currency:
        return None
    if rng.start and ((rng.end or date.today()) - rng.start).days < _PRODUCT_INDEX_FROM_DAYS:
        return None
    if not salesfacts.ready(conn):
        return None
    where, params = filter_sql(f, o="f", p="p")  # (the currency, and a category through p)
    join = " JOIN products p ON p.id = f.product_id" if f.category else ""
    if not (rng.start or rng.end):  # all history: the products' totals
        sql = (f"SELECT f.product_id, f.orders, f.units, f.revenue, NULL, f.cost FROM sales_shipped_products f{join}"
               " WHERE " + " AND ".join(where))
        return conn.execute(sql, params).fetchall()
    bounds, bparams, days, dparams = _time_bounds(rng)
    sql = ("SELECT f.product_id, count(DISTINCT f.order_id), sum(f.units), sum(f.revenue), NULL, sum(f.cost)"
           f" FROM sales_shipped f INDEXED BY sales_shipped_product{join} WHERE "
           + " AND ".join(where + bounds + days) + " GROUP BY f.product_id")
    return conn.execute(sql, params + bparams + dparams).fetchall()


def _by_customer_totals(conn: sqlite3.Connection, spec: Spec, dim: str) -> list[tuple] | None:
    """The shipped or collected basis by customer or region over all
    history, from each customer's totals: shipped, ``sales_shipped_customers``;
    collected, the payments summed per customer as they stream off their
    index in customer and order order (``sales_collected_customer``).  An
    order belongs to one customer, so a region's orders are its customers'
    orders added up.  None when it does not apply (a range, a filter other
    than currency, customer and region, summaries not current)."""
    from salescrm import salesfacts

    f, rng = spec.filters, spec.range
    if rng.start or rng.end or f.channel or f.salesperson or f.category or not f.currency:
        return None
    if not salesfacts.ready(conn):
        return None
    where, params = filter_sql(f, o="s")  # (the currency, customers, and regions through c)
    totals = "sales_shipped_customers s"
    if spec.basis == "collected":
        totals = ("(SELECT customer_id, currency, count(DISTINCT order_id) AS orders, NULL AS units,"
                  " sum(amount) AS revenue, NULL AS cost FROM sales_collected INDEXED BY sales_collected_customer"
                  " WHERE currency = ? GROUP BY customer_id) s")
        params = [f.currency, *params]
    join = " JOIN customers c ON c.id = s.customer_id" if dim == "region" or f.region else ""
    key = "s.customer_id" if dim == "customer" else "c.region"
    sql = (f"SELECT {key}, sum(s.orders), sum(s.units), sum(s.revenue), NULL, sum(s.cost)"
           f" FROM {totals}{join} WHERE " + " AND ".join(where) + f" GROUP BY {key}")
    return conn.execute(sql, params).fetchall()


def _run(conn: sqlite3.Connection, spec: Spec, keys: list[str], dims: Sequence[str]) -> list[tuple]:
    f = spec.filters
    need_c = "region" in dims or bool(f.region)
    need_p = "category" in dims or bool(f.category)
    where, params = filter_sql(f, p="p")
    group = ", ".join(keys)
    select_keys = (group + ", ") if keys else ""
    rng = spec.range
    if spec.basis == "booked":
        if rng.start:
            where.append("o.order_date >= ?")
            params.append(rng.start.isoformat())
        else:
            where.append("o.order_date >= ''")  # lets the planner walk orders(order_date)
        if rng.end:
            where.append("o.order_date <= ?")
            params.append(rng.end.isoformat())
        frm = (f" FROM orders o{index_hint(conn, 'orders_date')} JOIN order_lines l ON l.order_id = o.id"
               + (" JOIN customers c ON c.id = o.customer_id" if need_c else "")
               + (" JOIN products p ON p.id = l.product_id" if need_p else "")
               + f" WHERE +o.status IN ({BOOKED_SQL}) AND " + " AND ".join(where))
        kept = "(l.qty - l.returned_qty)"
        if not [d for d in dims if d not in PERIODS]:
            # by day (or not at all): a streaming aggregate in the order of orders(order_date)
            sql = (f"SELECT {select_keys}count(DISTINCT o.id), sum({kept}), sum({line_revenue_sql()}),"
                   f" sum({line_discount_sql()}), sum({kept} * l.unit_cost){frm}"
                   + (f" GROUP BY {group}" if keys else ""))
            return conn.execute(sql, params).fetchall()
        # Otherwise the values are computed in a subquery that is not flattened
        # (LIMIT -1), so that the planner keeps walking orders(order_date) with
        # the lines in order, and the sort for the grouping holds small records.
        aliased = ", ".join(f"{k} AS k{i}" for i, k in enumerate(keys))
        outer_keys = ", ".join(f"k{i}" for i in range(len(keys)))
        if not any(d in LINE_DIMS for d in dims) and not need_p:
            # order-level dimensions: one row per order first (streaming), then group
            inner = (f"SELECT {aliased}, sum({kept}) AS u, sum({line_revenue_sql()}) AS r,"
                     f" sum({line_discount_sql()}) AS d, sum({kept} * l.unit_cost) AS c{frm}"
                     f" GROUP BY o.order_date, o.id LIMIT -1")
            sql = (f"SELECT {outer_keys}, count(*), sum(u), sum(r), sum(d), sum(c) FROM ({inner})"
                   f" GROUP BY {outer_keys}")
        else:
            inner = (f"SELECT {aliased}, o.id AS oid, {kept} AS u, {line_revenue_sql()} AS r,"
                     f" {line_discount_sql()} AS d, {kept} * l.unit_cost AS c{frm} LIMIT -1")
            sql = (f"SELECT {outer_keys}, count(DISTINCT oid), sum(u), sum(r), sum(d), sum(c) FROM ({inner})"
                   f" GROUP BY {outer_keys}")
        return conn.execute(sql, params).fetchall()
    if spec.basis == "shipped":
        from salescrm import salesfacts

        ready = salesfacts.ready(conn)
        if ready:  # each line of the summary carries its customer's region: no customer looked up
            keys = ["f.region" if k == "c.region" else k for k in keys]
            need_c = False
        where, params = _shipped_filters(f, region_of_line=ready)
        periodless = not any(d in PERIODS for d in dims)
        if ready and periodless:
            # the range's first and last local day as exact UTC instants: no local day computed per line
            bounds, bparams = [], []
            if rng.start:
                bounds.append("f.shipped_at >= ?")
                bparams.append(utc_bound(rng.start))
            if rng.end:
                bounds.append("f.shipped_at < ?")
                bparams.append(utc_bound(rng.end, days=1))
        else:
            bounds, bparams, days, dparams = _time_bounds(rng)
            where += days
            params += dparams
        # an order counted once per group without a distinct count, when every line of it falls in the same
        # group (an order dimension) and any of its lines counts (no category filter): its first shipment in
        # the range, the first line of a shipment with no earlier shipment of the order in the range
        once = ready and periodless and not (set(dims) & {"product", "category"} or f.category)
        first = ("(f.counts_order = 1 AND (f.prev_at IS NULL" + (" OR f.prev_at < ?))" if rng.start else "))")
                 if once else "f.order_id")
        fparams = [utc_bound(rng.start)] if once and rng.start else []
        if ready:
            # (walked in its own key order, by the time range or in full: an index walked
            # instead would fetch each line from the table)
            source, sparams = f"sales_shipped{_SHIPPED_AS_STORED}", []
        else:
            source = "(" + shipped_rows_sql([b.replace("f.", "s.") for b in bounds]) + ") f"
            sparams = list(bparams)
        aliased = "".join(f"{k} AS k{i}, " for i, k in enumerate(keys))
        outer_keys = ", ".join(f"k{i}" for i in range(len(keys)))
        # Per shipment line (the summary, or computed), then the grouping over
        # small records (the middle query is not flattened: LIMIT -1).
        sql = (
            f"SELECT {outer_keys + ', ' if keys else ''}{'sum(oid)' if once else 'count(DISTINCT oid)'}, sum(u),"
            f" sum(v), NULL, sum(c) FROM ("
            f"SELECT {aliased}{first} AS oid, f.units AS u, f.revenue AS v, f.cost AS c FROM {source}"
            # (CROSS JOIN: the shipment lines drive, by their time range or in full; a product or
            # customer first would walk the lines through an index, fetching each one)
            + (" CROSS JOIN customers c ON c.id = f.customer_id" if need_c else "")
            + (" CROSS JOIN products p ON p.id = f.product_id" if need_p else "")
            + (" WHERE " + " AND ".join(bounds + where) if bounds + where else "")
            + " LIMIT -1)"
            + (f" GROUP BY {outer_keys}" if keys else "")
        )
        return conn.execute(sql, fparams + sparams + bparams + params).fetchall()
    # collected: the payments walked by time (or in full), as they are stored (``by_time``: an index led by
    # currency would fetch every payment of the currency through it)
    where, params = filter_sql(f, by_time=True)
    bounds, bparams, days, dparams = _time_bounds(rng, "o.paid_at")
    pw, pparams = bounds + days, bparams + dparams
    sql = (
        f"SELECT {select_keys}count(DISTINCT o.id), NULL, sum(o.amount_cents), NULL, NULL"
        f" FROM {collected_source(conn)} o"
        + (" JOIN customers c ON c.id = o.customer_id" if need_c else "")
        + (" WHERE " + " AND ".join(pw + where) if pw + where else "")
        + (f" GROUP BY {group}" if keys else "")
    )
    return conn.execute(sql, pparams + params).fetchall()


def collected_source(conn: sqlite3.Connection, *, hint: bool = False) -> str:
    """The payments of booked orders as a FROM item with the columns id (the
    order), paid_at, amount_cents, currency, customer_id, channel and
    salesperson: the summary table when current, else payments joined to
    their orders (``hint``: walk payments(paid_at))."""
    from salescrm import salesfacts

    if salesfacts.ready(conn):
        return ("(SELECT order_id AS id, paid_at, amount AS amount_cents, currency, customer_id, channel,"
                " salesperson FROM sales_collected)")
    return (f"(SELECT o.id, p2.paid_at, p2.amount_cents, o.currency, o.customer_id, o.channel, o.salesperson"
            f" FROM payments p2{index_hint(conn, 'payments_paid_at') if hint else ''}"
            f" JOIN orders o ON o.id = p2.order_id WHERE +o.status IN ({BOOKED_SQL}))")


def period_windows(conn: sqlite3.Connection, rng: Range, unit: str | None,
                   basis: str = "booked") -> list[tuple[date, date, date]]:
    """(period start, first day, last day) of each ``unit`` period over the
    range, clipped to it, an open end taken from the data; one window for
    ``unit`` None; none without data.  For the reports that run one range
    query per period."""
    span = data_span(conn, basis)
    if span is None:
        return []
    first, last = rng.start or span[0], rng.end or span[1]
    if first > last:
        return []
    if unit is None:
        return [(first, first, last)]
    return [(b, max(b, first), min(next_bucket(b, unit) - timedelta(days=1), last))
            for b in buckets(first, last, unit)]


def _collected_by_bucket(conn: sqlite3.Connection, spec: Spec, unit: str | None) -> dict[tuple, Measures]:
    """Payments per period, one range query per period on paid_at: the
    period's local days become UTC instants, so no row needs a date
    conversion and nothing is sorted (``by_time``: the planner kept off the
    index by customer, led by currency, which would read every payment of
    the currency once per period)."""
    where, params = filter_sql(spec.filters, by_time=True)
    join = " JOIN customers c ON c.id = o.customer_id" if spec.filters.region else ""
    sql = (f"SELECT count(DISTINCT o.id), coalesce(sum(o.amount_cents), 0)"
           f" FROM {collected_source(conn, hint=True)} o{join}"
           f" WHERE o.paid_at >= ? AND o.paid_at < ?"
           + "".join(" AND " + w for w in where))
    out: dict[tuple, Measures] = {}
    for b, lo, hi in period_windows(conn, spec.range, unit, "collected"):
        n, total = conn.execute(sql, [utc_bound(lo), utc_bound(hi, days=1), *params]).fetchone()
        if n or total:
            out[(b,) if unit else ()] = Measures(orders=n, units=None, revenue=total, discounts=None, cost=None)
    return out


#: The shipment-line summary aliased ``f``, walked in its own key order (time): its primary key named, as
#: SQLite names the key of a WITHOUT ROWID table, because the planner would otherwise walk one of its
#: indexes in full and fetch every line from the table (an index holding most columns looks cheap).
_SHIPPED_AS_STORED = " f INDEXED BY sqlite_autoindex_sales_shipped_1"


def _shipped_filters(f: Filters, *, region_of_line: bool) -> tuple[list[str], list[Any]]:
    """``filter_sql`` for a query over shipment lines ``f`` walked by time
    (products ``p`` joined for a category); ``region_of_line``: the summary's
    lines, which carry their customer's region (else customers ``c``)."""
    if not (region_of_line and f.region):
        return filter_sql(f, o="f", p="p", by_time=True)
    where, params = filter_sql(replace(f, region=[]), o="f", p="p", by_time=True)
    where.append(f"+f.region IN ({', '.join('?' * len(f.region))})")
    return where, params + list(f.region)


def _shipped_by_bucket(conn: sqlite3.Connection, spec: Spec, unit: str | None) -> dict[tuple, Measures]:
    """The shipped basis per period from the shipment-line summary, one
    range query per period on its time key (the period's local days as UTC
    instants): no date conversion per row and no sort."""
    where, params = _shipped_filters(spec.filters, region_of_line=True)
    join = " CROSS JOIN products p ON p.id = f.product_id" if spec.filters.category else ""
    # orders: each order's first shipment in the period (see shipped_rows_sql); with a category filter
    # an order counts by its lines of that category, so there they are counted one by one
    orders = ("count(DISTINCT f.order_id)" if spec.filters.category
              else "sum(f.counts_order = 1 AND (f.prev_at IS NULL OR f.prev_at < ?1))")
    sql = (f"SELECT {orders}, sum(f.units), sum(f.revenue), sum(f.cost) FROM sales_shipped{_SHIPPED_AS_STORED}{join}"
           " WHERE f.shipped_at >= ?1 AND f.shipped_at < ?2"
           + "".join(" AND " + w for w in where))
    f = spec.filters
    hourly = not (f.by_order or f.category) and bool(f.currency)
    out: dict[tuple, Measures] = {}
    for b, lo, hi in period_windows(conn, spec.range, unit, "shipped"):
        start, end = utc_bound(lo), utc_bound(hi, days=1)
        if hourly:
            n, units, revenue, cost = _shipped_window(conn, start, end, f.currency, sql, params)
        else:
            n, units, revenue, cost = conn.execute(sql, [start, end, *params]).fetchone()
        if n:
            out[(b,) if unit else ()] = Measures(orders=n, units=units, revenue=revenue, discounts=None, cost=cost)
    # with no period the answer is one row, empty sums included (as the line query gives)
    return out or ({} if unit else {(): Measures(0, None, None, None, None)})


def _whole_hours(start: str, end: str) -> tuple[str, str]:
    """The first and the last whole UTC hour boundary within [start, end)
    (instants as ISO text); the first is not before the last when no whole
    hour fits."""
    lo = datetime.strptime(start, "%Y-%m-%dT%H:%M:%SZ")
    hi = datetime.strptime(end, "%Y-%m-%dT%H:%M:%SZ")
    first = lo if (lo.minute, lo.second) == (0, 0) else lo.replace(minute=0, second=0) + timedelta(hours=1)
    return first.strftime("%Y-%m-%dT%H:%M:%SZ"), hi.replace(minute=0, second=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _shipped_window(conn: sqlite3.Connection, start: str, end: str, currency: str, sql: str,
                    params: list[Any]) -> tuple:
    """(orders, units, revenue, cost) shipped in [start, end) (UTC instants)
    in one currency: the whole hours from the hourly totals, any part hour at
    either end (a zone half an hour off) from the rows by ``sql``; then the
    shipments of an order that had already shipped in the window come off
    the orders."""
    first, last = _whole_hours(start, end)
    if first >= last:
        return conn.execute(sql, [start, end, *params]).fetchone()
    totals = [v or 0 for v in conn.execute(
        "SELECT sum(firsts), sum(units), sum(revenue), sum(cost) FROM sales_shipped_hours"
        " WHERE hour >= ? AND hour < ? AND currency = ?", (first[:13], last[:13], currency)).fetchone()]
    for a, b in ((start, first), (last, end)):
        if a < b:
            part = conn.execute(
                "SELECT sum(counts_order), sum(units), sum(revenue), sum(cost) FROM sales_shipped"
                " WHERE shipped_at >= ? AND shipped_at < ? AND +currency = ?", (a, b, currency)).fetchone()
            totals = [t + (v or 0) for t, v in zip(totals, part)]
    again = conn.execute(
        "SELECT count(*) FROM sales_shipped INDEXED BY sales_shipped_again WHERE prev_at IS NOT NULL"
        " AND prev_at >= ?1 AND prev_at < ?2 AND shipped_at < ?2 AND currency = ?3", (start, end, currency)
    ).fetchone()[0]
    n = totals[0] - again
    return (n, *totals[1:]) if n else (0, None, None, None)


def _shipped_by_category(conn: sqlite3.Connection, spec: Spec, dims: Sequence[str]) -> dict[tuple, Measures]:
    """The shipped basis by category and at most one period, in one
    currency, from the shipment-line summary (an order counts once per
    category and period: by the first line of each category in a shipment
    and the time of the order's previous shipment of that category).
    Without an order filter: whole UTC hours from the per-hour and category
    totals, any part hour at a window's ends from the rows, and the repeat
    shipments of a category within the window off; with one, the rows of
    each category and window in turn off the index in category and time
    order (no sort, no product join)."""
    f = spec.filters
    unit = next((d for d in dims if d in PERIODS), None)
    cats = sorted(r[0] for r in conn.execute("SELECT DISTINCT coalesce(category, '') FROM products"))
    if f.category:
        cats = [c for c in cats if c in f.category]
    if not cats:
        return {}
    wanted = set(cats)
    where, params = _shipped_filters(replace(f, category=[], currency=None), region_of_line=True)
    marks = ", ".join("?" * len(cats))
    # an order counts in a window by its first line of the category there (its previous shipment of
    # the category before the window, or none)
    counted = "sum(f.counts_category = 1 AND coalesce(f.prev_category_at, '') < ?)"

    def rows(orders: str, lo: str, hi: str, oparams: Sequence[Any] = ()) -> list[tuple]:
        """(category, orders, units, revenue, cost) of the lines shipped in [lo, hi)."""
        sql = (f"SELECT f.category, {orders}, sum(f.units), sum(f.revenue), sum(f.cost)"
               " FROM sales_shipped f INDEXED BY sales_shipped_category"
               f" WHERE f.currency = ? AND f.category IN ({marks}) AND f.shipped_at >= ? AND f.shipped_at < ?"
               + "".join(" AND " + w for w in where) + " GROUP BY f.category")
        return conn.execute(sql, [*oparams, f.currency, *cats, lo, hi, *params]).fetchall()

    def window(start: str, end: str) -> list[tuple]:
        first, last = _whole_hours(start, end)
        if where or first >= last:  # an order filter, or no whole hour: the rows
            return rows(counted, start, end, [start])
        totals: dict[str, list[int]] = {}

        def add(got: Iterable[tuple], sign: int = 1) -> None:
            for cat, *values in got:
                if cat in wanted:
                    t = totals.setdefault(cat, [0, 0, 0, 0])
                    for i, v in enumerate(values):
                        t[i] += sign * (v or 0)

        add(conn.execute(
            "SELECT category, sum(firsts), sum(units), sum(revenue), sum(cost) FROM sales_shipped_category_hours"
            " WHERE hour >= ? AND hour < ? AND currency = ? GROUP BY category",
            (first[:13], last[:13], f.currency)))
        for a, b in ((start, first), (last, end)):
            if a < b:  # a part hour: its rows, each shipment's first line of a category
                add(rows("sum(f.counts_category)", a, b))
        # an order's later shipments of a category within the window: counted above, once too many
        add(((cat, n, 0, 0, 0) for cat, n in conn.execute(
            "SELECT category, count(*) FROM sales_shipped INDEXED BY sales_shipped_category_again"
            " WHERE prev_category_at IS NOT NULL AND prev_category_at >= ?1 AND prev_category_at < ?2"
            " AND shipped_at < ?2 AND currency = ?3 GROUP BY category", (start, end, f.currency))), -1)
        return [(cat, *t) for cat, t in totals.items()]

    out: dict[tuple, Measures] = {}
    for b, lo_day, hi_day in period_windows(conn, spec.range, unit, "shipped"):
        for cat, n, units, revenue, cost in window(utc_bound(lo_day), utc_bound(hi_day, days=1)):
            if n:
                parts = {"category": cat or None, unit: b}
                out[tuple(parts[d] for d in dims)] = Measures(orders=n, units=units, revenue=revenue, discounts=None,
                                                              cost=cost)
    return out


def data_span(conn: sqlite3.Connection, basis: str = "booked") -> tuple[date, date] | None:
    """First and last day with sales on a basis (index lookups only)."""
    if basis == "booked":
        # (two subqueries: SQLite reads min or max off an index only when it is the query's one aggregate)
        row = conn.execute("SELECT (SELECT min(order_date) FROM orders), (SELECT max(order_date) FROM orders)"
                           ).fetchone()
        if not row or row[0] is None:
            return None
        return date.fromisoformat(row[0][:10]), date.fromisoformat(row[1][:10])
    col, table = ("shipped_at", "shipments") if basis == "shipped" else ("paid_at", "payments")
    row = conn.execute(f"SELECT (SELECT min({col}) FROM {table}), (SELECT max({col}) FROM {table})").fetchone()
    if not row or row[0] is None:
        return None
    # (UTC dates: widened by a day so that every local day is inside)
    return date.fromisoformat(row[0][:10]) - timedelta(days=1), date.fromisoformat(row[1][:10]) + timedelta(days=1)


# --------------------------------------------------------------------------- labels


_LOOKUPS = {("customers", "name"), ("orders", "number"), ("orders", "number, customer_id")}


def lookup(conn: sqlite3.Connection, table: str, column: str, ids: Iterable[int]) -> dict[int, Any]:
    """``{id: column}`` for the given row ids (None ignored), in one
    statement; with several columns (``"a, b"``), ``{id: (a, b)}``.  Table and columns
    from a fixed list: they are never input."""
    assert (table, column) in _LOOKUPS
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    # (the ids as a JSON array, in order, each a key lookup: CROSS JOIN keeps the table from being walked)
    rows = conn.execute(f"SELECT t.id, {', '.join('t.' + c.strip() for c in column.split(','))}"
                        f" FROM json_each(?) j CROSS JOIN {table} t ON t.id = j.value", (json.dumps(wanted),))
    return {r[0]: r[1:] for r in rows} if "," in column else dict(rows)


def customer_names(conn: sqlite3.Connection, ids: Iterable[int]) -> dict[int, str]:
    return lookup(conn, "customers", "name", ids)


def product_labels(conn: sqlite3.Connection, ids: Iterable[int]) -> dict[int, tuple[str, str, str | None]]:
    ids = [i for i in ids if i is not None]
    out: dict[int, tuple[str, str, str | None]] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        for r in conn.execute(
                f"SELECT id, sku, name, category FROM products WHERE id IN ({', '.join('?' * len(chunk))})", chunk):
            out[r[0]] = (r[1], r[2], r[3])
    return out


def parse_sort(spec: str | None, allowed: Sequence[str], default: str) -> tuple[str, bool]:
    """``revenue`` / ``-revenue`` / ``+name`` -> (key, descending).  Only
    whitelisted keys; a bare key sorts numbers descending, text ascending."""
    s = (spec or default).strip()
    desc: bool | None = None
    if s[:1] and s[0] in "+-":  # s[:1] of a blank spec is "", which is "in" any string
        desc = s[0] == "-"
        s = s[1:]
    key = s.strip().lower().replace("-", "_")
    if key not in allowed:
        raise UsageError(f"cannot sort by {s!r}", "sort by one of " + ", ".join(allowed))
    return key, desc if desc is not None else key not in ("name", "customer", "product", "sku", "category",
                                                         "channel", "region", "salesperson", "period")


# --------------------------------------------------------------------------- a report's result


@dataclass
class Report:
    """What a report returns: rows under columns (``salescrm.output.Col``),
    an optional totals row (the sum of the rows, to the cent), the key of
    the main measure (for the summary statistics and ``--chart``), the key
    of the row label, and notes for the person reading (stderr)."""

    title: str
    cols: list[Any]
    rows: list[dict[str, Any]]
    totals: dict[str, Any] | None = None
    measure: str | None = None
    label: str | None = None
    notes: list[str] = field(default_factory=list)
    chart: str = "bars"  # bars or sparkline
    hide: tuple[str, ...] = ()  # columns left out of a terminal table (kept in machine formats)


def summary_stats(values: Sequence[int | Decimal | None]) -> dict[str, Any] | None:
    """count, sum, mean, median, min, max of the non-empty values (mean and
    median as Decimal; None when there are none)."""
    vals = sorted(Decimal(v) for v in values if v is not None)
    if not vals:
        return None
    n = len(vals)
    mid = n // 2
    median = vals[mid] if n % 2 else (vals[mid - 1] + vals[mid]) / 2
    total = sum(vals, Decimal(0))
    return {"count": n, "sum": total, "mean": total / n, "median": median, "min": vals[0], "max": vals[-1]}


def sort_rows(rows: list[dict[str, Any]], key: str, desc: bool) -> None:
    """Sort in place by ``key`` (text ignoring case); empty values last."""
    present = [r for r in rows if r.get(key) is not None]
    empty = [r for r in rows if r.get(key) is None]
    present.sort(key=lambda r: r[key].casefold() if isinstance(r[key], str) else r[key], reverse=desc)
    rows[:] = present + empty


def revenue_series(conn: sqlite3.Connection, spec: Spec) -> dict[date, int]:
    """Revenue per day.  Booked revenue without a category filter comes from
    the orders alone (no line is read), walking ``orders(order_date)``."""
    if spec.basis != "booked" or spec.filters.by_line:
        return {k[0]: m.revenue for k, m in aggregate(conn, spec, ["day"]).items()}
    where, params = filter_sql(spec.filters)
    where.append("o.order_date >= ?")
    params.append(spec.range.start.isoformat() if spec.range.start else "")
    if spec.range.end:
        where.append("o.order_date <= ?")
        params.append(spec.range.end.isoformat())
    join = " JOIN customers c ON c.id = o.customer_id" if spec.filters.region else ""
    sql = (f"SELECT o.order_date, sum({order_revenue_sql()}) FROM orders o{join}"
           f" WHERE +o.status IN ({BOOKED_SQL}) AND " + " AND ".join(where) + " GROUP BY o.order_date")
    out: dict[date, int] = {}
    for d, v in conn.execute(sql, params):
        day = date.fromisoformat(d[:10])
        out[day] = out.get(day, 0) + v
    return out
