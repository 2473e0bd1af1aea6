"""``report stats``: the distribution of one field over booked orders or
lines: count, sum, mean, median, p25, p75, p90, min and max (naming the
order and customer that hold them) and the standard deviation, overall or
per group.  No Typer, no Rich.

Fields: ``order_value`` (an order's booked revenue), ``line_value`` (a
line's), ``quantity`` (a line's kept units) and ``margin`` (an order's
revenue less the cost of its kept units).  Percentiles interpolate
linearly between the two nearest ranks (Excel's PERCENTILE.INC, numpy's
default); money percentiles and means are rounded half-up to the cent; the
standard deviation is the sample one (n - 1).

The values are computed in SQL (an order's value from the per-order
summary, a line's from the per-line one, when they are current: see
``salescrm.salesfacts``).  Over all history the values are read in order
off an index, grouped by distinct value as they stream (prices repeat).  By
period, each period's values come back in one row (no sort in SQL) and are
sorted here; a period too long to hold as a list is grouped by value in SQL
instead.  By customer over all history, filtered by nothing but the
customers themselves (their ids, their region), each customer's figures are
read as kept (``sales_customer_figures``, m0009: ``salescrm.salesfacts``
recomputes a customer's with ``customer_figures`` whenever its orders
change).  Otherwise by customer, each customer's values come in one text
row off an index in customer order (a line's in value order, m0008).  A
line field by product or category streams each product's distinct (units,
value) off their index.  Otherwise SQL groups by group and distinct value,
each with its count and the first and last order and line holding it.
Then, in value order and exact integer arithmetic: count, sum and sum of
squares, the values at the percentile ranks, the standard deviation by an
integer square root, and the extremes (ties: the lowest order and line for
the minimum, the highest for the maximum).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from datetime import date
from decimal import Decimal
from functools import lru_cache
from math import isqrt
from operator import mul
from typing import Any

from salescrm.errors import UsageError
from salescrm.output import Col
from salescrm.reports.common import (
    BOOKED_SQL,
    PERIODS,
    Filters,
    Range,
    Report,
    Spec,
    bucket_label,
    bucket_sql,
    customer_names,
    filter_sql,
    line_revenue_sql,
    lookup,
    order_revenue_sql,
    parse_sort,
    period_windows,
    snapshot,
    sort_rows,
)

FIELDS = ("order_value", "line_value", "quantity", "margin")
GROUPS = (*PERIODS, "customer", "channel", "region", "salesperson", "category", "product")
PERCENTILES = (("p25", 25), ("median", 50), ("p75", 75), ("p90", 90))
_LINE_FIELDS = ("line_value", "quantity")


#: An (order, line) key: the order shifted past this many bits of line number.
_LINE_BITS = 20


def _key_sql(order: str, line: str) -> str:
    """An (order, line) as one sortable integer, for the extremes: decoded
    by ``_unkey`` (or ``_key_order_sql`` in SQL)."""
    return f"({order} * {1 << _LINE_BITS} + {line})"


def _key_order_sql(key: str) -> str:
    return f"({key} >> {_LINE_BITS})"


def _unkey(k: int) -> tuple[int, int]:
    return k >> _LINE_BITS, k & ((1 << _LINE_BITS) - 1)


def _where_and_group(spec: Spec, by: str | None, *, o: str, day: str,
                     region_of_customer: bool = False) -> tuple[list[str], list[Any], str]:
    """The filters and date range as WHERE terms, and the SQL of the group
    key (orders or the per-order summary as ``o``, its date column ``day``)."""
    where, params = filter_sql(spec.filters, o=o, region_of_customer=region_of_customer)
    rng = spec.range
    where.append(f"{day} >= ?")
    params.append(rng.start.isoformat() if rng.start else "")
    if rng.end:
        where.append(f"{day} <= ?")
        params.append(rng.end.isoformat())
    if by is None:
        group = "NULL"
    elif by in PERIODS:
        group = bucket_sql(day, by)
    else:
        group = {"customer": f"{o}.customer_id", "channel": f"{o}.channel", "region": "c.region",
                 "salesperson": f"{o}.salesperson", "category": "p.category", "product": "l.product_id"}[by]
    return where, params, group


def _order_where(spec: Spec, by: str | None, *, every_order: bool = False) -> tuple[list[str], list[Any], str]:
    """``_where_and_group`` over the per-order summary ``s``; a category
    filter keeps the orders with a kept line of the category (their part of
    the per-product summary): probed per order, or, for a query that reads
    every order (``every_order``) in an order unrelated to theirs, listed
    once (IN: one pass over the parts instead of a million random probes)."""
    cats = spec.filters.category
    spec = Spec(spec.basis, spec.range, dataclasses.replace(spec.filters, category=[]))
    where, params, group = _where_and_group(spec, by, o="s", day="s.day", region_of_customer=True)
    if cats:
        marks = ", ".join("?" * len(cats))
        where.append(f"s.order_id IN (SELECT op.order_id FROM sales_order_products op WHERE op.units > 0"
                     f" AND op.category IN ({marks}))" if every_order else
                     "EXISTS (SELECT 1 FROM sales_order_products op WHERE op.order_id = s.order_id"
                     f" AND op.units > 0 AND op.category IN ({marks}))")
        params += [c or "" for c in cats]
    return where, params, group


def _summary_facts(spec: Spec, field: str, by: str | None) -> tuple[str, list[Any]]:
    """The values from the summaries: an order's from ``sales_orders`` (its
    days in order), a line's from ``sales_lines`` (a range of days; a line
    carries its order's customer, channel and salesperson since m0008)."""
    if field not in _LINE_FIELDS:
        where, params, group = _order_where(spec, by)
        join = " JOIN customers c ON c.id = s.customer_id" if by == "region" else ""
        value = "s.revenue" if field == "order_value" else "(s.revenue - s.cost)"
        return (f"SELECT coalesce({group}, x'00') AS g, {value} AS v, s.order_id AS oid, NULL AS line_no"
                f" FROM sales_orders s INDEXED BY sales_orders_day{join} WHERE " + " AND ".join(where), params)
    f = spec.filters
    # (a line carries its order's customer, channel and salesperson: no order is joined)
    where, params, group = _where_and_group(spec, by, o="l", day="l.day", region_of_customer=True)
    join = " JOIN customers c ON c.id = l.customer_id" if by == "region" else ""
    join += " JOIN products p ON p.id = l.product_id" if by == "category" or f.category else ""
    currency = [] if f.currency else ["l.currency >= ''"]  # (the key's first column: a range of days per currency)
    value = "l.value" if field == "line_value" else "l.qty"
    return (f"SELECT coalesce({group}, x'00') AS g, {value} AS v, l.order_id AS oid, l.line_no AS line_no"
            # (walked as stored, by currency and day: an index led by currency, such as the one by product,
            # looks cheaper to the planner but reads the lines in no useful order)
            f" FROM sales_lines l INDEXED BY sqlite_autoindex_sales_lines_1{join} WHERE "
            + " AND ".join(currency + where), params)


