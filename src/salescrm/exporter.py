"""Exports: customers, products, orders, order lines and payments as CSV,
TSV, JSON or JSON lines, streamed from one query (no whole-table lists).

Column names are the import's field names, so that importing an export
gives back the same data (``export lines`` is the shape ``import orders``
reads).  For CSV and TSV, text cells that a spreadsheet would run as a
formula (starting with ``= + - @``, tab or carriage return) get a leading
``'``; a cell that already starts with ``'`` before one of those (or another
``'``) gets one too, so the import can undo it exactly.  Numbers stay
numbers.  ``raw=True`` turns the escaping off.  Money and the escaping are
done in SQL so that the Python loop is as thin as a plain ``csv.writer``.

Files appear atomically (a temporary file in the same folder, then a
rename), are created 0600, and are never overwritten without ``force``.
No Typer, no Rich.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from salescrm.errors import Conflict, IOFailure, UsageError

WHATS = ("customers", "products", "orders", "lines", "payments", "all")
FORMATS = ("csv", "tsv", "json", "jsonl")
EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}
#: What ``all`` writes into its folder, and the files' names.
ALL_PARTS = ("customers", "products", "orders", "lines", "payments")



def escape_text(value: str) -> str:
    """The spreadsheet-safe form of a text cell (see the module's doc)."""
    if value and (value[0] in "=+-@\t\r" or (value[0] == "'" and len(value) > 1 and value[1] in "=+-@\t\r'")):
        return "'" + value
    return value


@dataclass
class Col:
    key: str
    sql: str
    kind: str = "text"  # text, int, money, bool, decimal, plain (text that cannot hold a formula)


@dataclass
class Filters:
    """Like the list commands' filters; all AND together."""

    # customers
    search: str | None = None
    segment: str | None = None
    region: str | None = None
    city: str | None = None
    owner: str | None = None
    tags: list[str] = field(default_factory=list)
    since: str | None = None
    archived: str = "all"  # active | archived | all
    # products
    category: str | None = None
    # orders, lines, payments
    status: str | None = None
    customer: str | None = None
    channel: str | None = None
    salesperson: str | None = None
    date_from: str | None = None
    date_to: str | None = None


def _money_sql(expr: str) -> str:
    """Integer cents -> '1234.50' text, in SQL (NULL stays NULL)."""
    return (f"CASE WHEN {expr} IS NULL THEN NULL WHEN {expr} < 0 "
            f"THEN printf('-%d.%02d', -({expr}) / 100, -({expr}) % 100) "
            f"ELSE printf('%d.%02d', ({expr}) / 100, ({expr}) % 100) END")


def _escaped_sql(expr: str) -> str:
    """A leading ' for = + - @ tab CR, or for ' followed by one of those or '."""
    return (f"CASE WHEN unicode({expr}) IN (61, 43, 45, 64, 9, 13) OR (unicode({expr}) = 39 AND "
            f"unicode(substr({expr}, 2, 1)) IN (61, 43, 45, 64, 9, 13, 39)) "
            f"THEN '''' || {expr} ELSE {expr} END")


def _select(cols: list[Col], *, text_mode: bool, raw: bool) -> str:
    """SELECT list: for CSV/TSV money is formatted and text escaped in SQL."""
    parts = []
    for c in cols:
        expr = c.sql
        if text_mode:
            if c.kind == "money":
                expr = _money_sql(expr)
            elif c.kind == "bool":
                expr = f"CASE WHEN {expr} IS NULL THEN NULL WHEN {expr} THEN 'true' ELSE 'false' END"
            elif c.kind == "text" and not raw:
                expr = _escaped_sql(expr)
        parts.append(f"{expr} AS \"{c.key}\"")
    return ", ".join(parts)


@dataclass
class Query:
    cols: list[Col]
    from_sql: str
    where: list[str]
    params: list[Any]
    order_by: str

    def sql(self, *, text_mode: bool, raw: bool) -> str:
        where = (" WHERE " + " AND ".join(self.where)) if self.where else ""
        return f"SELECT {_select(self.cols, text_mode=text_mode, raw=raw)} FROM {self.from_sql}{where} ORDER BY {self.order_by}"


# --------------------------------------------------------------------------- the queries

CUSTOMER_COLS = [
    Col("id", "c.id", "int"), Col("external_id", "c.external_id"), Col("name", "c.name"),
    Col("company", "c.company"), Col("email", "c.email"), Col("phone", "c.phone"),
    Col("address", "c.address"), Col("city", "c.city"), Col("region", "c.region"),
    Col("country", "c.country"), Col("segment", "c.segment"), Col("source", "c.source"),
    Col("owner", "c.owner"),
    Col("tags", "(SELECT group_concat(tag, ',') FROM (SELECT tag FROM customer_tags t"
                " WHERE t.customer_id = c.id ORDER BY tag))"),
    Col("notes", "c.notes"), Col("credit_limit", "c.credit_limit", "money"),
    Col("payment_terms_days", "c.payment_terms_days", "int"), Col("created_at", "c.created_at", "plain"),
    Col("updated_at", "c.updated_at", "plain"), Col("archived_at", "c.archived_at", "plain"),
]

PRODUCT_COLS = [
    Col("id", "p.id", "int"), Col("sku", "p.sku", "plain"), Col("name", "p.name"), Col("category", "p.category"),
    Col("kind", "p.kind", "plain"), Col("unit", "p.unit"), Col("unit_cost", "p.unit_cost", "money"),
    Col("list_price", "p.list_price", "money"), Col("tax_rate", "p.tax_rate", "decimal"),
    Col("reorder_level", "p.reorder_level", "int"), Col("active", "p.active", "bool"),
    Col("on_hand", "p.on_hand", "int"), Col("reserved", "p.reserved", "int"),
    Col("created_at", "p.created_at", "plain"), Col("updated_at", "p.updated_at", "plain"),
]

_ORDER_HEAD = [
    Col("order_no", "o.number"), Col("order_date", "o.order_date", "plain"), Col("status", "o.status", "plain"),
    Col("customer_id", "o.customer_id", "int"), Col("customer_external_id", "c.external_id"),
    Col("customer_email", "c.email"), Col("channel", "o.channel"), Col("salesperson", "o.salesperson"),
    Col("currency", "o.currency", "plain"),
]

ORDER_COLS = [Col("id", "o.id", "int"), *_ORDER_HEAD,
              Col("gross", "o.gross_cents", "money"), Col("discount", "o.discount_cents", "money"),
              Col("subtotal", "o.subtotal_cents", "money"), Col("tax", "o.tax_cents", "money"),
              Col("shipping", "o.shipping_cents", "money"), Col("adjustment", "o.adjustment_cents", "money"),
              Col("total", "o.total_cents", "money"), Col("returned", "o.returned_cents", "money"),
              Col("paid", "o.paid_cents", "money"), Col("due_date", "o.due_date", "plain"), Col("notes", "o.notes"),
              Col("created_at", "o.created_at", "plain")]

LINE_COLS = [*_ORDER_HEAD, Col("notes", "o.notes"), Col("shipping", "o.shipping_cents", "money"),
             Col("line_no", "l.line_no", "int"), Col("sku", "l.sku", "plain"), Col("description", "l.description"),
             Col("qty", "l.qty", "int"), Col("unit_price", "l.unit_price", "money"),
             Col("discount_pct", "l.discount_pct", "decimal"),
             Col("discount", "CASE WHEN l.discount_pct IS NULL AND l.discount_cents > 0"
                             " THEN l.discount_cents END", "money"),
             Col("tax_rate", "l.tax_rate", "decimal"), Col("net", "l.net_cents", "money"),
             Col("tax", "l.tax_cents", "money"), Col("total", "l.total_cents", "money")]

PAYMENT_COLS = [Col("id", "pm.id", "int"), Col("order_no", "o.number"), Col("kind", "pm.kind", "plain"),
                Col("amount", "pm.amount_cents", "money"), Col("method", "pm.method"),
                Col("paid_at", "pm.paid_at", "plain"), Col("reference", "pm.reference"),
                Col("created_at", "pm.created_at", "plain")]


def _customer_where(conn: sqlite3.Connection, f: Filters) -> tuple[list[str], list[Any]]:
    from salescrm import customers

    cf = customers.Filters(search=f.search, segment=f.segment, region=f.region, city=f.city, owner=f.owner,
                           tags=tuple(f.tags), since=f.since, archived=f.archived)
    where, params = customers.where(cf)  # the same filters as 'customer list'
    clause = where.removeprefix(" WHERE ")
    return ([clause] if clause else []), list(params)


def _order_where(conn: sqlite3.Connection, f: Filters) -> tuple[list[str], list[Any]]:
    from salescrm import orders

    where, params = orders.list_where(conn, status=f.status, customer=f.customer, channel=f.channel,
                                      salesperson=f.salesperson, date_from=f.date_from, date_to=f.date_to)
    return list(where), list(params)


def query(conn: sqlite3.Connection, what: str, filters: Filters | None = None) -> Query:
    f = filters or Filters()
    if what == "customers":
        where, params = _customer_where(conn, f)
        return Query(CUSTOMER_COLS, "customers c", where, params, "c.id")
    if what == "products":
        where: list[str] = []
        params: list[Any] = []
        if f.category:
            where.append("p.category = ? COLLATE NOCASE")
            params.append(f.category.strip())
        if f.archived == "active":
            where.append("p.active = 1")
        elif f.archived == "archived":
            where.append("p.active = 0")
        return Query(PRODUCT_COLS, "products p", where, params, "p.id")
    if what == "orders":
        where, params = _order_where(conn, f)
        return Query(ORDER_COLS, "orders o JOIN customers c ON c.id = o.customer_id", where, params, "o.id")
    if what == "lines":
        where, params = _order_where(conn, f)
        return Query(LINE_COLS, "order_lines l JOIN orders o ON o.id = l.order_id"
                                " JOIN customers c ON c.id = o.customer_id", where, params, "l.order_id, l.line_no")
    if what == "payments":
        where, params = _order_where(conn, f)
        return Query(PAYMENT_COLS, "payments pm JOIN orders o ON o.id = pm.order_id", where, params, "pm.id")
    raise UsageError(f"cannot export {what!r}", "choose one of " + ", ".join(WHATS))


# --------------------------------------------------------------------------- writing


def detect_format(out: str | None, given: str | None) -> str:
    if given:
        g = given.lower()
        if g not in FORMATS:
            raise UsageError(f"unknown format {given!r}", "choose one of " + ", ".join(FORMATS))
        return g
    if out and out != "-":
        return EXTENSIONS.get(Path(out).suffix.lower(), "csv")
    return "csv"


def write(conn: sqlite3.Connection, q: Query, stream: IO[str], fmt: str, *, raw: bool = False) -> int:
    """Stream the query's rows to ``stream``; returns the number of rows."""
    n = 0
    if fmt in ("csv", "tsv"):
        cur = conn.execute(q.sql(text_mode=True, raw=raw), q.params)
        w = csv.writer(stream, delimiter="," if fmt == "csv" else "\t", lineterminator="\n")
        w.writerow([c.key for c in q.cols])
        while True:
            rows = cur.fetchmany(2000)
            if not rows:
                break
            w.writerows(rows)
            n += len(rows)
        return n
    cur = conn.execute(q.sql(text_mode=True, raw=True), q.params)
    keys = [json.dumps(c.key) for c in q.cols]
    kinds = [c.kind for c in q.cols]

    def obj(row: tuple) -> str:
        parts = []
        for k, kind, v in zip(keys, kinds, row):
            if v is None:
                lit = "null"
            elif kind in ("int", "money", "bool"):
                lit = str(v)  # money comes formatted from SQL: a JSON number with two decimals
            elif kind == "decimal":
                lit = str(v)
            else:
                lit = json.dumps(v, ensure_ascii=False)
            parts.append(f"{k}: {lit}")
        return "{" + ", ".join(parts) + "}"

    if fmt == "jsonl":
        for row in cur:
            stream.write(obj(row) + "\n")
            n += 1
        return n
    stream.write("[")
    for row in cur:
        stream.write(("\n" if n == 0 else ",\n") + obj(row))
        n += 1
    stream.write("\n]\n" if n else "]\n")
    return n


def _atomic_open(path: Path, *, force: bool) -> tuple[Path, IO[str]]:
    from salescrm.validate import file_to_write

    path, tmp = file_to_write(path)
    if path.exists() and not force:
        raise Conflict(f"{path} exists", "use --force to overwrite it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
    except OSError as exc:
        raise IOFailure(f"cannot write {path}: {exc.strerror or exc}") from None
    return tmp, open(fd, "w", encoding="utf-8", newline="")


def export_to_file(conn: sqlite3.Connection, what: str, path: Path, fmt: str, *, filters: Filters | None = None,
                   raw: bool = False, force: bool = False) -> int:
    """Write one export to ``path`` atomically (0600); returns the row count."""
    q = query(conn, what, filters)
    tmp, f = _atomic_open(path, force=force)
    try:
        with f:
            n = write(conn, q, f, fmt, raw=raw)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise IOFailure(f"cannot write {path}: {exc.strerror or exc}") from None
        raise
    return n


def export_all(conn: sqlite3.Connection, folder: Path, fmt: str, *, filters: Filters | None = None,
               raw: bool = False, force: bool = False) -> dict[str, int]:
    """Every part into ``folder`` (created 0700 if missing), one file each,
    read in one transaction so that the files agree with each other."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} is not a folder", "'export all' writes one file per part into -o FOLDER")
    targets = {part: folder / f"{part}.{fmt}" for part in ALL_PARTS}
    if not force:
        for path in targets.values():
            if path.exists():
                raise Conflict(f"{path} exists", "use --force to overwrite it")
    for part in ALL_PARTS:
        query(conn, part, filters)  # bad filters are refused before anything is created
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise IOFailure(f"cannot create {folder}: {exc.strerror or exc}") from None
    counts: dict[str, int] = {}
    conn.execute("BEGIN")  # one read snapshot for every part
    try:
        for part, path in targets.items():
            counts[part] = export_to_file(conn, part, path, fmt, filters=filters, raw=raw, force=True)
    except BaseException:
        if created:  # a folder this run made holds only this run's files: leave nothing behind
            for path in targets.values():
                path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    finally:
        conn.execute("COMMIT")
    return counts


def rows(conn: sqlite3.Connection, what: str, filters: Filters | None = None) -> Iterator[dict[str, Any]]:
    """Typed rows as dicts (for tests and the library): money as cents."""
    q = query(conn, what, filters)
    where = (" WHERE " + " AND ".join(q.where)) if q.where else ""
    select = ", ".join(f'{c.sql} AS "{c.key}"' for c in q.cols)
    sql = f"SELECT {select} FROM {q.from_sql}{where} ORDER BY {q.order_by}"
    for r in conn.execute(sql, q.params):
        yield dict(r)
