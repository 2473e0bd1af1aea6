"""Sales plans: targets for a period, and live attainment.  No Typer, no Rich.

A plan measures one **metric** over its **period**, on one **basis**, within
a **scope**:

metric
    ``revenue`` (cents), ``units``, ``orders`` or ``new_customers``.
basis
    ``booked``: confirmed orders (any status but draft and cancelled), by
    order date.  ``shipped``: shipped units, by shipment date (local day).
    ``collected``: payments less refunds, by payment date (revenue only).
scope
    channel, category, SKU, region, segment, salesperson; each a list of
    values (any of them), all given dimensions together (AND).  Channel and
    salesperson are the order's; region and segment the customer's;
    category and SKU the line's product.  Values match in any case.

Revenue (booked and shipped) is the one definition of
``salescrm.reports.common``, so that a plan and 'report sales' agree to the
cent: a line's net (ex tax, after its discount) less what its returns
credited, plus its share of the order-level adjustments (order discounts,
promotions) kept after returns; shipping and tax are not revenue.  With the
shipped basis each shipment carries the line's revenue for the kept units
it shipped (returned units come off the latest shipments first).  Collected
revenue is the money received (tax and shipping included); with a SKU or
category scope each payment is shared among the order's lines in
proportion to what is kept of them.

A new customer is one whose first booked order ever (cancelled and fully
returned orders do not count) falls in the period and is in scope; with the
shipped basis, whose first shipped order does.

The target may be distributed over sub-periods (weeks, months or quarters,
clipped to the period): ``even`` (equal parts), ``weights`` (custom) or
``seasonal`` (last year's actuals in the same scope).  Parts are whole
cents or units and always add up to the target (largest remainder).

Status: *elapsed* counts the whole days of the period before today; the
run-rate projection is ``achieved / elapsed days x period days``; *needed
per day* is what is left to reach the target divided by the days left
(today included).  *Expected to date* follows the sub-period targets when
distributed (pro rata by days within the current one), else the days.

Everything is aggregated in SQL; writers run inside ``db.write_tx``.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from salescrm import db, lifecycle, money, products, validate
from salescrm.errors import Conflict, NotFound, ValidationError

METRICS = ("revenue", "units", "orders", "new_customers")
BASES = ("booked", "shipped", "collected")
DISTRIBUTIONS = ("none", "even", "weights", "seasonal")
SPLITS = ("week", "month", "quarter")
SCOPES = ("channel", "category", "sku", "region", "segment", "salesperson")

# --------------------------------------------------------------------------- periods


@dataclass(frozen=True)
class Period:
    start: date
    end: date
    label: str | None = None

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


_PERIOD_HINT = ("write 2026, 2026-H1, 2026-Q1, 2026-03, 2026-W05, 2026-03-15 or a range "
                "2026-01-01..2026-03-31")


def _month_end(y: int, m: int) -> date:
    return (date(y + (m == 12), m % 12 + 1, 1)) - timedelta(days=1)


def _one_period(text: str) -> tuple[date, date] | None:
    s = text.strip().upper()
    try:
        if m := re.fullmatch(r"(\d{4})", s):
            y = int(m.group(1))
            return date(y, 1, 1), date(y, 12, 31)
        if m := re.fullmatch(r"(\d{4})-?H([12])", s):
            y, h = int(m.group(1)), int(m.group(2))
            return date(y, 6 * h - 5, 1), _month_end(y, 6 * h)
        if m := re.fullmatch(r"(\d{4})-?Q([1-4])", s):
            y, q = int(m.group(1)), int(m.group(2))
            return date(y, 3 * q - 2, 1), _month_end(y, 3 * q)
        if m := re.fullmatch(r"(\d{4})-(\d{2})", s):
            y, mo = int(m.group(1)), int(m.group(2))
            return date(y, mo, 1), _month_end(y, mo)
        if m := re.fullmatch(r"(\d{4})-?W(\d{2})", s):
            y, w = int(m.group(1)), int(m.group(2))
            start = date.fromisocalendar(y, w, 1)
            return start, start + timedelta(days=6)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
            d = date.fromisoformat(s)
            return d, d
    except ValueError:
        return None
    return None


def parse_period(text: str | None, *, start: str | date | None = None, end: str | date | None = None) -> Period:
    """``2026``, ``2026-H1``, ``2026-Q1``, ``2026-03``, ``2026-W05``, a day,
    ``A..B`` (each side any of those), or explicit ``start``/``end`` dates."""
    if text is not None and (start is not None or end is not None):
        raise ValidationError("give a period or --from/--to dates, not both")
    if text is None:
        if start is None or end is None:
            raise ValidationError("a plan needs a period", "give --period 2026-Q1, or both --from and --to")
        a = validate.parse_date(start, field="--from")
        b = validate.parse_date(end, field="--to")
        label = None
    else:
        raw = str(text).strip()
        parts = raw.split("..")
        if len(parts) > 2 or not all(p.strip() for p in parts):
            raise ValidationError(f"the period {raw!r} does not parse", _PERIOD_HINT)
        first = _one_period(parts[0])
        last = _one_period(parts[-1])
        if first is None or last is None:
            raise ValidationError(f"the period {raw!r} does not parse", _PERIOD_HINT)
        a, b = first[0], last[1]
        label = raw.upper() if len(parts) == 1 and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw) else None
    if a > b:
        raise ValidationError(f"the period ends ({b}) before it starts ({a})")
    if (b - a).days > 3660:
        raise ValidationError("a plan's period may last at most ten years")
    return Period(a, b, label)


def subperiods(period: Period, split: str) -> list[Period]:
    """Calendar weeks (Monday-Sunday), months or quarters, clipped to the period."""
    out: list[Period] = []
    d = period.start
    while d <= period.end:
        if split == "week":
            end = d + timedelta(days=6 - d.weekday())
            label = f"{d.isocalendar()[0]}-W{d.isocalendar()[1]:02d}"
        elif split == "month":
            end = _month_end(d.year, d.month)
            label = f"{d.year}-{d.month:02d}"
        elif split == "quarter":
            q = (d.month - 1) // 3 + 1
            end = _month_end(d.year, 3 * q)
            label = f"{d.year}-Q{q}"
        else:
            raise ValidationError(f"unknown split {split!r}", "use week, month or quarter")
        end = min(end, period.end)
        out.append(Period(d, end, label))
        d = end + timedelta(days=1)
    return out


def _year_before(d: date) -> date:
    try:
        return d.replace(year=d.year - 1)
    except ValueError:  # 29 February
        return d.replace(year=d.year - 1, day=28)


# --------------------------------------------------------------------------- values


def _choice(value: str, allowed: Sequence[str], field: str) -> str:
    v = str(value or "").strip().lower().replace("-", "_")
    if v == "new_customer":
        v = "new_customers"
    if v not in allowed:
        raise ValidationError(f"unknown {field} {value!r}", "use one of: " + ", ".join(allowed))
    return v


def parse_target(value: str | int, metric: str) -> int:
    """Revenue: an amount ('30000', '1234.50') -> cents; else a whole count."""
    if metric == "revenue":
        if isinstance(value, int) and not isinstance(value, bool):
            cents = value
        else:
            cents = money.parse_money(str(value), field="target")
    else:
        s = str(value).strip()
        if not re.fullmatch(r"-?\d+", s):
            raise ValidationError(f"the target of a {metric} plan must be a whole number, not {s!r}")
        cents = int(s)
    if cents <= 0:
        raise ValidationError("the target must be more than zero")
    if cents > 10**15:
        raise ValidationError("the target is too large")
    return cents


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


def _scope_values(conn: sqlite3.Connection, dim: str, values: str | Iterable[str] | None) -> str | None:
    """Validate one scope dimension; returns the stored text (comma-joined) or None."""
    vals = _values(values, dim)
    if not vals:
        return None
    if dim == "channel":
        from salescrm import settings

        allowed = settings.get(conn, "channels")
        vals = [v.lower() for v in vals]
        for v in vals:
            if v not in allowed:
                raise ValidationError(f"unknown channel {v!r}", "use one of: " + ", ".join(allowed))
    elif dim == "sku":
        vals = [products.get(conn, v)["sku"] for v in vals]
    elif dim == "category":
        found = []
        for v in vals:
            row = conn.execute("SELECT category FROM products WHERE lower(category) = lower(?) LIMIT 1",
                               (v,)).fetchone()
            if row is None:
                raise NotFound(f"no product has the category {v!r}", "see 'salescrm product list'")
            found.append(row[0])
        vals = found
    return ",".join(vals)


def _parse_weights(text: str | Sequence[Any]) -> list[Decimal]:
    items = text.split(",") if isinstance(text, str) else list(text)
    out = []
    for item in items:
        w = money.parse_decimal(str(item).strip(), field="weight")
        out.append(w)
    if not out or sum(out) <= 0:
        raise ValidationError("the weights must add up to more than zero")
    return out


def allocate(total: int, weights: Sequence[Decimal]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` into whole parts that add
    up to ``total`` (largest remainder; ties go to the earlier part)."""
    wsum = sum(weights)
    exact = [Decimal(total) * w / wsum for w in weights]
    parts = [int(x) for x in exact]  # floor, all non-negative
    left = total - sum(parts)
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[:left]:
        parts[i] += 1
    return parts