def _facts(spec: Spec, field: str, by: str | None) -> tuple[str, list[Any]]:
    per_line = field in _LINE_FIELDS
    if by in ("category", "product") and not per_line:
        raise UsageError(f"{field} belongs to a whole order: it cannot be split by {by}",
                         "use --field line_value or quantity")
    where, params, group = _where_and_group(spec, by, o="o", day="o.order_date")
    need_c = by == "region" or bool(spec.filters.region)
    need_p = by == "category" or bool(spec.filters.category)
    if field == "order_value":
        value, ident = order_revenue_sql(), "NULL"
    elif field == "margin":
        value = (f"({order_revenue_sql()} - (SELECT coalesce(sum((x.qty - x.returned_qty) * x.unit_cost), 0)"
                 f" FROM order_lines x WHERE x.order_id = o.id))")
        ident = "NULL"
    elif field == "line_value":
        value, ident = line_revenue_sql(), "l.line_no"
    else:
        value, ident = "(l.qty - l.returned_qty)", "l.line_no"
    frm = "orders o" + (" JOIN order_lines l ON l.order_id = o.id" if per_line else "")
    frm += " JOIN customers c ON c.id = o.customer_id" if need_c else ""
    frm += " JOIN products p ON p.id = l.product_id" if need_p and per_line else ""
    cond = " AND l.qty > l.returned_qty" if per_line else ""
    sql = (f"SELECT coalesce({group}, x'00') AS g, {value} AS v, o.id AS oid, {ident} AS line_no"
           f" FROM {frm} WHERE +o.status IN ({BOOKED_SQL}){cond} AND " + " AND ".join(where))
    return sql, params


def _value_rows(conn: sqlite3.Connection, spec: Spec, field: str, by: str | None, key: str) -> Iterator[tuple]:
    """(group, value, count, first key, last key) in group and value order."""
    from salescrm import salesfacts

    f, rng = spec.filters, spec.range
    if (field != "margin" and by is None and f.currency and not (f.category or f.by_order or rng.start or rng.end)
            and salesfacts.ready(conn)):
        # all history: every value in value order off its index, grouped as it streams (no sort)
        yield from ((b"\x00", *r) for r in _indexed_values(conn, field, f.currency))
        return
    facts, params = _filter_params(conn, spec, field, by)
    yield from conn.execute(f"SELECT g, v, count(*), min({key}), max({key}) FROM ({facts}) GROUP BY g, v"
                            f" ORDER BY g, v", params)


#: field -> (summary table, column, index of the currency and the column's values, line number)
_VALUE_INDEX = {"order_value": ("sales_orders", "revenue", "sales_orders_value", "0"),
                "line_value": ("sales_lines", "value", "sales_lines_value", "line_no"),
                "quantity": ("sales_lines", "qty", "sales_lines_qty", "line_no")}


def _indexed_values(conn: sqlite3.Connection, field: str, currency: str, lo: date | None = None,
                    hi: date | None = None) -> Iterator[tuple]:
    """(value, count, first key, last key) in value order, off the summary's
    index of the field's values (no sort), optionally within a range of days
    (the line indexes' entries hold the day)."""
    table, col, index, line = _VALUE_INDEX[field]
    k = _key_sql("order_id", line)
    days = " AND day >= ? AND day <= ?" if lo and hi else ""
    return conn.execute(f"SELECT {col}, count(*), min({k}), max({k}) FROM {table} INDEXED BY {index}"
                        f" WHERE currency = ?{days} GROUP BY {col} ORDER BY {col}",
                        (currency, *((lo.isoformat(), hi.isoformat()) if lo and hi else ())))


def _line_holding(conn: sqlite3.Connection, field: str, currency: str, value: int, lo: date, hi: date,
                  which: str) -> int:
    """The lowest (``min``) or highest (``max``) key of the lines of the
    days holding a line field's value: a seek into the value's index."""
    table, col, index, line = _VALUE_INDEX[field]
    return conn.execute(f"SELECT {which}({_key_sql('order_id', line)}) FROM {table} INDEXED BY {index}"
                        f" WHERE currency = ? AND {col} = ? AND day >= ? AND day <= ?",
                        (currency, value, lo.isoformat(), hi.isoformat())).fetchone()[0]


