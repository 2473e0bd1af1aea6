"""Customers: profiles, tags, interactions, ratings, follow-up tasks,
duplicates, merging and survey sampling.

Logic only (no Typer, no Rich).  Every function takes an open connection.
Functions that write expect to run inside ``db.write_tx`` (the CLI opens one
transaction per command) and never open or commit one themselves; each
write is recorded with ``db.audit`` (ids only).

Keys kept next to the values they are derived from:

* ``name_key`` / ``company_key``: ``validate.name_key`` (NFKC, casefolded,
  single-spaced): search, sorting by name, duplicates.
* ``email_key``: ``validate.email_key`` (trimmed, casefolded): uniqueness and
  lookup by e-mail.

Anything that inserts or edits customers should go through ``add`` / ``edit``
so that these keys stay right.
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from salescrm import db, money, validate
from salescrm.errors import BusinessRule, Conflict, IllegalTransition, NotFound, ValidationError

# --------------------------------------------------------------------------- fields

#: Profile fields a user sets (``add`` / ``edit``), in display order.
FIELDS = (
    "name", "company", "email", "phone", "address", "city", "region", "country",
    "segment", "source", "owner", "notes", "credit_limit", "payment_terms_days", "external_id",
)
_MAX_LEN = {"name": 200, "address": 500, "notes": 10_000, "external_id": 100}
_DEFAULT_MAX_LEN = 200

#: ``--sort`` fields and the column each sorts on; NOT NULL ones can use an index.
SORT_FIELDS = {
    "id": "c.id",
    "name": "c.name_key",
    "company": "c.company_key",
    "email": "c.email_key",
    "phone": "c.phone",
    "city": "c.city",
    "region": "c.region",
    "country": "c.country",
    "segment": "c.segment",
    "source": "c.source",
    "owner": "c.owner",
    "credit_limit": "c.credit_limit",
    "payment_terms_days": "c.payment_terms_days",
    "created_at": "c.created_at",
    "updated_at": "c.updated_at",
}
_NOT_NULL_SORT = {"id", "name", "created_at", "updated_at"}

#: Fields ``sample --stratify`` accepts.
STRATIFY_FIELDS = ("segment", "region", "city", "country", "source", "owner")

INTERACTION_TYPES = ("call", "email", "meeting", "visit", "note")

#: Fields a merge fills on the kept customer when it has none.
_MERGE_FIELDS = tuple(f for f in FIELDS if f not in ("name", "notes"))

_ARCHIVED_MODES = ("active", "archived", "all")


def _q(identifier: str) -> str:
    """Quote an SQL identifier that came from the schema, never from a user."""
    return '"' + identifier.replace('"', '""') + '"'


def _table_exists(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute(
        "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", (name,)
    ).fetchone() is not None


def _today(today: date | None) -> date:
    return today or date.today()


# --------------------------------------------------------------------------- validation


def clean_field(name: str, value: Any) -> Any:
    """One profile field, validated and normalised; ``None`` or an empty
    string means "no value" (except for the name, which is required).

    ``credit_limit`` takes whole cents as an ``int`` or an amount as text
    (``"5000"``, ``"1234.50"``); ``payment_terms_days`` an int or digits.
    """
    if name not in FIELDS:
        raise ValidationError(f"unknown customer field {name!r}")
    if name == "name":
        return validate.text(value, field="name", max_len=_MAX_LEN["name"], required=True)
    if value is None:
        return None
    if name == "credit_limit":
        if isinstance(value, bool):
            raise ValidationError("credit limit must be an amount")
        if isinstance(value, int):
            if value < 0:
                raise ValidationError("credit limit must not be negative")
            return value
        s = str(value).strip()
        return money.parse_money(s, field="credit limit") if s else None
    if name == "payment_terms_days":
        if isinstance(value, bool):
            raise ValidationError("payment terms must be a number of days")
        s = str(value).strip()
        if not s:
            return None
        if not re.fullmatch(r"\d{1,4}", s) or int(s) > 3650:
            raise ValidationError(
                f"payment terms must be a whole number of days from 0 to 3650, not {s!r}",
                "for example --terms-days 30",
            )
        return int(s)
    if name == "email":
        return validate.email(value)
    if name == "phone":
        return validate.phone(value)
    return validate.text(value, field=name.replace("_", " "),
                         max_len=_MAX_LEN.get(name, _DEFAULT_MAX_LEN))


def clean_tag(value: str) -> str:
    """A tag: trimmed, casefolded, single-spaced; no commas."""
    v = validate.text(value, field="tag", max_len=50)
    if v is None:
        raise ValidationError("a tag must not be empty")
    if "," in v:
        raise ValidationError(f"a tag cannot contain a comma: {v!r}", "give each tag its own --tag")
    return validate.name_key(v)


def parse_score(value: int | str) -> int:
    """A rating score: a whole number from 1 to 5."""
    if isinstance(value, bool):
        raise ValidationError("score must be a whole number from 1 to 5")
    s = str(value).strip()
    if not re.fullmatch(r"[+-]?\d+", s) or not 1 <= int(s) <= 5:
        raise ValidationError(f"score must be a whole number from 1 to 5, not {s!r}",
                              "for example --score 4")
    return int(s)


def parse_type(value: str) -> str:
    v = str(value).strip().lower()
    if v not in INTERACTION_TYPES:
        raise ValidationError(f"unknown interaction type {value!r}",
                              "use one of " + ", ".join(INTERACTION_TYPES))
    return v


def _derived(values: Mapping[str, Any]) -> dict[str, Any]:
    """The key columns that go with the given field values."""
    out: dict[str, Any] = {}
    if "name" in values:
        out["name_key"] = validate.name_key(values["name"])
    if "company" in values:
        out["company_key"] = validate.name_key(values["company"]) if values["company"] else None
    if "email" in values:
        out["email_key"] = validate.email_key(values["email"])
    return out


def _check_unique(conn: sqlite3.Connection, values: Mapping[str, Any], exclude: int | None = None) -> None:
    email_key = validate.email_key(values.get("email"))
    if email_key:
        row = conn.execute(
            "SELECT id, name FROM customers WHERE email_key = ? AND id IS NOT ?", (email_key, exclude)
        ).fetchone()
        if row:
            raise Conflict(
                f"customer {row['id']} ({row['name']}) already has the e-mail {values['email']}",
                f"see 'customer show {row['id']}', or merge the two with 'customer merge'",
            )
    ext = values.get("external_id")
    if ext:
        row = conn.execute(
            "SELECT id, name FROM customers WHERE external_id = ? AND id IS NOT ?", (ext, exclude)
        ).fetchone()
        if row:
            raise Conflict(
                f"customer {row['id']} ({row['name']}) already has the external id {ext}",
                "external ids are unique",
            )


# --------------------------------------------------------------------------- lookup


def resolve(conn: sqlite3.Connection, ref: int | str) -> int:
    """A customer's id from its id (``12`` or ``#12``) or its e-mail."""
    if isinstance(ref, int) and not isinstance(ref, bool):
        s = str(ref)
    else:
        s = str(ref).strip()
    if re.fullmatch(r"#?\d{1,18}", s):
        cid = int(s.lstrip("#"))
        if conn.execute("SELECT 1 FROM customers WHERE id = ?", (cid,)).fetchone():
            return cid
        merged = _merged_into(conn, cid)
        if merged is not None:
            raise NotFound(f"customer {cid} was merged into customer {merged}",
                           f"use customer {merged}")
        raise NotFound(f"no customer with id {cid}", "see 'salescrm customer list' for ids")
    if "@" in s:
        row = conn.execute("SELECT id FROM customers WHERE email_key = ?",
                           (validate.email_key(s),)).fetchone()
        if row:
            return row[0]
        raise NotFound(f"no customer with e-mail {s!r}",
                       "check the spelling, or search with 'salescrm customer list --search'")
    raise ValidationError(f"not a customer id or e-mail: {s!r}",
                          "give the customer's number (see 'salescrm customer list') or e-mail")