# --------------------------------------------------------------------------- measuring (SQL)


_BOOKED = ", ".join(f"'{s}'" for s in lifecycle.BOOKED)  # constants, not user input


@dataclass
class Scope:
    channel: list[str]
    category: list[str]
    sku: list[str]
    region: list[str]
    segment: list[str]
    salesperson: list[str]

    @classmethod
    def of(cls, plan: dict[str, Any]) -> Scope:
        return cls(**{d: (plan.get(f"scope_{d}") or "").split(",") if plan.get(f"scope_{d}") else []
                      for d in SCOPES})

    @property
    def by_product(self) -> bool:
        return bool(self.category or self.sku)

    def order_sql(self, o: str = "o", c: str = "c") -> tuple[str, list[Any]]:
        """Conditions on the order and its customer."""
        where, params = [], []
        for dim, col in (("channel", f"{o}.channel"), ("salesperson", f"{o}.salesperson"),
                         ("region", f"{c}.region"), ("segment", f"{c}.segment")):
            vals = getattr(self, dim)
            if vals:
                where.append(f"lower({col}) IN ({','.join('?' * len(vals))})")
                params += [v.lower() for v in vals]
        return (" AND ".join(where) or "1"), params

    def line_sql(self, line: str = "l") -> tuple[str, list[Any]]:
        """Conditions on an order line (by its product)."""
        where, params = [], []
        if self.sku:
            where.append(f"{line}.product_id IN (SELECT id FROM products WHERE sku_key IN "
                         f"({','.join('?' * len(self.sku))}))")
            params += [products.sku_key(s) for s in self.sku]
        if self.category:
            where.append(f"{line}.product_id IN (SELECT id FROM products WHERE lower(category) IN "
                         f"({','.join('?' * len(self.category))}))")
            params += [c.lower() for c in self.category]
        return (" AND ".join(where) or "1"), params