def _quantity_by_period(conn: sqlite3.Connection, spec: Spec, by: str) -> Iterator[tuple]:
    """Units per line by period in one currency, in one pass over the index
    of units (``sales_lines_qty``): its entries come in (units, day) order,
    so the lines per units and day are counted as they stream (a few
    thousand rows for three million lines) and added up per period here."""
    windows = period_windows(conn, spec.range, by)
    if not windows:
        return
    cur = spec.filters.currency
    starts = [lo for _, lo, _ in windows]
    counts: list[dict[int, int]] = [{} for _ in windows]
    for qty, day, n in conn.execute(
            "SELECT qty, day, count(*) FROM sales_lines INDEXED BY sales_lines_qty WHERE currency = ?"
            " AND day >= ? AND day <= ? GROUP BY qty, day",
            (cur, windows[0][1].isoformat(), windows[-1][2].isoformat())):
        got = counts[bisect_right(starts, date.fromisoformat(day)) - 1]
        got[qty] = got.get(qty, 0) + n
    for (start, lo, hi), got in zip(windows, counts):
        if got:
            values = sorted(got)
            yield (start.isoformat(), array("q", values), array("q", (got[v] for v in values)),
                   _line_holding(conn, "quantity", cur, values[0], lo, hi, "min"),
                   _line_holding(conn, "quantity", cur, values[-1], lo, hi, "max"))


def _distributions(conn: sqlite3.Connection, spec: Spec, field: str, by: str | None,
                   key: str, every: bool = True) -> Iterator[tuple]:
    """Each group's values in order, one group at a time: (group, values,
    counts, first key, last key), where ``values`` are distinct with their
    ``counts``, or every value (``counts`` None); the keys are the (order,
    line) holding the minimum (the lowest such) and the maximum (the highest),
    or None for ``stats`` to find for the groups it shows (by customer; when
    not ``every`` group is shown, or for a line's value).

    From the summaries: units per line by period in one currency off their
    index (``_quantity_by_period``); by period (and an order field over a
    whole range, one period) each period's values are read as a list
    (``_listed``), or a long period's grouped by value in SQL; by customer,
    one text row per customer (``_by_customer``); a line field by product or
    category off its index per product (``_by_product``).  Otherwise SQL
    groups by distinct value (prices repeat) in group and value order, off
    the value index over all history (``_indexed_values``)."""
    from salescrm import salesfacts

    f, rng = spec.filters, spec.range
    # an order field over all of a range is one period (unless its values stream off their index)
    one = by is None and (field == "margin" or (field == "order_value" and bool(
        rng.start or rng.end or f.by_order or f.category)))
    line_only = f.currency and not (f.by_order or f.category)
    if by in PERIODS and field == "quantity" and line_only and salesfacts.ready(conn):
        yield from _quantity_by_period(conn, spec, by)
        return
    if (by in PERIODS or one) and salesfacts.ready(conn):
        # what bounds the values of a day: its orders, or for lines its kept units (a line keeps one or more)
        size = "units" if field in _LINE_FIELDS else "orders"
        cur = f.currency
        for start, lo, hi in period_windows(conn, spec.range, by):
            label = None if one else start.isoformat()
            days = [(date.fromisoformat(d), n) for d, n in conn.execute(
                f"SELECT day, sum({size}) FROM sales_days WHERE day >= ? AND day <= ?"
                + (" AND currency = ?" if cur else "") + " GROUP BY day",
                (lo.isoformat(), hi.isoformat(), *([cur] if cur else [])))]
            if sum(n for _, n in days) <= _LISTED:
                got = _listed(conn, spec, field, key, days, bool(line_only and field in _LINE_FIELDS))
                if got:
                    yield label, *got
                continue
            # a long period: grouped by value in SQL (memory bounded by the distinct values); a line's
            # value or units in the currency alone: off their index as it streams (its entries hold the day)
            if field in _LINE_FIELDS and line_only:
                rows = list(_indexed_values(conn, field, f.currency, lo, hi))
            else:
                facts, params = _summary_facts(Spec(spec.basis, Range(lo, hi), f), field, None)
                rows = conn.execute(f"SELECT v, count(*), min({key}), max({key}) FROM ({facts})"
                                    f" GROUP BY v ORDER BY v", params).fetchall()
            if rows:
                values, counts = array("q", (r[0] for r in rows)), array("q", (r[1] for r in rows))
                yield label, values, counts, rows[0][2], rows[-1][3]
        return
    if by == "customer" and f.currency and salesfacts.ready(conn):
        yield from _by_customer(conn, spec, field, every)
        return
    if (by in ("product", "category") and field in _LINE_FIELDS and f.currency and not f.by_order
            and salesfacts.ready(conn)):
        yield from _by_product(conn, spec, field, by)
        return
    current: Any = _NOTHING
    values = counts = array("q")
    k_lo = k_hi = 0
    for g, v, n_v, lo_k, hi_k in _value_rows(conn, spec, field, by, key):
        if g != current:
            if current is not _NOTHING:
                yield current, values, counts, k_lo, k_hi
            current, values, counts, k_lo = g, array("q"), array("q"), lo_k
        values.append(v)
        counts.append(n_v)
        k_hi = hi_k
    if current is not _NOTHING:
        yield current, values, counts, k_lo, k_hi


_NOTHING = object()
#: A period with at most this many values (bounded by its days' orders, or
#: kept units for lines) is read as a list: about 50 bytes a value while it
#: is sorted.  A longer one is grouped by value in SQL.
_LISTED = 1_000_000
#: ... in pieces of days of at most this many values (each read as one text
#: row: about 130 bytes a value while it is split)
_PIECE = 100_000


class _Values(list):
    """A group's values in order, with the sum of their squares when SQL
    could add it up exactly (None: ``_figures`` does)."""

    sumsq: int | None = None