def _merged_into(conn: sqlite3.Connection, cid: int) -> int | None:
    """Where a merged-away customer went (following later merges)."""
    seen = set()
    current: int | None = None
    target = cid
    while target not in seen:
        seen.add(target)
        row = conn.execute(
            "SELECT kept_id FROM customer_merges WHERE merged_id = ? ORDER BY id DESC LIMIT 1",
            (target,),
        ).fetchone()
        if row is None:
            break
        current = target = row[0]
    return current


def tags_of(conn: sqlite3.Connection, cid: int) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT tag FROM customer_tags WHERE customer_id = ? ORDER BY tag", (cid,))]


def get(conn: sqlite3.Connection, cid: int) -> dict[str, Any]:
    """One customer as a dict (every column, plus ``tags``)."""
    row = conn.execute("SELECT * FROM customers WHERE id = ?", (cid,)).fetchone()
    if row is None:
        raise NotFound(f"no customer with id {cid}", "see 'salescrm customer list' for ids")
    out = dict(row)
    out["tags"] = tags_of(conn, cid)
    return out


# --------------------------------------------------------------------------- add, edit, delete


def prepare_new(name: str, *, tags: Iterable[str] = (), **fields: Any) -> tuple[dict[str, Any], list[str]]:
    """What ``add`` writes for a new customer, before the uniqueness checks:
    the validated, normalised column values with their keys (``name_key``,
    ``company_key``, ``email_key``; no timestamps) and the clean tags, sorted.
    Raises ``ValidationError``.  Bulk inserts (imports) use it so that their
    rows are exactly what ``add`` would have written."""
    values = {"name": clean_field("name", name)}
    for key, value in fields.items():
        values[key] = clean_field(key, value)
    clean_tags = sorted({clean_tag(t) for t in tags})
    values.update(_derived({"company": None, "email": None, **values}))
    return values, clean_tags