_KEPT_ANY = "EXISTS (SELECT 1 FROM order_lines k WHERE k.order_id = {o}.id AND k.qty > k.returned_qty)"


def measure(conn: sqlite3.Connection, plan: dict[str, Any], start: date, end: date,
            *, metric: str | None = None) -> int:
    """The plan's metric (or ``metric``) achieved between two dates, inclusive.

    Revenue uses the one definition of ``salescrm.reports.common`` (a line's
    net less returns plus its cumulative share of the kept order-level
    adjustments; shipped: by kept units per shipment, latest shipments
    returned first), so a plan and 'report sales' agree to the cent."""
    from salescrm.reports.common import line_revenue_sql, local_day_sql, rdiv

    metric = metric or plan["metric"]
    basis = plan["basis"]
    scope = Scope.of(plan)
    osql, oparams = scope.order_sql()
    lsql, lparams = scope.line_sql()
    span = [start.isoformat(), end.isoformat()]
    if basis == "collected":
        if metric != "revenue":
            raise ValidationError(f"a {metric} plan cannot use the collected basis", "use booked or shipped")
        paid_day = local_day_sql("p.paid_at")
        if not scope.by_product:
            sql = (f"SELECT coalesce(sum(p.amount_cents), 0) FROM payments p JOIN orders o ON o.id = p.order_id"
                   f" JOIN customers c ON c.id = o.customer_id"
                   f" WHERE o.status IN ({_BOOKED}) AND {paid_day} BETWEEN ? AND ? AND {osql}")
            return int(conn.execute(sql, [*span, *oparams]).fetchone()[0])
        kept = "(l.total_cents - coalesce((SELECT sum(r.total_cents) FROM return_lines r WHERE r.line_id = l.id), 0))"
        sql = f"""
            WITH pay AS (
                SELECT p.amount_cents AS amt, o.id AS oid FROM payments p JOIN orders o ON o.id = p.order_id
                JOIN customers c ON c.id = o.customer_id
                WHERE o.status IN ({_BOOKED}) AND {paid_day} BETWEEN ? AND ? AND {osql}
            ), shares AS (
                SELECT pay.amt AS amt,
                       (SELECT coalesce(sum({kept}), 0) FROM order_lines l WHERE l.order_id = pay.oid AND {lsql}) AS part,
                       (SELECT coalesce(sum({kept}), 0) FROM order_lines l WHERE l.order_id = pay.oid) AS whole
                FROM pay
            )
            SELECT coalesce(sum(CASE WHEN whole <= 0 THEN 0 ELSE {rdiv('amt * part', 'whole')} END), 0) FROM shares
        """
        return int(conn.execute(sql, [*span, *oparams, *lparams]).fetchone()[0])

    if basis == "booked":
        day = "o.order_date"
        if metric in ("revenue", "units"):
            what = line_revenue_sql("o", "l") if metric == "revenue" else "l.qty - l.returned_qty"
            sql = (f"SELECT coalesce(sum({what}), 0) FROM orders o JOIN customers c ON c.id = o.customer_id"
                   f" JOIN order_lines l ON l.order_id = o.id"
                   f" WHERE o.status IN ({_BOOKED}) AND o.order_date BETWEEN ? AND ? AND {osql} AND {lsql}")
            return int(conn.execute(sql, [*span, *oparams, *lparams]).fetchone()[0])
    else:  # shipped
        day = local_day_sql("o.shipped_at")
        if metric in ("revenue", "units"):
            # the reports' per-shipment-line values (summary when current), within the local days
            from salescrm import salesfacts
            from salescrm.reports.common import shipped_rows_sql, utc_bound

            bounds = [utc_bound(start, days=-1), utc_bound(end, days=2)]
            if salesfacts.ready(conn):
                source, sparams = "sales_shipped", []
            else:
                source = "(" + shipped_rows_sql(["s.shipped_at >= ?", "s.shipped_at < ?"]) + ")"
                sparams = list(bounds)
            sql = (f"SELECT coalesce(sum(f.{'revenue' if metric == 'revenue' else 'units'}), 0) FROM {source} f"
                   f" JOIN orders o ON o.id = f.order_id JOIN customers c ON c.id = f.customer_id"
                   f" JOIN order_lines l ON l.id = f.line_id"
                   f" WHERE f.shipped_at >= ? AND f.shipped_at < ?"
                   f" AND {local_day_sql('f.shipped_at')} BETWEEN ? AND ? AND {osql} AND {lsql}")
            return int(conn.execute(sql, [*sparams, *bounds, *span, *oparams, *lparams]).fetchone()[0])
    # orders and new customers: orders dated (booked) or first shipped in the period
    in_scope = (f"EXISTS (SELECT 1 FROM order_lines l WHERE l.order_id = o.id AND l.qty > l.returned_qty"
                f"{' AND l.shipped_qty > 0' if basis == 'shipped' else ''} AND {lsql})")
    shipped = "o.shipped_at IS NOT NULL AND " if basis == "shipped" else ""
    if metric == "orders":
        sql = (f"SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id"
               f" WHERE {shipped}o.status IN ({_BOOKED}) AND {day} BETWEEN ? AND ? AND {osql} AND {in_scope}")
        return int(conn.execute(sql, [*span, *oparams, *lparams]).fetchone()[0])
    if metric == "new_customers":
        day2 = day.replace("o.", "o2.")
        sql = f"""
            SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id
            WHERE {shipped}o.status IN ({_BOOKED}) AND {day} BETWEEN ? AND ? AND {_KEPT_ANY.format(o='o')}
              AND NOT EXISTS (
                  SELECT 1 FROM orders o2 WHERE o2.customer_id = o.customer_id
                  AND {shipped.replace('o.', 'o2.')}o2.status IN ({_BOOKED}) AND {_KEPT_ANY.format(o='o2')}
                  AND ({day2} < {day} OR ({day2} = {day} AND o2.id < o.id)))
              AND {osql} AND {in_scope}
        """
        return int(conn.execute(sql, [*span, *oparams, *lparams]).fetchone()[0])
    raise ValidationError(f"unknown metric {metric!r}")  # pragma: no cover - validated on save