def _ints(text: str) -> list[int]:
    """'12,-3,40' -> [12, -3, 40]: SQL's text of integers read by the JSON
    parser, in C (about three times quicker than int() on each piece)."""
    return json.loads("[" + text + "]")


def _exact(total: Any) -> int | None:
    """A sum of squares from SQL if it is exact: an integer (a square past
    the 64-bit range turns into a float, and so does their sum)."""
    return total if type(total) is int else None


def _parse(vs: str, ks: str) -> tuple[list[int], tuple[tuple[int, int], tuple[int, int]]]:
    """Values and their keys as read in one text row each: the values, and
    (value, key) of the minimum (its lowest key) and of the maximum (its
    highest key).  Only the extremes' keys are converted."""
    values, keys = _ints(vs), ks.split(",")
    ends = []
    for v, pick in ((min(values), min), (max(values), max)):
        if values.count(v) == 1:
            ends.append((v, int(keys[values.index(v)])))
        else:
            ends.append((v, pick(int(k) for x, k in zip(values, keys) if x == v)))
    return values, (ends[0], ends[1])


def _by_customer(conn: sqlite3.Connection, spec: Spec, field: str, every: bool = True) -> Iterator[tuple]:
    """A field per customer, each customer's values in one text row (no row
    per value reaches Python): an order field walks the per-order summary in
    customer order (its index), a line field the lines' index by customer
    (``sales_lines_customer``: in value order, with what the filters need).

    The extremes' keys, when ``every`` customer is to be shown: an order
    field's or the units' come packed with their values in the same pass
    (value * 2^b + key: the smallest is the minimum's lowest key, the
    largest the maximum's highest), cheaper than reading each customer's
    entries again.  Otherwise they are None, for ``_customer_extremes`` to
    find for the customers shown: a line's value (one seek each, its index
    being in value order), only the first customers shown (``--limit``),
    or a value too large to pack (a float comes back)."""
    frm, where, params, c, v, k = _customer_values(spec, field)
    width, ends = 0, ", NULL, NULL"
    if every and field != "line_value":
        # (keys below 2^b: the largest order id's key and any line number)
        width = 1 << ((conn.execute("SELECT coalesce(max(id), 0) FROM orders").fetchone()[0] + 1)
                      << _LINE_BITS).bit_length()
        ends = f", min({v} * {width} + {k}), max({v} * {width} + {k})"
    # (all rows fetched first, a few MB of text: stepping SQLite between the customers' parsing and figures
    # took 0.3-0.9 s more of about 3 on the benchmark's order values, measured)
    for cid, vs, lo, hi in conn.execute(f"SELECT {c}, group_concat({v}){ends} FROM {frm} WHERE {where}"
                                        f" GROUP BY {c}", params).fetchall():
        values = _ints(vs)
        values.sort()  # (a line's values come in order already: then one pass)
        if type(lo) is int and type(hi) is int:
            yield cid, values, None, lo % width, hi % width
        else:
            yield cid, values, None, None, None


def _line_days(rng: Range, where: list[str], params: list[Any]) -> None:
    """The range's days as terms on the summary lines ``l`` (added to
    ``where`` and ``params``)."""
    if rng.start:
        where.append("l.day >= ?")
        params.append(rng.start.isoformat())
    if rng.end:
        where.append("l.day <= ?")
        params.append(rng.end.isoformat())


def _customer_values(spec: Spec, field: str, probe: bool = False) -> tuple[str, str, list[Any], str, str, str]:
    """Where ``_by_customer`` reads: FROM, WHERE and its parameters, the
    customer column, the value and the (order, line) key.  ``probe``: for a few entries of one
    customer at a time (``_customer_extremes``): the customer and region
    filters are left out (the customers were found under them) and a
    category is tested per entry, not listed (a list inside a correlated
    subquery would be made again for every customer)."""
    if probe:
        spec = Spec(spec.basis, spec.range, dataclasses.replace(spec.filters, customer=[], region=[]))
    f, rng = spec.filters, spec.range
    if field in _LINE_FIELDS:
        where, params = filter_sql(dataclasses.replace(f, category=[]), o="l", region_of_customer=True)
        _line_days(rng, where, params)
        if f.category:
            cats, more = filter_sql(Filters(category=f.category), p="p")
            where.append((f"EXISTS (SELECT 1 FROM products p WHERE p.id = l.product_id AND {' AND '.join(cats)})"
                          if probe else f"l.product_id IN (SELECT p.id FROM products p WHERE {' AND '.join(cats)})"))
            params += more
        return ("sales_lines l INDEXED BY sales_lines_customer", " AND ".join(where), params, "l.customer_id",
                "l.value" if field == "line_value" else "l.qty", _key_sql("l.order_id", "l.line_no"))
    where, params, _ = _order_where(spec, None, every_order=not probe)
    return ("sales_orders s INDEXED BY sales_orders_customer", " AND ".join(where), params, "s.customer_id",
            "s.revenue" if field == "order_value" else "(s.revenue - s.cost)", _key_sql("s.order_id", "0"))