def add(conn: sqlite3.Connection, name: str, *, tags: Iterable[str] = (), **fields: Any) -> int:
    """Create a customer; returns its id.  ``fields`` are any of ``FIELDS``."""
    assert conn.in_transaction, "customers.add must run inside db.write_tx"
    values, clean_tags = prepare_new(name, tags=tags, **fields)
    _check_unique(conn, values)
    now = db.now_iso()
    values["created_at"] = values["updated_at"] = now
    cols = list(values)
    cur = conn.execute(
        f"INSERT INTO customers ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
        [values[c] for c in cols],
    )
    cid = int(cur.lastrowid)
    conn.executemany("INSERT INTO customer_tags (customer_id, tag) VALUES (?, ?)",
                     [(cid, t) for t in clean_tags])
    db.audit(conn, "create", "customer", cid)
    return cid


def edit(
    conn: sqlite3.Connection,
    cid: int,
    changes: Mapping[str, Any],
    *,
    set_tags: Iterable[str] | None = None,
    add_tags: Iterable[str] = (),
    remove_tags: Iterable[str] = (),
) -> list[str]:
    """Change some fields (``None`` or ``""`` clears one; the name cannot be
    cleared); ``set_tags`` replaces the tags, then ``add_tags`` and
    ``remove_tags`` apply.  Returns the names of what changed (empty: nothing)."""
    assert conn.in_transaction, "customers.edit must run inside db.write_tx"
    current = get(conn, cid)
    values = {k: clean_field(k, v) for k, v in changes.items()}
    new = {k: v for k, v in values.items() if current[k] != v}
    if new:
        _check_unique(conn, new, exclude=cid)
    tags = set(current["tags"])
    if set_tags is not None:
        tags = {clean_tag(t) for t in set_tags if str(t).strip()}
    tags |= {clean_tag(t) for t in add_tags}
    tags -= {clean_tag(t) for t in remove_tags}
    changed = list(new)
    if new:
        row = dict(new, **_derived(new), updated_at=db.now_iso())
        conn.execute(
            f"UPDATE customers SET {', '.join(f'{k} = ?' for k in row)} WHERE id = ?",
            [*row.values(), cid],
        )
    if tags != set(current["tags"]):
        changed.append("tags")
        conn.execute("DELETE FROM customer_tags WHERE customer_id = ?", (cid,))
        conn.executemany("INSERT INTO customer_tags (customer_id, tag) VALUES (?, ?)",
                         [(cid, t) for t in sorted(tags)])
        if not new:
            conn.execute("UPDATE customers SET updated_at = ? WHERE id = ?", (db.now_iso(), cid))
    if changed:
        db.audit(conn, "update", "customer", cid)
    return changed