# --------------------------------------------------------------------------- plans


def _require_tx(conn: sqlite3.Connection, what: str) -> None:
    assert conn.in_transaction, f"plans.{what} must run inside db.write_tx"


def _row(row: sqlite3.Row | None) -> dict[str, Any] | None:
    return dict(row) if row is not None else None


def find(conn: sqlite3.Connection, ref: int | str) -> dict[str, Any] | None:
    if isinstance(ref, int) and not isinstance(ref, bool):
        return _row(conn.execute("SELECT * FROM plans WHERE id = ?", (ref,)).fetchone())
    s = str(ref).strip()
    row = conn.execute("SELECT * FROM plans WHERE name_key = ?", (validate.name_key(s),)).fetchone()
    if row is None and s.isdigit():
        row = conn.execute("SELECT * FROM plans WHERE id = ?", (int(s),)).fetchone()
    return _row(row)


def get(conn: sqlite3.Connection, ref: int | str) -> dict[str, Any]:
    p = find(conn, ref)
    if p is None:
        raise NotFound(f"no plan {str(ref).strip()!r}", "see 'salescrm plan list'")
    return p


def targets(conn: sqlite3.Connection, plan_id: int) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(
        "SELECT seq, period_start, period_end, weight, target FROM plan_targets WHERE plan_id = ? ORDER BY seq",
        (plan_id,))]