def _customer_extremes(conn: sqlite3.Connection, spec: Spec, field: str,
                       wanted: list[tuple[int, int, int]]) -> list[tuple[int, int, str, str]]:
    """For each (customer, minimum, maximum) of ``_by_customer``, the keys
    of the lowest (order, line) holding the minimum and the highest holding
    the maximum, under the same filters, and their orders' numbers: a few
    index entries per customer, all in one statement (the customers and
    values passed as JSON)."""
    frm, where, params, c, v, k = _customer_values(spec, field, probe=True)
    ends = [f"(SELECT {pick}({k}) FROM {frm} WHERE {where} AND {c} = j.c AND {v} = j.{end})"
            for pick, end in (("min", "lo"), ("max", "hi"))]
    # (MATERIALIZED: each (customer, minimum, maximum) read out of its JSON once, not at each entry compared;
    # each key found once, then its order's number)
    return conn.execute(f"WITH j AS MATERIALIZED (SELECT key, json_extract(value, '$[0]') AS c,"
                        " json_extract(value, '$[1]') AS lo, json_extract(value, '$[2]') AS hi FROM json_each(?)),"
                        f" x AS MATERIALIZED (SELECT j.key, {ends[0]} AS lo, {ends[1]} AS hi FROM j)"
                        f" SELECT lo, hi, (SELECT number FROM orders WHERE id = {_key_order_sql('lo')}),"
                        f" (SELECT number FROM orders WHERE id = {_key_order_sql('hi')}) FROM x ORDER BY key",
                        [json.dumps(wanted), *params, *params]).fetchall()


#: ``sales_customer_figures``' figures (m0009), after (customer, currency, field)
_KEPT = ("count", "sum", "mean", "median", "p25", "p75", "p90", "stdev")
_INT64 = 1 << 63
#: A customer with more booked orders than this in a currency has its figures
#: computed by the report, not kept: each write would recompute them all.
KEEP_ORDERS = 1_000
#: More customers than this not kept: the report computes every customer's figures.
_FRESH_AT = 10_000


def customer_figures(conn: sqlite3.Connection,
                     customers: Iterable[int] | None = None) -> Iterator[tuple[str, str, list[tuple]]]:
    """The rows of ``sales_customer_figures`` (m0009) as computed afresh from
    the summaries, for every customer (``customers`` None) or these ones,
    over all history, a currency and field at a time: (currency, field,
    rows), each row (customer, currency, field, *figures as integers, min,
    its key, its order's number, max, its key, its order's number).  The
    same ``_by_customer`` and ``_customer_extremes`` as the report, so the
    kept figures are those it would compute.  A customer with more than
    ``KEEP_ORDERS`` orders, or whose figures do not fit in 64 bits, has
    its key and nothing else: the report computes its figures afresh.
    Needs the other summaries current."""
    ids = None if customers is None else sorted(set(customers))
    if ids == []:
        return
    some = "" if ids is None else " AND customer_id IN (SELECT value FROM json_each(?))"
    found: dict[str, set[int]] = {}  # currency -> its customers with too many orders to keep
    for cid, currency, n in conn.execute(f"SELECT customer_id, currency, orders FROM sales_customers WHERE 1{some}",
                                         [] if ids is None else [json.dumps(ids)]):
        found.setdefault(currency, set())
        if n > KEEP_ORDERS:
            found[currency].add(cid)
    nothing = (None,) * (len(_KEPT) + 6)  # (the figures, then min, its key and number, max, its key and number)
    for currency, big in sorted(found.items()):
        wanted = None if ids is None else [i for i in ids if i not in big]
        for field in FIELDS:
            out: list[list] = []
            late: list[list] = []
            spec = Spec("booked", Range(), Filters(customer=wanted or [], currency=currency))
            for cid, values, _, lo, hi in _by_customer(conn, spec, field) if wanted != [] else ():
                if cid in big:
                    continue
                f = _int_figures(values, None, field != "quantity")
                row = [cid, currency, field, *(f[k] for k in _KEPT), values[0], lo, None, values[-1], hi, None]
                out.append(row)
                if lo is None:
                    late.append(row)
            if late:  # (a line's value: its keys found by seeks, as for the report)
                for row, ends in zip(late, _customer_extremes(conn, spec, field, [(r[0], r[11], r[14]) for r in late])):
                    row[12], row[15], row[13], row[16] = ends  # (keys, then numbers)
            numbers = lookup(conn, "orders", "number",
                             {_unkey(r[k])[0] for r in out if r[13] is None for k in (12, 15)})
            for i, row in enumerate(out):
                if any(type(x) is int and not -_INT64 <= x < _INT64 for x in row[3:]):
                    out[i] = [*row[:3], *nothing]
                elif row[13] is None:
                    row[13], row[16] = numbers[_unkey(row[12])[0]], numbers[_unkey(row[15])[0]]
            out += ([cid, currency, field, *nothing] for cid in big)
            yield currency, field, list(map(tuple, out))