def _customer_refs(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """``(table, column, on_delete)`` for every single-column foreign key that
    points at ``customers(id)``, found with ``PRAGMA foreign_key_list`` so that
    tables added later (orders, ...) are included."""
    out = []
    tables = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    for table in tables:
        fks: dict[int, list] = {}
        for fk in conn.execute("SELECT * FROM pragma_foreign_key_list(?)", (table,)):
            fks.setdefault(fk["id"], []).append(fk)
        for parts in fks.values():
            fk = parts[0]
            if len(parts) == 1 and fk["table"].lower() == "customers" and fk["to"] in (None, "id"):
                out.append((table, fk["from"], (fk["on_delete"] or "NO ACTION").upper()))
    return out


def _orders_count(conn: sqlite3.Connection, cid: int) -> int:
    if not _table_exists(conn, "orders"):
        return 0
    cols = {r[1] for r in conn.execute("SELECT * FROM pragma_table_info('orders')")}
    if "customer_id" not in cols:
        return 0
    return conn.execute("SELECT count(*) FROM orders WHERE customer_id = ?", (cid,)).fetchone()[0]


def blocking_records(conn: sqlite3.Connection, cid: int) -> dict[str, int]:
    """Records that keep a customer from being deleted: its orders, and rows
    of any table whose foreign key to customers does not cascade."""
    found: dict[str, int] = {}
    orders = _orders_count(conn, cid)
    if orders:
        found["orders"] = orders
    for table, col, on_delete in _customer_refs(conn):
        if on_delete in ("CASCADE", "SET NULL", "SET DEFAULT") or table in found:
            continue
        n = conn.execute(f"SELECT count(*) FROM {_q(table)} WHERE {_q(col)} = ?", (cid,)).fetchone()[0]
        if n:
            found[table] = found.get(table, 0) + n
    return found


def delete(conn: sqlite3.Connection, cid: int, *, force: bool = False) -> str:
    """Delete a customer and its tags, interactions, ratings and tasks.  A
    customer with orders is refused, or with ``force`` archived instead.
    Returns ``"deleted"``, ``"archived"`` or ``"already archived"``."""
    assert conn.in_transaction, "customers.delete must run inside db.write_tx"
    current = get(conn, cid)
    blocking = blocking_records(conn, cid)
    if blocking:
        what = ", ".join(f"{n} {t}" for t, n in blocking.items())
        if not force:
            raise BusinessRule(
                f"customer {cid} ({current['name']}) has {what} and cannot be deleted",
                "use --force to archive it instead: hidden from lists, records kept",
            )
        if current["archived_at"]:
            return "already archived"
        now = db.now_iso()
        conn.execute("UPDATE customers SET archived_at = ?, updated_at = ? WHERE id = ?", (now, now, cid))
        db.audit(conn, "archive", "customer", cid)
        return "archived"
    conn.execute("DELETE FROM customers WHERE id = ?", (cid,))
    db.audit(conn, "delete", "customer", cid)
    return "deleted"


def restore(conn: sqlite3.Connection, cid: int) -> bool:
    """Un-archive a customer; False if it was not archived."""
    assert conn.in_transaction, "customers.restore must run inside db.write_tx"
    if not get(conn, cid)["archived_at"]:
        return False
    conn.execute("UPDATE customers SET archived_at = NULL, updated_at = ? WHERE id = ?", (db.now_iso(), cid))
    db.audit(conn, "restore", "customer", cid)
    return True


# --------------------------------------------------------------------------- listing


@dataclass
class Filters:
    """What ``customer list`` and ``customer sample`` select; all AND together."""

    search: str | None = None
    segment: str | None = None
    region: str | None = None
    city: str | None = None
    owner: str | None = None
    tags: Sequence[str] = field(default_factory=tuple)
    since: date | str | None = None
    archived: str = "active"  # active | archived | all


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def where(filters: Filters | None) -> tuple[str, list[Any]]:
    """``" WHERE ..."`` (or ``""``) and its parameters for ``filters``, over
    customers ``c``: the filters of ``customer list``, shared with exports."""
    f = filters or Filters()
    clauses: list[str] = []
    params: list[Any] = []
    if f.archived not in _ARCHIVED_MODES:
        raise ValidationError(f"unknown archived mode {f.archived!r}")
    if f.archived == "active":
        clauses.append("c.archived_at IS NULL")
    elif f.archived == "archived":
        clauses.append("c.archived_at IS NOT NULL")
    if f.search is not None:
        term = validate.text(f.search, field="search text", max_len=200)
        if term is None:
            raise ValidationError("the search text is empty", "give some text to --search")
        key = validate.name_key(term)
        esc = " ESCAPE '\\'" if any(ch in key for ch in "\\%_") else ""  # slower: only if needed
        pattern = _like(key) if esc else f"%{key}%"
        ors = [f"c.{col} LIKE ?{esc}" for col in ("name_key", "company_key", "email_key")]
        params += [pattern] * 3
        digits = re.sub(r"\D", "", term)
        if len(digits) >= 3 and re.fullmatch(r"\+?[\d\s().\-/]+", term):
            ors.append("c.phone LIKE ?")
            params.append(f"%{digits}%")
        clauses.append("(" + " OR ".join(ors) + ")")
    for name in ("segment", "region", "city", "owner"):
        value = getattr(f, name)
        if value is not None:
            v = validate.text(value, field=name)
            if v is None:
                clauses.append(f"c.{name} IS NULL")
            else:
                clauses.append(f"c.{name} = ?")
                params.append(v)
    for tag in f.tags:
        clauses.append("c.id IN (SELECT customer_id FROM customer_tags WHERE tag = ?)")
        params.append(clean_tag(tag))
    if f.since is not None:
        since = validate.parse_date(f.since, field="--since")
        clauses.append("c.created_at >= ?")  # from local midnight, as UTC like created_at
        params.append(validate.parse_datetime(since.isoformat(), field="--since"))
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def parse_sort(spec: str | None) -> list[tuple[str, bool]]:
    """``"-created_at,name"`` -> ``[("created_at", True), ("name", False)]``
    (True: descending).  Unknown fields are refused, naming the allowed ones."""
    if spec is None:
        return [("id", False)]
    out = []
    for part in spec.split(","):
        p = part.strip()
        desc = p.startswith("-")
        p = p.lstrip("+-").strip().lower()
        if p not in SORT_FIELDS:
            shown = part.strip() or "(empty)"
            raise ValidationError(f"cannot sort by {shown!r}",
                                  "sort by one of " + ", ".join(SORT_FIELDS))
        out.append((p, desc))
    return out


def _order_by(sort: list[tuple[str, bool]], *, scan: bool = False) -> str:
    """Blanks sort last either way (SQLite puts NULL first when ascending),
    ties by id.  ``scan``: the WHERE clause reads every row anyway (a text
    search), so sort the matches rather than walk a sort index and look up
    every row in it (5x slower when matches are few)."""
    terms = []
    for name, desc in sort:
        col = ("+" if scan and name != "id" else "") + SORT_FIELDS[name]
        if desc:
            terms.append(f"{col} DESC")
        else:
            terms.append(f"{col} ASC" + ("" if name in _NOT_NULL_SORT else " NULLS LAST"))
    if "id" not in [n for n, _ in sort]:
        terms.append("c.id ASC")
    return " ORDER BY " + ", ".join(terms)


_LIST_SQL = (
    "SELECT c.*, (SELECT group_concat(tag, ',') FROM "
    "(SELECT tag FROM customer_tags t WHERE t.customer_id = c.id ORDER BY tag)) AS tag_list "
    "FROM customers c"
)


def _list_sql(filters: Filters | None, sort: str | None, limit: int | None) -> tuple[str, list[Any]]:
    """Without a limit: the rows with their tags.  With one: only the page of
    ids (the sorter then holds ids and sort keys, and tags are read for the
    page only, by ``_rows_by_ids``)."""
    clause, params = where(filters)
    order = _order_by(parse_sort(sort), scan=bool(filters and filters.search is not None))
    if limit is None:
        return _LIST_SQL + clause + order, params
    validate.positive_int(limit, field="--limit")
    return "SELECT c.id FROM customers c" + clause + order + " LIMIT ?", [*params, limit]


def _rows_by_ids(conn: sqlite3.Connection, ids: Sequence[int]) -> list[dict[str, Any]]:
    """Listing rows (with tags) for these ids, in this order."""
    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        part = list(ids[start:start + 500])
        sql = _LIST_SQL + f" WHERE c.id IN ({', '.join('?' * len(part))})"
        for r in conn.execute(sql, part):
            found[r["id"]] = _listed(r)
    return [found[i] for i in ids if i in found]


def _listed(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    tag_list = out.pop("tag_list")
    out["tags"] = tag_list.split(",") if tag_list else []
    return out


def search(
    conn: sqlite3.Connection,
    filters: Filters | None = None,
    *,
    sort: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Customers matching ``filters``, sorted (``parse_sort``), at most ``limit``."""
    sql, params = _list_sql(filters, sort, limit)
    if limit is None:
        return [_listed(r) for r in conn.execute(sql, params)]
    return _rows_by_ids(conn, [r[0] for r in conn.execute(sql, params)])


def count(conn: sqlite3.Connection, filters: Filters | None = None) -> int:
    clause, params = where(filters)
    return conn.execute("SELECT count(*) FROM customers c" + clause, params).fetchone()[0]


def query_plan(conn: sqlite3.Connection, filters: Filters | None = None, *, sort: str | None = None,
               limit: int | None = 20) -> list[str]:
    """SQLite's plan for a listing (for tests and benchmarks)."""
    sql, params = _list_sql(filters, sort, limit)
    return [r["detail"] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]


# --------------------------------------------------------------------------- interactions, ratings, tasks


def log(
    conn: sqlite3.Connection,
    cid: int,
    kind: str,
    text: str,
    *,
    at: str | None = None,
    follow_up: date | str | None = None,
    today: date | None = None,
) -> tuple[int, int | None]:
    """Record an interaction (``at``: ISO date-time, default now); with
    ``follow_up`` (a date) also a task.  Returns (interaction id, task id)."""
    assert conn.in_transaction, "customers.log must run inside db.write_tx"
    get(conn, cid)
    kind = parse_type(kind)
    body = validate.text(text, field="text", max_len=10_000, required=True)
    when = validate.parse_datetime(at, field="--at") if at else db.now_iso()
    due = validate.parse_date(follow_up, field="--follow-up", today=_today(today)) if follow_up else None
    now = db.now_iso()
    cur = conn.execute(
        "INSERT INTO interactions (customer_id, kind, text, at, os_user, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (cid, kind, body, when, db.os_user(), now),
    )
    iid = int(cur.lastrowid)
    db.audit(conn, "log_interaction", "customer", cid)
    task_id = None
    if due is not None:
        task_id = _add_task(conn, cid, due, f"Follow up: {body}", interaction_id=iid)
    return iid, task_id


def rate(conn: sqlite3.Connection, cid: int, score: int | str, comment: str | None = None) -> int:
    """Record a rating (1-5); returns its id."""
    assert conn.in_transaction, "customers.rate must run inside db.write_tx"
    get(conn, cid)
    value = parse_score(score)
    note = validate.text(comment, field="comment", max_len=2000)
    cur = conn.execute("INSERT INTO ratings (customer_id, score, comment, at) VALUES (?, ?, ?, ?)",
                       (cid, value, note, db.now_iso()))
    db.audit(conn, "rate", "customer", cid)
    return int(cur.lastrowid)


def remind(conn: sqlite3.Connection, cid: int, due: date | str, text: str,
           *, today: date | None = None) -> int:
    """A follow-up task for a customer; returns its id."""
    assert conn.in_transaction, "customers.remind must run inside db.write_tx"
    get(conn, cid)
    day = validate.parse_date(due, field="date", today=_today(today))
    body = validate.text(text, field="text", max_len=2000, required=True)
    return _add_task(conn, cid, day, body)


def _add_task(conn: sqlite3.Connection, cid: int, due: date, text: str,
              *, interaction_id: int | None = None) -> int:
    cur = conn.execute(
        "INSERT INTO tasks (customer_id, due, text, interaction_id, created_at) VALUES (?, ?, ?, ?, ?)",
        (cid, due.isoformat(), text, interaction_id, db.now_iso()),
    )
    db.audit(conn, "add_task", "customer", cid)
    return int(cur.lastrowid)


def complete_task(conn: sqlite3.Connection, task_id: int) -> int:
    """Mark a task done; returns its customer's id."""
    assert conn.in_transaction, "customers.complete_task must run inside db.write_tx"
    row = conn.execute("SELECT customer_id, done_at FROM tasks WHERE id = ?", (task_id,)).fetchone()
    if row is None:
        raise NotFound(f"no task with id {task_id}", "see 'salescrm agenda --days 365' for open tasks")
    if row["done_at"]:
        raise IllegalTransition(f"task {task_id} is already done (at {row['done_at']})")
    conn.execute("UPDATE tasks SET done_at = ? WHERE id = ?", (db.now_iso(), task_id))
    db.audit(conn, "complete_task", "customer", row["customer_id"])
    return int(row["customer_id"])


def _task_row(row: sqlite3.Row, today: date) -> dict[str, Any]:
    out = dict(row)
    due = date.fromisoformat(out["due"])
    late = (today - due).days
    out["days_overdue"] = max(late, 0)
    out["status"] = "overdue" if late > 0 else "today" if late == 0 else "upcoming"
    return out


def agenda(conn: sqlite3.Connection, *, days: int = 0, owner: str | None = None,
           today: date | None = None) -> list[dict[str, Any]]:
    """Open tasks due within ``days`` days from today (overdue included),
    oldest first, for customers that are not archived."""
    if days < 0:
        raise ValidationError("--days must not be negative")
    day = _today(today)
    until = (day + timedelta(days=days)).isoformat()
    sql = (
        "SELECT t.id, t.due, t.text, t.customer_id, c.name AS customer, c.owner"
        " FROM tasks t JOIN customers c ON c.id = t.customer_id"
        " WHERE t.done_at IS NULL AND t.due <= ? AND c.archived_at IS NULL"
    )
    params: list[Any] = [until]
    if owner is not None:
        sql += " AND c.owner = ?"
        params.append(validate.text(owner, field="owner"))
    sql += " ORDER BY t.due, t.id"
    return [_task_row(r, day) for r in conn.execute(sql, params)]


# --------------------------------------------------------------------------- the profile


_ORDER_KEYS = ("order_count", "revenue", "open_balance", "last_order_date")


def orders_summary(conn: sqlite3.Connection, cid: int) -> dict[str, Any]:
    """Order count, revenue and open balance (cents), last order date, as
    ``salescrm.orders.customer_summary`` gives them; zeros without orders.
    Unless that module is loaded already, the figures come from the same
    query here: ``customer show`` need not import the orders module (and with
    it promotions, stock and products)."""
    zero = {"order_count": 0, "revenue": 0, "open_balance": 0, "last_order_date": None}
    if not _table_exists(conn, "orders"):
        return zero
    summary_fn = getattr(sys.modules.get("salescrm.orders"), "customer_summary", booked_summary)
    try:
        got = summary_fn(conn, cid) or {}
    except sqlite3.OperationalError:  # its tables not there yet
        return zero
    out = dict(zero)
    for key in _ORDER_KEYS:
        if got.get(key) is not None:
            out[key] = got[key]
    return out


def booked_summary(conn: sqlite3.Connection, cid: int) -> dict[str, Any]:
    """Booked orders (not draft or cancelled) only: order_count; revenue:
    cents billed (total incl. tax and shipping) net of returns; open_balance:
    cents still owed; last_order_date: ISO date or None.  (Here, not in
    ``salescrm.orders``, so that ``customer show`` need not import that.)"""
    from salescrm import lifecycle

    marks = ",".join("?" * len(lifecycle.BOOKED))
    row = conn.execute(
        "SELECT count(*), coalesce(sum(total_cents - returned_cents), 0),"
        " coalesce(sum(total_cents - returned_cents - paid_cents), 0), max(order_date)"
        f" FROM orders WHERE customer_id = ? AND status IN ({marks})",
        (cid, *lifecycle.BOOKED),
    ).fetchone()
    return {"order_count": int(row[0]), "revenue": int(row[1]), "open_balance": int(row[2]),
            "last_order_date": row[3]}


def profile(conn: sqlite3.Connection, cid: int, *, interactions: int = 10,
            today: date | None = None) -> dict[str, Any]:
    """Everything ``customer show`` prints: ``customer`` (fields, tags, rating
    average and count, orders summary), ``interactions`` (latest first),
    ``tasks`` (open ones, oldest first) and ``ratings`` (latest five)."""
    customer = get(conn, cid)
    total, n = conn.execute(
        "SELECT coalesce(sum(score), 0), count(*) FROM ratings WHERE customer_id = ?", (cid,)
    ).fetchone()
    customer["rating_count"] = n
    customer["rating_avg"] = (
        (Decimal(total) / Decimal(n)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) if n else None
    )
    customer.update(orders_summary(conn, cid))
    latest = [dict(r) for r in conn.execute(
        "SELECT id, at, kind AS type, text, os_user FROM interactions WHERE customer_id = ?"
        " ORDER BY at DESC, id DESC LIMIT ?", (cid, max(interactions, 0)))]
    day = _today(today)
    tasks = [_task_row(r, day) for r in conn.execute(
        "SELECT id, due, text FROM tasks WHERE customer_id = ? AND done_at IS NULL ORDER BY due, id",
        (cid,))]
    ratings = [dict(r) for r in conn.execute(
        "SELECT id, at, score, comment FROM ratings WHERE customer_id = ? ORDER BY at DESC, id DESC LIMIT 5",
        (cid,))]
    return {"customer": customer, "interactions": latest, "tasks": tasks, "ratings": ratings}


# --------------------------------------------------------------------------- duplicates and merging


# ``ann+shop@x.com`` and ``ann@x.com`` are likely the same person.
_EMAIL_DUPE_KEY = (
    "CASE WHEN instr(email_key, '+') BETWEEN 1 AND instr(email_key, '@')"
    " THEN substr(email_key, 1, instr(email_key, '+') - 1) || substr(email_key, instr(email_key, '@'))"
    " ELSE email_key END"
)
_DUPE_RULES = (
    ("email", _EMAIL_DUPE_KEY, "email_key IS NOT NULL"),
    ("phone", "ltrim(phone, '+')", "phone IS NOT NULL"),
    # spaces ignored: "王 芳" and "王芳" are the same name
    ("name and company", "replace(name_key, ' ', '') || char(31) || replace(company_key, ' ', '')",
     "company_key IS NOT NULL"),
)


def dupes(conn: sqlite3.Connection, *, include_archived: bool = False) -> list[dict[str, Any]]:
    """Likely duplicates: customers with the same e-mail (ignoring case and
    ``+suffix``), the same phone digits, or the same name within the same
    company.  One row per member; ``group`` numbers the groups and ``reason``
    says why (several reasons for the same set are joined)."""
    active = "" if include_archived else " AND archived_at IS NULL"
    groups: dict[tuple[int, ...], list[str]] = {}
    for reason, key, present in _DUPE_RULES:
        sql = (f"SELECT group_concat(id) FROM customers WHERE {present}{active}"
               f" GROUP BY {key} HAVING count(*) > 1")
        for (members,) in conn.execute(sql):
            ids = tuple(sorted(int(i) for i in members.split(",")))
            reasons = groups.setdefault(ids, [])
            if reason not in reasons:
                reasons.append(reason)
    wanted = sorted({i for ids in groups for i in ids})
    people: dict[int, sqlite3.Row] = {}
    for start in range(0, len(wanted), 500):
        part = wanted[start:start + 500]
        for r in conn.execute(
            "SELECT id, name, company, email, phone, created_at FROM customers"
            f" WHERE id IN ({', '.join('?' * len(part))})", part):
            people[r["id"]] = r
    out = []
    for number, ids in enumerate(sorted(groups), start=1):
        reason = ", ".join(groups[ids])
        for i in ids:
            m = people[i]
            out.append({"group": number, "reason": reason, "id": i, "name": m["name"],
                        "company": m["company"], "email": m["email"], "phone": m["phone"],
                        "created_at": m["created_at"]})
    return out


def references(conn: sqlite3.Connection, cid: int) -> dict[str, int]:
    """How many rows of each table point at a customer (what a merge moves)."""
    out: dict[str, int] = {}
    for table, col, _ in _customer_refs(conn):
        n = conn.execute(f"SELECT count(*) FROM {_q(table)} WHERE {_q(col)} = ?", (cid,)).fetchone()[0]
        if n:
            key = table if col == "customer_id" else f"{table}.{col}"
            out[key] = out.get(key, 0) + n
    return out


def merge(conn: sqlite3.Connection, keep: int, other: int) -> dict[str, Any]:
    """Move every record of ``other`` onto ``keep``: rows of every table with
    a foreign key to customers, tags (united); fill ``keep``'s empty fields
    from ``other`` (differing values are kept in the notes), delete ``other``
    and record the merge.  Returns ``{"moved": {table: n}, "filled": [...]}``."""
    assert conn.in_transaction, "customers.merge must run inside db.write_tx"
    if keep == other:
        raise ValidationError(f"cannot merge customer {keep} into itself")
    k = get(conn, keep)
    o = get(conn, other)
    moved: dict[str, int] = {}
    if o["tags"]:
        conn.execute(
            "INSERT OR IGNORE INTO customer_tags (customer_id, tag)"
            " SELECT ?, tag FROM customer_tags WHERE customer_id = ?", (keep, other))
        conn.execute("DELETE FROM customer_tags WHERE customer_id = ?", (other,))
        moved["customer_tags"] = len(o["tags"])
    for table, col, _ in _customer_refs(conn):
        if table == "customer_tags":
            continue
        try:
            n = conn.execute(f"UPDATE {_q(table)} SET {_q(col)} = ? WHERE {_q(col)} = ?",
                             (keep, other)).rowcount
        except sqlite3.IntegrityError as exc:
            raise Conflict(
                f"cannot move the {table} records of customer {other} onto customer {keep}: {exc}",
                "both customers have a record that may exist only once; resolve it by hand first",
            ) from None
        if n:
            key = table if col == "customer_id" else f"{table}.{col}"
            moved[key] = moved.get(key, 0) + n
    filled: dict[str, Any] = {}
    differing: list[str] = []
    for f in _MERGE_FIELDS:
        if o[f] is None:
            continue
        if k[f] is None:
            filled[f] = o[f]
        elif k[f] != o[f]:
            shown = money.fmt(o[f]) if f == "credit_limit" else o[f]
            differing.append(f"{f.replace('_', ' ')}: {shown}")
    if o["name"] != k["name"]:
        differing.insert(0, f"name: {o['name']}")
    notes = [n for n in (k["notes"], o["notes"]) if n]
    if differing:
        notes.append(f"From merged customer {other}: " + "; ".join(differing))
    merged_notes = "\n".join(notes) if notes else None
    if merged_notes != k["notes"]:
        filled["notes"] = merged_notes
    if o["created_at"] < k["created_at"]:
        filled["created_at"] = o["created_at"]
    conn.execute("DELETE FROM customers WHERE id = ?", (other,))
    if filled:
        row = dict(filled, **_derived(filled), updated_at=db.now_iso())
        conn.execute(f"UPDATE customers SET {', '.join(f'{c} = ?' for c in row)} WHERE id = ?",
                     [*row.values(), keep])
    else:
        conn.execute("UPDATE customers SET updated_at = ? WHERE id = ?", (db.now_iso(), keep))
    conn.execute(
        "INSERT INTO customer_merges (kept_id, merged_id, at, os_user, moved) VALUES (?, ?, ?, ?, ?)",
        (keep, other, db.now_iso(), db.os_user(), json.dumps(moved, sort_keys=True)),
    )
    db.audit(conn, "merge", "customer", keep)
    db.audit(conn, "merged_away", "customer", other)
    return {"moved": moved, "filled": sorted(f for f in filled if f != "created_at")}


# --------------------------------------------------------------------------- sampling


def allocate(sizes: Mapping[str, int], n: int) -> dict[str, int]:
    """Proportional allocation of ``n`` over strata of the given sizes by the
    largest-remainder method: quotas sum to exactly ``n`` and none exceeds its
    stratum.  Ties go to the larger stratum, then the name."""
    total = sum(sizes.values())
    if n < 0 or n > total:
        raise ValidationError(f"cannot draw {n} from {total}")
    if total == 0:
        return {k: 0 for k in sizes}
    quotas = {k: n * s // total for k, s in sizes.items()}
    left = n - sum(quotas.values())
    order = sorted(sizes, key=lambda k: (-(n * sizes[k] % total), -sizes[k], k))
    for k in order[:left]:
        quotas[k] += 1
    return quotas


def sample(
    conn: sqlite3.Connection,
    n: int,
    *,
    stratify: str | None = None,
    seed: int | None = None,
    filters: Filters | None = None,
) -> dict[str, Any]:
    """A random sample of ``n`` matching customers, simple or (with
    ``stratify``) proportional stratified.  The same seed and data give the
    same sample.  Returns ``{"rows": [...], "allocation": [...], "seed": s,
    "population": N}``; each row has ``stratum``."""
    import random

    validate.positive_int(n, field="--n")
    if stratify is not None:
        stratify = stratify.strip().lower()
        if stratify not in STRATIFY_FIELDS:
            raise ValidationError(f"cannot stratify by {stratify!r}",
                                  "stratify by one of " + ", ".join(STRATIFY_FIELDS))
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    clause, params = where(filters)
    column = f"c.{stratify}" if stratify else "NULL"
    candidates = conn.execute(f"SELECT c.id, {column} AS stratum FROM customers c{clause} ORDER BY c.id",
                              params).fetchall()
    population = len(candidates)
    if n > population:
        raise ValidationError(
            f"cannot sample {n} customers: only {population} match",
            f"ask for at most {population}, or loosen the filters" if population else "loosen the filters",
        )
    rng = random.Random(seed)
    strata: dict[str, list[int]] = {}
    for cid, value in candidates:
        label = "all" if not stratify else (value if value is not None else "(none)")
        strata.setdefault(label, []).append(cid)
    quotas = allocate({k: len(v) for k, v in strata.items()}, n)
    chosen: dict[int, str] = {}
    for label in sorted(strata):
        for cid in rng.sample(strata[label], quotas[label]):
            chosen[cid] = label
    rows = _rows_by_ids(conn, sorted(chosen))
    for row in rows:
        row["stratum"] = chosen[row["id"]]
    rows.sort(key=lambda r: (r["stratum"], r["id"]))
    allocation = [{"stratum": k, "population": len(strata[k]), "sampled": quotas[k]} for k in sorted(strata)]
    return {"rows": rows, "allocation": allocation, "seed": seed, "population": population}