def spending(conn: sqlite3.Connection, plan_id: int) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(
        "SELECT id, spent_on, amount_cents, note, os_user FROM plan_spend WHERE plan_id = ? ORDER BY spent_on, id",
        (plan_id,))]


def _distribute(conn: sqlite3.Connection, plan: dict[str, Any], weights: Sequence[Decimal] | None) -> None:
    conn.execute("DELETE FROM plan_targets WHERE plan_id = ?", (plan["id"],))
    dist = plan["distribution"]
    if dist == "none":
        return
    period = Period(date.fromisoformat(plan["period_start"]), date.fromisoformat(plan["period_end"]))
    parts = subperiods(period, plan["split"] or "month")
    if dist == "even":
        ws = [Decimal(1)] * len(parts)
    elif dist == "weights":
        if weights is None:
            raise ValidationError("--distribute weights needs --weights, e.g. 1,1,2")
        ws = list(weights)
        if len(ws) != len(parts):
            raise ValidationError(
                f"{len(ws)} weights for {len(parts)} sub-periods ({', '.join(p.label or '' for p in parts)})",
                "give one weight per sub-period")
        if any(w < 0 for w in ws):
            raise ValidationError("weights must not be negative")
    else:  # seasonal: last year's actuals in the same scope
        ws = [Decimal(measure(conn, plan, _year_before(p.start), _year_before(p.end))) for p in parts]
        if sum(ws) <= 0:
            raise ValidationError("no sales in this scope a year earlier to follow",
                                  "use --distribute even or --distribute weights")
    for i, (p, w, t) in enumerate(zip(parts, ws, allocate(plan["target"], ws)), start=1):
        conn.execute("INSERT INTO plan_targets (plan_id, seq, period_start, period_end, weight, target)"
                     " VALUES (?, ?, ?, ?, ?, ?)",
                     (plan["id"], i, p.start.isoformat(), p.end.isoformat(), format(w.normalize(), "f"), t))


def _check_combination(metric: str, basis: str) -> None:
    if basis == "collected" and metric != "revenue":
        raise ValidationError(f"a {metric.replace('_', ' ')} plan cannot use the collected basis",
                              "collected measures money received: use it for revenue plans")