def _kept_by_customer(conn: sqlite3.Connection, spec: Spec, field: str) -> list[dict[str, Any]] | None:
    """Each customer's row of figures as kept (``sales_customer_figures``,
    m0009), labelled and with its extremes' orders named as ``_stats`` does,
    when the report asks for all history filtered by nothing but its
    currency and the customers themselves (their ids, their region); else
    None.  A customer whose figures are not kept (too many orders, a figure
    past 64 bits) has them computed here, from its values."""
    from salescrm import salesfacts

    f = spec.filters
    if (not f.currency or f.channel or f.salesperson or f.category or spec.range.start or spec.range.end
            or not salesfacts.figures_ready(conn)):
        return None
    where, params = filter_sql(Filters(customer=f.customer, region=f.region), o="k", region_of_customer=True)
    line = (1 << _LINE_BITS) - 1
    # (in SQL, a few C calls a row: an order's number and line as _stats writes them, the customer's name,
    # the customer's id for a customer gone)
    ends = ", ".join(f"{end}, {end}_number || CASE WHEN {end}_key & {line} THEN ' line ' || ({end}_key & {line})"
                     " ELSE '' END" for end in ("min", "max"))
    got = conn.execute(f"SELECT coalesce(c.name, k.customer_id), {', '.join(_KEPT)}, {ends}, c.name, k.customer_id"
                       " FROM sales_customer_figures k LEFT JOIN customers c ON c.id = k.customer_id"
                       " WHERE " + " AND ".join(["k.currency = ?", "k.field = ?", *where])
                       + " ORDER BY k.customer_id", [f.currency, field, *params]).fetchall()
    names = ("group", *_KEPT, "min", "min_order", "max", "max_order", "min_customer")
    rows = [dict(zip(names, r)) for r in got if r[2] is not None]
    currency = f.currency if field != "quantity" else None
    for row in rows:
        row["max_customer"], row["currency"] = row["min_customer"], currency
        if currency is None:
            _hundredths(row)
    fresh = [r[-1] for r in got if r[2] is None]
    if len(fresh) > _FRESH_AT:
        return None  # (most figures not kept: all computed, without a list of customers that long)
    if fresh:
        rest = Spec(spec.basis, spec.range, Filters(customer=fresh, currency=f.currency))
        more, labels = _computed(conn, rest, field, "customer")
        ids = [r["_key"] for r in more]
        _name_extremes(conn, rest, field, "customer", more, labels)
        # in customer order, as computed (the sorts that follow keep the order of ties: namesakes, equal figures)
        merged = sorted(zip([r[-1] for r in got if r[2] is not None] + ids, rows + more), key=lambda t: t[0])
        rows = [row for _, row in merged]
    return rows


def _by_product(conn: sqlite3.Connection, spec: Spec, field: str, by: str) -> Iterator[tuple]:
    """A line field per product (or category: its products merged) off the
    index of each product's distinct (units, value) in order
    (``sales_lines_product``), each with its count, as it streams: no sort
    of every line.  Then a key lookup per group's extreme finds the lowest
    (order, line) holding the minimum and the highest holding the maximum.
    Only a line's own attributes may filter (currency, days, category)."""
    f, rng = spec.filters, spec.range
    where, params = ["l.currency = ?"], [f.currency]
    _line_days(rng, where, params)
    cats, more = filter_sql(dataclasses.replace(f, currency=None), p="p")
    cats = ["l.product_id IN (SELECT p.id FROM products p WHERE " + " AND ".join(cats) + ")"] if cats else []
    line_value = field == "line_value"
    cols = "l.product_id, l.qty" + (", l.value" if line_value else "")
    rows = conn.execute(f"SELECT {cols}, count(*) FROM sales_lines l INDEXED BY sales_lines_product WHERE "
                        + " AND ".join(where + cats) + f" GROUP BY {cols}", params + more)
    held = " AND ".join([*where, "l.product_id = ?", "l.qty = ?"] + (["l.value = ?"] if line_value else []))
    k = _key_sql("l.order_id", "l.line_no")

    def key(which: str, holders: list[tuple]) -> int:
        pick = min if which == "min" else max
        return pick(conn.execute(f"SELECT {which}({k}) FROM sales_lines l INDEXED BY sales_lines_product"
                                 f" WHERE {held}", (*params, *h)).fetchone()[0] for h in holders)

    def merged(g: Any, found: dict[int, list]) -> tuple:
        values = sorted(found)
        lo, hi = found[values[0]], found[values[-1]]
        return (g, array("q", values), array("q", (found[v][0] for v in values)), key("min", lo[1]),
                key("max", hi[1]))

    owner = dict(conn.execute("SELECT id, category FROM products")) if by == "category" else None
    groups: dict[Any, dict[int, list]] = {}  # group -> value -> [count, [(product, units[, value]) holding it]]
    last = _NOTHING
    for r in rows:
        g = r[0] if owner is None else owner.get(r[0])
        if owner is None and g != last and last is not _NOTHING:
            yield merged(last, groups.pop(last))
        last = g
        found = groups.setdefault(g, {}).setdefault(r[-2], [0, []])
        found[0] += r[-1]
        found[1].append(r[:-1])
    for g in sorted(groups, key=lambda g: (g is None, g)):
        yield merged(g, groups[g])


def _listed(conn: sqlite3.Connection, spec: Spec, field: str, key: str,
            days: list[tuple[date, int]], line_only: bool = False) -> tuple[Any, Any, int, int] | None:
    """One period's values in order (every value; counts None), with the
    (order, line) holding the minimum (the lowest such) and the maximum (the
    highest): read a piece of its days at a time, each piece's values (and
    keys) in one row (no sort in SQL, no row per value).  ``line_only``: a
    line field filtered by nothing but its currency, whose extremes' keys are
    two seeks into the index of its values instead.  (Tallying the values as
    text, to convert and sort only the distinct ones, was slower by week on
    the benchmark's data: a week's line values are about 40% distinct.)"""
    pieces: list[list[date]] = []
    size = 0
    for d, n in days:
        if not pieces or size + n > _PIECE:
            pieces.append([d, d])
            size = 0
        pieces[-1][1] = d
        size += n
    values = _Values()
    sumsq: int | None = 0  # (None once a piece's could not be added up in SQL)
    low = high = None  # (value, key)
    for first, last in pieces:
        facts, params = _summary_facts(Spec(spec.basis, Range(first, last), spec.filters), field, None)
        cols = "group_concat(v), " + ("NULL" if line_only else f"group_concat({key})")
        try:
            vs, ks, sq = conn.execute(f"SELECT {cols}, sum(v * v) FROM ({facts})", params).fetchone()
        except sqlite3.OperationalError as e:  # a sum of integer squares past 64 bits: added up here instead
            if "overflow" not in str(e):
                raise
            (vs, ks), sq = conn.execute(f"SELECT {cols} FROM ({facts})", params).fetchone(), None
        if vs is None:
            continue
        sq = _exact(sq)
        sumsq = None if sumsq is None or sq is None else sumsq + sq
        if line_only:
            values += _ints(vs)
            continue
        part, ends = _parse(vs, ks)
        del vs, ks
        low = ends[0] if low is None else min(low, ends[0])
        high = ends[1] if high is None else max(high, ends[1])
        values += part
        del part
    if not values:
        return None
    values.sort()
    values.sumsq = sumsq
    if line_only:
        lo, hi = days[0][0], days[-1][0]
        return (values, None, _line_holding(conn, field, spec.filters.currency, values[0], lo, hi, "min"),
                _line_holding(conn, field, spec.filters.currency, values[-1], lo, hi, "max"))
    assert low is not None and high is not None
    return values, None, low[1], high[1]


