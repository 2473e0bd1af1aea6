"""``report sales``: orders, units, revenue, discounts, cost, margin and
average order value by one dimension (a table) or two (a pivot), on the
booked, shipped or collected basis (see ``reports.common`` for what each
figure means).  No Typer, no Rich.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import date, timedelta
from operator import itemgetter
from typing import Any

from salescrm.errors import UsageError
from salescrm.output import Col
from salescrm.reports.common import (
    DIMENSIONS,
    MEASURES,
    PERIODS,
    Measures,
    Range,
    Report,
    Spec,
    aggregate,
    bucket_label,
    bucket_start,
    buckets,
    customer_names,
    empty_measures,
    next_bucket,
    parse_sort,
    pct,
    product_labels,
    shift_year,
    sort_rows,
)

COMPARES = ("previous", "last-year")
MEASURE_COLS = [
    Col("orders", "int"),
    Col("units", "int"),
    Col("revenue", "money"),
    Col("discounts", "money"),
    Col("cost", "money"),
    Col("margin", "money"),
    Col("margin_pct", "percent", "margin %"),
    Col("aov", "money", "avg order"),
]
MEASURE_KIND = {c.key: c.kind for c in MEASURE_COLS}
_TEXT_KEYS = ("category", "channel", "region", "salesperson", "customer", "product", "sku")


def key_cols(dim: str) -> list[Col]:
    """The columns that name a row of dimension ``dim``."""
    if dim in PERIODS:
        return [Col(dim), Col(f"{dim}_start", "date", "from"), Col(f"{dim}_end", "date", "to")]
    if dim == "customer":
        return [Col("customer_id", "int", "id"), Col("customer")]
    if dim == "product":
        return [Col("sku"), Col("product"), Col("category")]
    return [Col(dim)]


def _label_fields(conn: sqlite3.Connection, dims: Sequence[str], keys: Sequence[tuple]) -> dict[tuple, dict]:
    """The naming columns of each key tuple."""
    names: dict[int, str] = {}
    prods: dict[int, tuple] = {}
    if "customer" in dims:
        i = dims.index("customer")
        names = customer_names(conn, {k[i] for k in keys})
    if "product" in dims:
        i = dims.index("product")
        prods = product_labels(conn, {k[i] for k in keys})
    out: dict[tuple, dict] = {}
    for k in keys:
        row: dict[str, Any] = {}
        for d, v in zip(dims, k):
            if d in PERIODS:
                row[d] = bucket_label(v, d)
                row[f"{d}_start"] = v.isoformat()
                row[f"{d}_end"] = (next_bucket(v, d) - timedelta(days=1)).isoformat()
            elif d == "customer":
                row["customer_id"] = v
                row["customer"] = names.get(v, f"#{v}")
            elif d == "product":
                sku, name, cat = prods.get(v, (f"#{v}", "", None))
                row.update(sku=sku, product=name, category=cat)
            else:
                row[d] = v
        out[k] = row
    return out


def _display(dim: str, row: dict[str, Any]) -> str:
    if dim in PERIODS:
        return str(row[dim])
    if dim == "customer":
        return str(row["customer"])
    if dim == "product":
        return str(row["sku"])
    v = row.get(dim)
    return "(none)" if v in (None, "") else str(v)


def _fill_periods(data: dict[tuple, Measures], dim: str, rng: Range, basis: str) -> None:
    """Add zero rows for the periods without sales, so a series has no holes."""
    if data:
        starts = [k[0] for k in data]
        lo, hi = min(starts), max(starts)
    else:
        lo = hi = None
    first = bucket_start(rng.start, dim) if rng.start else lo
    last = bucket_start(rng.end, dim) if rng.end else hi
    if first is None or last is None:
        return
    for b in buckets(first, last, dim):
        if (b,) not in data:
            data[(b,)] = empty_measures(basis)


def _compare_spec(spec: Spec, how: str, dim: str | None) -> tuple[Spec, Any]:
    """The comparison query and how to map its keys onto ours."""
    rng = spec.range
    if dim in PERIODS:
        if how == "previous":
            start = next_bucket(bucket_start(rng.start, dim), dim, -1) if rng.start else None
            end = rng.end and (bucket_start(rng.end, dim) - timedelta(days=1))

            def shift(k: date) -> date:
                return next_bucket(k, dim, 1)
        else:
            start = rng.start and shift_year(rng.start, -1)
            end = rng.end and shift_year(rng.end, -1)

            def shift(k: date) -> date:
                if dim == "week":
                    return k + timedelta(weeks=52)
                return bucket_start(shift_year(k, 1), dim)
        return Spec(spec.basis, Range(start, end), spec.filters), shift
    if not rng.bounded:
        raise UsageError("--compare needs --from and --to unless you report --by a period",
                         "e.g. --from 2026-01-01 --to 2026-03-31 --compare previous")
    assert rng.start and rng.end
    if how == "previous":
        days = rng.days()
        prev = Range(rng.start - timedelta(days=days), rng.start - timedelta(days=1))
    else:
        prev = Range(shift_year(rng.start, -1), shift_year(rng.end, -1))
    return Spec(spec.basis, prev, spec.filters), (lambda k: k)


def sales(
    conn: sqlite3.Connection,
    spec: Spec,
    dims: Sequence[str],
    *,
    compare: str | None = None,
    sort: str | None = None,
    limit: int | None = None,
    measure: str = "revenue",
    long: bool = False,
) -> Report:
    dims = list(dims) or ["month"]
    if len(dims) > 2:
        raise UsageError("at most two --by: the second makes a pivot")
    for d in dims:
        if d not in DIMENSIONS:
            raise UsageError(f"unknown --by {d!r}", "choose from " + ", ".join(DIMENSIONS))
    if measure not in MEASURES:
        raise UsageError(f"unknown measure {measure!r}", "choose from " + ", ".join(MEASURES))
    if compare is not None and compare not in COMPARES:
        raise UsageError(f"unknown --compare {compare!r}", "choose previous or last-year")
    if compare and len(dims) == 2:
        raise UsageError("--compare works with one --by, not a pivot")
    if limit is not None and limit <= 0:
        raise UsageError("--limit must be a positive number")
    prev = None
    if compare and dims[0] in PERIODS and _one_query(spec.range, compare, dims[0]):
        # one query over both ranges, split here
        cspec, _ = _compare_spec(spec, compare, dims[0])
        r, c = spec.range, cspec.range
        both = Range(None if r.start is None or c.start is None else min(r.start, c.start),
                     None if r.end is None else max(r.end, c.end or r.end))
        everything = aggregate(conn, Spec(spec.basis, both, spec.filters), dims)
        data = {k: m for k, m in everything.items() if _within(k[0], r, dims[0])}
        prev = {k: m for k, m in everything.items() if _within(k[0], c, dims[0])}
    else:
        data = aggregate(conn, spec, dims)
    if len(dims) == 1 and dims[0] in PERIODS:
        _fill_periods(data, dims[0], spec.range, spec.basis)
    if len(dims) == 2 and not long:
        return _pivot(conn, spec, dims, data, measure, sort, limit)
    return _table(conn, spec, dims, data, compare=compare, sort=sort, limit=limit, measure=measure, prev=prev)


def _title(spec: Spec, dims: Sequence[str]) -> str:
    rng = spec.range
    when = ""
    if rng.start or rng.end:
        when = f", {rng.start or '…'} to {rng.end or '…'}"
    return f"Sales by {' and '.join(dims)} ({spec.basis}{when}, {spec.filters.currency})"


def _parse_row_sort(dims: Sequence[str], sort: str | None, default_desc_key: str) -> tuple[str, bool]:
    allowed = list(dict.fromkeys([*(k for d in dims for k in _sort_keys(d)), *MEASURES, "previous", "change",
                                  "change_pct"]))
    default = f"+{dims[0]}" if dims[0] in PERIODS else f"-{default_desc_key}"
    return parse_sort(sort, allowed, default)


def _sort_key(dims: Sequence[str], sort: str | None, default_desc_key: str) -> str:
    return _parse_row_sort(dims, sort, default_desc_key)[0]


def _sort_rows(rows: list[dict], dims: Sequence[str], sort: str | None, default_desc_key: str) -> None:
    sort_rows(rows, *_parse_row_sort(dims, sort, default_desc_key))


def _sort_keys(dim: str) -> list[str]:
    if dim == "customer":
        return ["customer", "customer_id"]
    if dim == "product":
        return ["sku", "product", "category"]
    return [dim]


def _one_query(rng: Range, compare: str, unit: str) -> bool:
    """Whether the report and its comparison can come from one query: when
    the range starts on a period boundary (and, for last year, ends on one),
    every period of both is whole or cut exactly as a separate query would."""
    start_ok = rng.start is None or bucket_start(rng.start, unit) == rng.start
    if compare == "previous":
        return start_ok
    end_ok = rng.end is None or next_bucket(bucket_start(rng.end, unit), unit) - timedelta(days=1) == rng.end
    return start_ok and end_ok and unit != "week"


def _within(bucket: date, rng: Range, unit: str) -> bool:
    """Whether a period bucket lies in a range (by its start; ranges given
    to a period report start on a bucket boundary or inside the first)."""
    lo = bucket_start(rng.start, unit) if rng.start else None
    return (lo is None or bucket >= lo) and (rng.end is None or bucket <= rng.end)


def _table(conn, spec, dims, data, *, compare, sort, limit, measure, prev=None) -> Report:
    cur = spec.filters.currency
    # Sorted by a measure and cut at --limit: name only the rows shown (by
    # customer over all history that is 50 names, not 50,000).
    late = (limit is not None and not compare and len(data) > limit
            and _sort_key(dims, sort, measure) in MEASURES)
    labels = {} if late else _label_fields(conn, dims, list(data))
    rest: list[Measures] = []
    if late:
        # only the rows shown are made: the first --limit by the measure (as sort_rows orders them: empty
        # values last, ties in their order), the others summed in the '(other N)' row below
        key_name, desc = _parse_row_sort(dims, sort, measure)
        values = [(_measure_of(m, key_name), k) for k, m in data.items()]
        order = sorted((v for v in values if v[0] is not None), key=itemgetter(0), reverse=desc)
        order += [v for v in values if v[0] is None]
        rest = [data[k] for _, k in order[limit:]]
        data = {k: data[k] for _, k in order[:limit]}
    rows: list[dict[str, Any]] = []
    for key, m in data.items():
        row = dict(labels[key]) if not late else {}
        row.update(m.row())
        row["currency"] = cur
        row["_m"] = m
        row["_key"] = key
        rows.append(row)
    cols = [c for d in dims for c in key_cols(d)] + MEASURE_COLS
    if compare:
        cspec, shift = _compare_spec(spec, compare, dims[0] if dims[0] in PERIODS else None)
        if prev is None:
            prev = aggregate(conn, cspec, dims)
        if dims[0] in PERIODS:
            _fill_periods(prev, dims[0], cspec.range, spec.basis)  # a period without sales compares as zero
        mapped: dict[tuple, Measures] = {}
        for k, m in prev.items():
            nk = (shift(k[0]),) if dims[0] in PERIODS else k
            mapped[nk] = m
        for row in rows:
            pm = mapped.get(row["_key"])
            pv = pm.row()[measure] if pm else None
            cv = row[measure]
            row["previous"] = pv
            row["change"] = None if pv is None or cv is None else cv - pv
            row["change_pct"] = pct(row["change"], abs(pv)) if pv else None
        kind = MEASURE_KIND[measure]
        cols += [Col("previous", kind), Col("change", kind if kind != "percent" else "decimal"),
                 Col("change_pct", "percent", "change %")]
    cols.append(Col("currency"))
    _sort_rows(rows, dims, sort, measure)
    notes: list[str] = []
    if late:
        shown = _label_fields(conn, dims, [r["_key"] for r in rows])
        rows = [{**shown[r["_key"]], **r} for r in rows]
    elif limit is not None and len(rows) > limit:
        rest = [r["_m"] for r in rows[limit:]]
        rows = rows[:limit]
    if rest:
        other = _summed(rest, spec.basis)
        orow: dict[str, Any] = {c.key: None for c in cols}
        orow[key_cols(dims[0])[0].key if dims[0] not in ("customer", "product") else
             ("customer" if dims[0] == "customer" else "sku")] = f"(other {len(rest):,})"
        orow.update(other.row())
        orow["currency"] = cur
        orow["_m"] = other
        rows.append(orow)
        notes.append(f"{len(rest):,} more rows are summed in the '(other {len(rest):,})' row")
    total = empty_measures(spec.basis)
    for r in rows:
        total.add(r["_m"])
    totals: dict[str, Any] = {c.key: None for c in cols}
    totals.update(total.row())
    first = cols[0].key if dims[0] not in ("customer", "product") else ("customer" if dims[0] == "customer"
                                                                       else "sku")
    totals[first] = "total"
    totals["currency"] = cur
    if compare:
        prevs = [r.get("previous") for r in rows]
        if MEASURE_KIND[measure] in ("int", "money") and all(p is not None for p in prevs):
            totals["previous"] = sum(prevs)
            totals["change"] = totals[measure] - totals["previous"]
            totals["change_pct"] = pct(totals["change"], abs(totals["previous"])) if totals["previous"] else None
    for r in rows:
        r.pop("_m", None)
        r.pop("_key", None)
    if spec.basis == "collected":
        notes.append("collected basis: money received (tax and shipping included); units, discounts and cost"
                     " do not apply")
    label = {"customer": "customer", "product": "sku"}.get(dims[0], cols[0].key)
    return Report(title=_title(spec, dims), cols=cols, rows=rows, totals=totals, measure=measure, label=label,
                  notes=notes, chart="sparkline" if dims[0] in PERIODS and len(dims) == 1 else "bars")


def _measure_of(m: Measures, name: str) -> Any:
    """One measure of ``m``, as ``m.row()`` gives it (without making the
    others)."""
    if name in ("orders", "units", "revenue", "discounts", "cost"):
        return getattr(m, name)
    if name == "margin":
        return None if m.cost is None else m.revenue - m.cost
    return m.row()[name]


def _summed(ms: list[Measures], basis: str) -> Measures:
    """The measures added up (as ``Measures.add`` one by one would: a
    measure that one of them lacks is lacking in the sum)."""
    out = empty_measures(basis)
    out.orders = sum(m.orders for m in ms)
    out.revenue = sum(m.revenue for m in ms)
    for k in ("units", "discounts", "cost"):
        parts = [getattr(m, k) for m in ms]
        setattr(out, k, None if getattr(out, k) is None or None in parts else sum(parts))
    return out


def _pivot(conn, spec, dims, data, measure, sort, limit) -> Report:
    """Rows of the first dimension, a column per value of the second, cells of
    ``measure``, a total column and a totals row (sums of the cells)."""
    if MEASURE_KIND[measure] not in ("int", "money"):
        raise UsageError(f"a pivot adds its cells up: choose an additive --measure, not {measure}",
                         "orders, units, revenue, discounts, cost or margin")
    d1, d2 = dims
    if d2 in PERIODS:
        present = sorted({k[1] for k in data})
        if spec.range.bounded or present:
            lo = bucket_start(spec.range.start, d2) if spec.range.start else present[0]
            hi = bucket_start(spec.range.end, d2) if spec.range.end else present[-1]
            colkeys = buckets(lo, hi, d2)
        else:
            colkeys = []
    else:
        by_col: dict[Any, int] = {}
        for k, m in data.items():
            by_col[k[1]] = by_col.get(k[1], 0) + (m.row()[measure] or 0)
        colkeys = sorted(by_col, key=lambda c: (-by_col[c], str(c)))
    collabels = _label_fields(conn, [d2], [(c,) for c in colkeys])
    col_names: dict[Any, str] = {}
    used: set[str] = set()
    for c in colkeys:
        name = _display(d2, collabels[(c,)])
        while name in used:
            name += "'"
        used.add(name)
        col_names[c] = name
    row_keys = sorted({k[0] for k in data}, key=lambda x: (x is None, str(x)))
    if d1 in PERIODS:
        if row_keys:
            lo = bucket_start(spec.range.start, d1) if spec.range.start else row_keys[0]
            hi = bucket_start(spec.range.end, d1) if spec.range.end else row_keys[-1]
            row_keys = buckets(lo, hi, d1)
    labels = _label_fields(conn, [d1], [(r,) for r in row_keys])
    kind = MEASURE_KIND[measure]
    rows: list[dict[str, Any]] = []
    for rk in row_keys:
        row = dict(labels[(rk,)])
        total = 0
        for c in colkeys:
            m = data.get((rk, c))
            v = (m.row()[measure] or 0) if m else 0
            row[col_names[c]] = v
            total += v
        row["total"] = total
        row["currency"] = spec.filters.currency
        rows.append(row)
    cols = key_cols(d1) + [Col(col_names[c], kind) for c in colkeys] + [Col("total", kind), Col("currency")]
    if sort or d1 not in PERIODS:
        key, desc = parse_sort(sort, _sort_keys(d1) + ["total"], f"+{d1}" if d1 in PERIODS else "-total")
        sort_rows(rows, key, desc)
    notes: list[str] = []
    if limit is not None and len(rows) > limit:
        rest = rows[limit:]
        rows = rows[:limit]
        other: dict[str, Any] = {c.key: None for c in cols}
        other[_label_key(d1)] = f"(other {len(rest):,})"
        for c in [*colkeys]:
            other[col_names[c]] = sum(r[col_names[c]] for r in rest)
        other["total"] = sum(r["total"] for r in rest)
        other["currency"] = spec.filters.currency
        rows.append(other)
        notes.append(f"{len(rest):,} more rows are summed in the '(other {len(rest):,})' row")
    totals: dict[str, Any] = {c.key: None for c in cols}
    totals[_label_key(d1)] = "total"
    for c in colkeys:
        totals[col_names[c]] = sum(r[col_names[c]] for r in rows)
    totals["total"] = sum(r["total"] for r in rows)
    totals["currency"] = spec.filters.currency
    return Report(title=_title(spec, dims) + f": {measure}", cols=cols, rows=rows, totals=totals, measure="total",
                  label=_label_key(d1), notes=notes)


def _label_key(dim: str) -> str:
    return {"customer": "customer", "product": "sku"}.get(dim, dim)