def add(
    conn: sqlite3.Connection,
    *,
    name: str,
    target: str | int,
    period: str | None = None,
    start: str | date | None = None,
    end: str | date | None = None,
    metric: str = "revenue",
    basis: str = "booked",
    scope: dict[str, Any] | None = None,
    strategy: str | None = None,
    marketing_channel: str | None = None,
    budget: int | None = None,
    distribution: str = "none",
    weights: str | Sequence[Any] | None = None,
    split: str | None = None,
) -> int:
    """A new plan; ``target`` is an amount for revenue (text or cents) or a
    count; ``budget`` cents.  ``scope`` maps dimension -> value(s)."""
    _require_tx(conn, "add")
    name_v = validate.text(name, field="name", max_len=100, required=True)
    assert name_v is not None
    if conn.execute("SELECT 1 FROM plans WHERE name_key = ?", (validate.name_key(name_v),)).fetchone():
        raise Conflict(f"a plan named {name_v!r} already exists", "choose another name or 'plan edit' it")
    metric = _choice(metric, METRICS, "metric")
    basis = _choice(basis, BASES, "basis")
    _check_combination(metric, basis)
    per = parse_period(period, start=start, end=end)
    dist = _choice(distribution, DISTRIBUTIONS, "distribution")
    sp = _choice(split, SPLITS, "split") if split else None
    if dist != "none" and sp is None:
        sp = "week" if per.days <= 31 else "month"
    ws = _parse_weights(weights) if weights is not None else None
    if ws is not None and dist != "weights":
        raise ValidationError("--weights goes with --distribute weights")
    scope_values = {f"scope_{d}": _scope_values(conn, d, (scope or {}).get(d)) for d in SCOPES}
    for key in scope or {}:
        if key not in SCOPES:
            raise ValidationError(f"unknown scope {key!r}", "scope by " + ", ".join(SCOPES))
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 0):
        raise ValidationError("the budget must be an amount of zero or more")
    now = db.now_iso()
    cur = conn.execute(
        "INSERT INTO plans (name, name_key, period_start, period_end, period_label, metric, target, basis,"
        " scope_channel, scope_category, scope_sku, scope_region, scope_segment, scope_salesperson,"
        " strategy, marketing_channel, budget, distribution, split, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (name_v, validate.name_key(name_v), per.start.isoformat(), per.end.isoformat(), per.label, metric,
         parse_target(target, metric), basis, *(scope_values[f"scope_{d}"] for d in SCOPES),
         validate.text(strategy, field="strategy", max_len=4000),
         validate.text(marketing_channel, field="marketing channel", max_len=100), budget, dist, sp, now, now),
    )
    pid = int(cur.lastrowid or 0)
    _distribute(conn, get(conn, pid), ws)
    db.audit(conn, "create", "plan", pid)
    return pid


def edit(conn: sqlite3.Connection, ref: int | str, *, weights: str | Sequence[Any] | None = None,
         **changes: Any) -> dict[str, Any]:
    """Change a plan (None leaves a field alone; ``""`` clears a text field or
    a scope).  Keys: name, target, period, start, end, metric, basis, scope
    (dict), strategy, marketing_channel, budget, distribution, split.  The
    sub-period targets are recomputed."""
    _require_tx(conn, "edit")
    p = get(conn, ref)
    sets: dict[str, Any] = {}
    metric = _choice(changes["metric"], METRICS, "metric") if changes.get("metric") else p["metric"]
    basis = _choice(changes["basis"], BASES, "basis") if changes.get("basis") else p["basis"]
    _check_combination(metric, basis)
    if metric != p["metric"]:
        sets["metric"] = metric
        if changes.get("target") is None:
            raise ValidationError("changing the metric needs a new --target")
    if basis != p["basis"]:
        sets["basis"] = basis
    for key, value in changes.items():
        if value is None or key in ("metric", "basis"):
            continue
        if key == "name":
            v = validate.text(value, field="name", max_len=100, required=True)
            assert v is not None
            other = conn.execute("SELECT id FROM plans WHERE name_key = ? AND id <> ?",
                                 (validate.name_key(v), p["id"])).fetchone()
            if other:
                raise Conflict(f"a plan named {v!r} already exists")
            sets["name"], sets["name_key"] = v, validate.name_key(v)
        elif key == "target":
            sets["target"] = parse_target(value, metric)
        elif key == "period":
            per = parse_period(value)
            sets["period_start"], sets["period_end"], sets["period_label"] = (
                per.start.isoformat(), per.end.isoformat(), per.label)
        elif key in ("start", "end"):
            continue  # handled below
        elif key == "scope":
            for dim, vals in value.items():
                if dim not in SCOPES:
                    raise ValidationError(f"unknown scope {dim!r}", "scope by " + ", ".join(SCOPES))
                if vals is None:
                    continue
                sets[f"scope_{dim}"] = _scope_values(conn, dim, vals)
        elif key == "strategy":
            sets["strategy"] = validate.text(value, field="strategy", max_len=4000)
        elif key == "marketing_channel":
            sets["marketing_channel"] = validate.text(value, field="marketing channel", max_len=100)
        elif key == "budget":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValidationError("the budget must be an amount of zero or more")
            sets["budget"] = value
        elif key == "distribution":
            sets["distribution"] = _choice(value, DISTRIBUTIONS, "distribution")
        elif key == "split":
            sets["split"] = _choice(value, SPLITS, "split")
        else:
            raise ValidationError(f"cannot edit {key!r}")
    if changes.get("start") is not None or changes.get("end") is not None:
        if changes.get("period") is not None:
            raise ValidationError("give a period or --from/--to dates, not both")
        per = parse_period(None, start=changes.get("start") or p["period_start"],
                           end=changes.get("end") or p["period_end"])
        sets["period_start"], sets["period_end"], sets["period_label"] = (
            per.start.isoformat(), per.end.isoformat(), None)
    ws = _parse_weights(weights) if weights is not None else None
    if ws is not None:
        sets.setdefault("distribution", "weights")
    new = {**p, **sets}
    if ws is not None and new["distribution"] != "weights":
        raise ValidationError("--weights goes with --distribute weights")
    if new["distribution"] != "none" and not new["split"]:
        days = (date.fromisoformat(new["period_end"]) - date.fromisoformat(new["period_start"])).days + 1
        sets["split"] = new["split"] = "week" if days <= 31 else "month"
    if new["distribution"] == "weights" and ws is None:
        ws = [Decimal(t["weight"]) for t in targets(conn, p["id"])] if p["distribution"] == "weights" else None
    if sets:
        sets["updated_at"] = db.now_iso()
        assignments = ", ".join(f"{k} = ?" for k in sets)  # keys from the code above only
        conn.execute(f"UPDATE plans SET {assignments} WHERE id = ?", [*sets.values(), p["id"]])
    if sets or ws is not None:
        _distribute(conn, get(conn, p["id"]), ws)
        db.audit(conn, "update", "plan", p["id"])
    return get(conn, p["id"])