def _filter_params(conn: sqlite3.Connection, spec: Spec, field: str, by: str | None) -> tuple[str, list[Any]]:
    # Build the fact query; category filters on order fields become an EXISTS.
    from salescrm import salesfacts

    if (field in _LINE_FIELDS or by not in ("category", "product")) and salesfacts.ready(conn):
        return _summary_facts(spec, field, by)
    if spec.filters.category and field not in _LINE_FIELDS:
        cats = spec.filters.category
        sql, params = _facts(Spec(spec.basis, spec.range, dataclasses.replace(spec.filters, category=[])), field, by)
        exists = ("EXISTS (SELECT 1 FROM order_lines l2 JOIN products p2 ON p2.id = l2.product_id"
                  " WHERE l2.order_id = o.id AND l2.qty > l2.returned_qty AND p2.category IN ("
                  + ", ".join("?" * len(cats)) + "))")
        return sql + " AND " + exists, [*params, *cats]
    return _facts(spec, field, by)


def _half_up(a: int, b: int) -> int:
    """a / b (b > 0) rounded half away from zero, as ROUND_HALF_UP does."""
    q = (2 * abs(a) + b) // (2 * b)
    return q if a >= 0 else -q


@lru_cache(maxsize=1024)
def _ranks(n: int) -> tuple[tuple[str, int, int], ...]:
    """Each percentile of n values in order: (name, rank, part): part/100 of
    the way from the value at rank to the next (the same few n recur, group
    after group)."""
    return tuple((name, *divmod(p * (n - 1), 100)) for name, p in PERCENTILES)


def _figures(values: Any, counts: Any, money: bool) -> dict[str, Any]:
    """One group's count, sum, mean, percentiles and standard deviation from
    its values in order (distinct with their ``counts``, or every value when
    ``counts`` is None), in exact integer arithmetic: money rounded half-up
    to the cent, a quantity to 0.01."""
    row = _int_figures(values, counts, money)
    if not money:
        _hundredths(row)
    return row


#: The figures of a quantity kept as whole hundredths until shown.
_SCALED = ("mean", "p25", "median", "p75", "p90", "stdev")


def _hundredths(row: dict[str, Any]) -> None:
    for k in _SCALED:
        if row[k] is not None:
            row[k] = Decimal(row[k]).scaleb(-2)


def _int_figures(values: Any, counts: Any, money: bool) -> dict[str, Any]:
    """``_figures`` as integers: a quantity's mean, percentiles and standard
    deviation in hundredths."""
    if counts is None:
        n, total = len(values), sum(values)
        sumsq = getattr(values, "sumsq", None)
        if sumsq is None:
            sumsq = sum(map(mul, values, values))

        at = values.__getitem__
    else:
        n, total = sum(counts), sum(map(mul, values, counts))
        sumsq = sum(map(mul, map(mul, values, values), counts))
        ranks = sorted({r for _, p in PERCENTILES for r in ((n - 1) * p // 100, min((n - 1) * p // 100 + 1, n - 1))})
        found: dict[int, int] = {}
        seen = i = 0
        for v, c in zip(values, counts):
            seen += c
            while i < len(ranks) and ranks[i] < seen:
                found[ranks[i]] = v
                i += 1
            if i == len(ranks):
                break
        at = found.__getitem__
    scale = 1 if money else 100  # (a quantity's figures in hundredths)
    row: dict[str, Any] = {"count": n, "sum": total, "mean": _half_up(scale * total, n)}
    for name, rank, part in _ranks(n):
        lo = at(rank)
        exact = 100 * lo + ((at(rank + 1) - lo) * part if part else 0)  # hundredths
        row[name] = _half_up(exact, 100) if money else exact
    if n > 1:
        # sqrt(var) with var = (n * sum of squares - sum^2) / (n (n - 1)), rounded half-up:
        # floor(sqrt(x) + 1/2) = (isqrt(floor(4x)) + 1) // 2, exactly
        spread = max(n * sumsq - total * total, 0)
        row["stdev"] = (isqrt(4 * scale * scale * spread // (n * (n - 1))) + 1) // 2
    else:
        row["stdev"] = None
    return row


SORTS = ("group", "count", "sum", "mean", "median", "p25", "p75", "p90", "min", "max", "stdev")


def stats(conn: sqlite3.Connection, spec: Spec, field: str = "order_value", by: str | None = None, *,
          sort: str | None = None, limit: int | None = None) -> Report:
    """The distribution per group, in group order or by ``sort`` (a figure:
    ``-median``, ``count``; numbers descending unless ``+``), the first
    ``limit`` groups only (a note tells how many more there are).  Read in
    one snapshot: the extremes' orders may be looked up after the values."""
    with snapshot(conn):
        return _stats(conn, spec, field, by, sort=sort, limit=limit)


def _stats(conn: sqlite3.Connection, spec: Spec, field: str, by: str | None, *, sort: str | None,
           limit: int | None) -> Report:
    if field not in FIELDS:
        raise UsageError(f"unknown --field {field!r}", "choose from " + ", ".join(FIELDS))
    if by is not None and by not in GROUPS:
        raise UsageError(f"unknown --by {by!r}", "choose from " + ", ".join(GROUPS))
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be 1 or more, not {limit}")
    order = parse_sort(sort, SORTS, "+group") if sort else None
    if order and order[0] == "group" and sort and sort.strip()[:1] not in "+-":
        order = ("group", False)  # (a bare group: A to Z, as the other text columns sort)
    money = field != "quantity"
    kept = _kept_by_customer(conn, spec, field) if by == "customer" else None
    rows, labels = (kept, {}) if kept is not None else _computed(conn, spec, field, by, limit is None)
    rows.sort(key=lambda r: (r["group"] is None, str(r["group"])))
    if order:
        sort_rows(rows, *order)
    notes: list[str] = []
    if limit is not None and len(rows) > limit:
        notes.append(f"{len(rows) - limit:,} more groups are not shown (--limit {limit})")
        del rows[limit:]
    if kept is None:
        _name_extremes(conn, spec, field, by, rows, labels)
    kind = "money" if money else "decimal"
    ikind = "money" if money else "int"
    cols = ([Col("group", label=by)] if by else []) + [
        Col("count", "int"), Col("sum", ikind), Col("mean", kind), Col("median", kind), Col("p25", kind),
        Col("p75", kind), Col("p90", kind), Col("min", ikind), Col("min_order"), Col("min_customer"),
        Col("max", ikind), Col("max_order"), Col("max_customer"), Col("stdev", kind), Col("currency")]
    what = {"order_value": "order value", "line_value": "line value", "quantity": "quantity per line",
            "margin": "margin per order"}[field]
    when = "all time" if not (spec.range.start or spec.range.end) else \
        f"{spec.range.start or '…'} to {spec.range.end or '…'}"
    return Report(f"Statistics of {what}" + (f" by {by}" if by else "") + f" ({when})", cols, rows, None,
                  measure="median" if by else None, label="group" if by else None, notes=notes,
                  hide=("sum", "min_customer", "max_customer"))


def _computed(conn: sqlite3.Connection, spec: Spec, field: str, by: str | None,
              every: bool = True) -> tuple[list[dict[str, Any]], dict]:
    """A row of figures per group, labelled, with the extremes' (order, line)
    keys (None: found by ``_name_extremes`` for the groups shown, when not
    ``every`` group is), and the labels by group."""
    money = field != "quantity"
    currency = spec.filters.currency if money else None
    key = _key_sql("oid", "coalesce(line_no, 0)")  # (order, line) in one sortable integer
    rows: list[dict[str, Any]] = []  # one per group, made as soon as the group is read
    # (every group shown: its extremes are best found as the values are read)
    for g, values, counts, k_lo, k_hi in _distributions(conn, spec, field, by, key, every):
        row = _figures(values, counts, money)
        row["group"] = None if isinstance(g, bytes) else g  # (x'00': no group)
        # the extremes' keys of (order, line) until their order numbers and customers are looked up
        row["min"], row["min_order"] = values[0], k_lo
        row["max"], row["max_order"] = values[-1], k_hi
        row["currency"] = currency
        rows.append(row)
    labels = _group_labels(conn, by, [r["group"] for r in rows])
    for row in rows:
        row["_key"] = row["group"]  # (the group's own key, for the extremes found late; dropped after)
        row["group"] = labels.get(row["group"], row["group"])
    return rows, labels


def _name_extremes(conn: sqlite3.Connection, spec: Spec, field: str, by: str | None, rows: list[dict[str, Any]],
                   labels: dict) -> None:
    """The extremes' (order, line) keys of the groups shown made into their
    orders' numbers (with the line) and customers' names; keys still None
    (by customer) found first, by ``_customer_extremes``."""
    orders: dict[int, tuple[str, int]] = {}  # order -> (number, customer)
    late = [row for row in rows if row["min_order"] is None]
    if late:
        found = _customer_extremes(conn, spec, field, [(r["_key"], r["min"], r["max"]) for r in late])
        for row, (k_lo, k_hi, n_lo, n_hi) in zip(late, found):
            row["min_order"], row["max_order"] = k_lo, k_hi
            orders[_unkey(k_lo)[0]] = (n_lo, row["_key"])
            orders[_unkey(k_hi)[0]] = (n_hi, row["_key"])
    for row in rows:
        row["min_order"], row["max_order"] = _unkey(row["min_order"]), _unkey(row["max_order"])
    orders.update(lookup(conn, "orders", "number, customer_id",
                         {r[k][0] for r in rows for k in ("min_order", "max_order")} - orders.keys()))
    names = labels if by == "customer" else customer_names(conn, (o[1] for o in orders.values()))
    for row in rows:
        del row["_key"]
        for which in ("min", "max"):
            oid, line_no = row[f"{which}_order"]
            number, owner = orders.get(oid, (f"#{oid}", None))
            row[f"{which}_order"] = number + (f" line {line_no}" if line_no else "")
            row[f"{which}_customer"] = names.get(owner)


def _group_labels(conn: sqlite3.Connection, by: str | None, keys: list) -> dict:
    if by in PERIODS:
        return {k: bucket_label(date.fromisoformat(k), by) for k in keys if k}
    if by == "customer":
        return customer_names(conn, keys)
    if by == "product":
        out: dict = {}
        ids = [k for k in keys if k is not None]
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            out.update(conn.execute(f"SELECT id, sku FROM products WHERE id IN ({', '.join('?' * len(chunk))})",
                                    chunk).fetchall())
        return out
    return {}