def delete(conn: sqlite3.Connection, ref: int | str) -> dict[str, Any]:
    """Delete a plan with its sub-period targets and spending."""
    _require_tx(conn, "delete")
    p = get(conn, ref)
    conn.execute("DELETE FROM plans WHERE id = ?", (p["id"],))
    db.audit(conn, "delete", "plan", p["id"])
    return p


def spend(conn: sqlite3.Connection, ref: int | str, amount: int, *, note: str | None = None,
          on: str | date | None = None) -> int:
    """Record spending of ``amount`` cents against the plan's budget."""
    _require_tx(conn, "spend")
    p = get(conn, ref)
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValidationError("the amount must be in cents")
    if amount <= 0:
        raise ValidationError("the amount spent must be more than zero")
    day = validate.parse_date(on, field="date").isoformat() if on else date.today().isoformat()
    cur = conn.execute(
        "INSERT INTO plan_spend (plan_id, spent_on, amount_cents, note, os_user, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (p["id"], day, amount, validate.text(note, field="note", max_len=500), db.os_user(), db.now_iso()),
    )
    db.audit(conn, "create", "plan_spend", cur.lastrowid)
    return int(cur.lastrowid or 0)


def list_plans(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT p.*, (SELECT coalesce(sum(amount_cents), 0) FROM plan_spend s WHERE s.plan_id = p.id) AS spent"
        " FROM plans p ORDER BY p.period_start, p.name_key").fetchall()
    return [dict(r) for r in rows]


def scope_text(plan: dict[str, Any]) -> str:
    parts = [f"{d}={plan[f'scope_{d}']}" for d in SCOPES if plan.get(f"scope_{d}")]
    return "; ".join(parts) or "all sales"


# --------------------------------------------------------------------------- status


def _pct(part: int | Decimal, whole: int | Decimal) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def _round(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _elapsed(start: date, end: date, today: date) -> int:
    """Whole days of [start, end] before ``today``."""
    total = (end - start).days + 1
    return max(0, min(total, (today - start).days))


def _state(achieved: int, target: int, expected: int, start: date, end: date, today: date) -> str:
    if today < start:
        return "not started"
    if today > end:
        return "achieved" if achieved >= target else "missed"
    if achieved >= target:
        return "achieved"
    if achieved > expected:
        return "ahead"
    if achieved == expected:
        return "on track"
    return "behind"


def status(conn: sqlite3.Connection, ref: int | str | dict[str, Any], *, today: date | None = None) -> dict[str, Any]:
    """Live attainment of one plan.  Values are the metric's own unit: cents
    for revenue, counts otherwise (``needed_per_day`` a Decimal: whole cents
    for revenue, tenths for counts)."""
    p = ref if isinstance(ref, dict) else get(conn, ref)
    today = today or date.today()
    start, end = date.fromisoformat(p["period_start"]), date.fromisoformat(p["period_end"])
    total_days = (end - start).days + 1
    elapsed = _elapsed(start, end, today)
    left = total_days - elapsed
    achieved = measure(conn, p, start, end)
    target = p["target"]
    subs = []
    expected = Decimal(0)
    for t in targets(conn, p["id"]):
        s, e = date.fromisoformat(t["period_start"]), date.fromisoformat(t["period_end"])
        got = measure(conn, p, s, e)
        el = _elapsed(s, e, today)
        days = (e - s).days + 1
        exp_part = Decimal(t["target"]) * el / days
        expected += exp_part
        subs.append({
            "seq": t["seq"], "period_start": t["period_start"], "period_end": t["period_end"],
            "weight": Decimal(t["weight"]), "target": t["target"], "achieved": got, "variance": got - t["target"],
            "attainment_pct": _pct(got, t["target"]), "elapsed_pct": _pct(el, days),
            "state": _state(got, t["target"], _round(exp_part), s, e, today),
        })
    if not subs:
        expected = Decimal(target) * elapsed / total_days
    projected = _round(Decimal(achieved) * total_days / elapsed) if elapsed else None
    if left > 0:
        need = Decimal(max(0, target - achieved)) / left
        needed = need.quantize(Decimal(1) if p["metric"] == "revenue" else Decimal("0.1"), rounding=ROUND_HALF_UP)
    else:
        needed = None
    spent = conn.execute("SELECT coalesce(sum(amount_cents), 0) FROM plan_spend WHERE plan_id = ?",
                         (p["id"],)).fetchone()[0]
    if p["metric"] == "revenue":
        revenue = achieved
    elif p["basis"] == "collected":  # pragma: no cover - refused on save
        revenue = achieved
    else:
        revenue = measure(conn, p, start, end, metric="revenue")
    per_budget = (Decimal(revenue) / Decimal(spent)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) \
        if spent else None
    return {
        "id": p["id"], "name": p["name"], "metric": p["metric"], "basis": p["basis"],
        "period_start": p["period_start"], "period_end": p["period_end"], "period_label": p["period_label"],
        "scope": scope_text(p), "target": target, "achieved": achieved, "variance": achieved - target,
        "attainment_pct": _pct(achieved, target), "days_total": total_days, "days_elapsed": elapsed,
        "days_left": left, "elapsed_pct": _pct(elapsed, total_days), "expected": _round(expected),
        "state": _state(achieved, target, _round(expected), start, end, today),
        "projected": projected, "projected_pct": _pct(projected, target) if projected is not None else None,
        "needed_per_day": needed, "budget": p["budget"], "spent": spent,
        "budget_left": (p["budget"] - spent) if p["budget"] is not None else None,
        "revenue": revenue, "revenue_per_budget": per_budget, "strategy": p["strategy"],
        "marketing_channel": p["marketing_channel"], "subperiods": subs,
    }


def status_all(conn: sqlite3.Connection, *, today: date | None = None, current_only: bool = False) -> list[dict[str, Any]]:
    """``status`` of every plan (or only those whose period contains ``today``),
    by period start then name.  For ``report plans`` and the dashboard."""
    today = today or date.today()
    sql = "SELECT * FROM plans"
    params: list[Any] = []
    if current_only:
        sql += " WHERE period_start <= ? AND period_end >= ?"
        params = [today.isoformat(), today.isoformat()]
    sql += " ORDER BY period_start, name_key"
    return [status(conn, dict(r), today=today) for r in conn.execute(sql, params).fetchall()]


def fmt_value(value: int | Decimal | None, metric: str) -> str:
    """A metric value for people: money for revenue, a count otherwise."""
    if value is None:
        return "-"
    if metric == "revenue":
        if isinstance(value, Decimal):
            value = _round(value)
        return money.fmt_human(int(value))
    if isinstance(value, Decimal) and value != value.to_integral_value():
        return f"{value:,}"
    return f"{int(value):,}"


def short_line(s: dict[str, Any]) -> str:
    """One line for a shell prompt or a cron e-mail."""
    m = s["metric"]
    unit = "" if m == "revenue" else f" {m.replace('_', ' ')}"
    att = f"{s['attainment_pct']}%" if s["attainment_pct"] is not None else "-"
    text = (f"{s['name']}: {fmt_value(s['achieved'], m)} of {fmt_value(s['target'], m)}{unit} ({att}),"
            f" {s['state']}, elapsed {s['elapsed_pct']}%")
    if s["projected"] is not None and s["days_left"] > 0:
        text += f", projected {fmt_value(s['projected'], m)}"
    if s["needed_per_day"] is not None and s["achieved"] < s["target"]:
        text += f", need {fmt_value(s['needed_per_day'], m)}/day"
    return text
