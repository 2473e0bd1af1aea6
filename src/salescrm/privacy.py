"""The rights of the people in the database: erasure (``forget``) and access
(``export``).  Logic only: no Typer, no Rich.

Forget
------
``forget`` erases what identifies a customer and keeps what the business
must keep (orders, money, stock, dates, ids) under an anonymous label,
``forgotten customer #12``:

* the profile: name (replaced by the label), company, e-mail, phone,
  address, city, notes and external id are cleared; segment, region,
  country, source, owner, credit limit and payment terms stay for reports;
  the customer is archived and marked ``forgotten_at``;
* tags are deleted; interaction and task texts become ``[erased]`` (kind,
  time and due date stay); rating comments are cleared (scores stay);
* the customer's orders keep their lines and money; their notes, shipment
  tracking numbers and return reasons are cleared;
* wherever else one of the customer's identifiers (name, company, e-mail,
  phone, address, external id, and the texts cleared above) appears in a
  text column of a row that belongs to the customer or to one of its orders
  -- a tracking number copied into the order history, a payment reference,
  an adjustment's description -- it is replaced by ``[erased]``; in prose
  columns (``PROSE``: a cancel reason in the history, a reference) so are
  the single words of the name and company and the e-mail's local part.
  Order events and payments are append-only: for this, and only for this,
  their guard triggers are dropped and recreated inside the same
  transaction.  A nickname or a misspelling in free text cannot be found;
* the audit trail records ``forget`` with the customer's id, nothing else.

Getting the bytes off the disk: every connection runs with
``secure_delete = ON``, so SQLite overwrites deleted and replaced content
with zeros in the pages it rewrites.  In WAL mode the old page images still
sit in the database file until a checkpoint copies the new pages over them,
and in the ``-wal`` file until it is reset; ``purge`` runs
``wal_checkpoint(TRUNCATE)`` after the commit, which does both (the WAL is
truncated to zero bytes) as soon as no other connection is reading.  Nothing
can reach copies outside the file: backups and exports made earlier, or
disk blocks the file system has freed.

Export
------
``export`` gathers everything stored about one customer for a subject
access request: the profile, then every row of every table that points at
the customer, and (following the foreign keys) every row that points at
those rows: orders, lines, adjustments, payments, shipments, returns,
events, invoices, stock movements of its orders, promotions used, tags,
interactions, ratings, tasks, merge history; and the audit entries about
it.  Tables added later are included without changing this module.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from salescrm import db, money, validate
from salescrm.errors import NotFound

ERASED = "[erased]"

#: Profile columns cleared by ``forget`` (the name gets the label instead).
CLEARED_FIELDS = ("company", "company_key", "email", "email_key", "phone", "address", "city", "notes",
                  "external_id")

#: Free-text columns of related rows cleared or overwritten by ``forget``:
#: (table, column, how the row belongs to the customer, replacement).
_BY_CUSTOMER = "customer_id = ?"
_BY_ORDER = "order_id IN (SELECT id FROM orders WHERE customer_id = ?)"
ERASED_TEXTS = (
    ("interactions", "text", _BY_CUSTOMER, ERASED),
    ("tasks", "text", _BY_CUSTOMER, ERASED),
    ("ratings", "comment", _BY_CUSTOMER, None),
    ("orders", "notes", _BY_CUSTOMER, None),
    ("shipments", "tracking", _BY_ORDER, None),
    ("returns", "reason", _BY_ORDER, None),
)

#: Identifiers shorter than this are not searched for in other texts (a
#: two-letter name would erase half of every order history).
MIN_NEEDLE = 4


def label(cid: int) -> str:
    """The name a forgotten customer keeps."""
    return f"forgotten customer #{cid}"


def _q(identifier: str) -> str:
    """Quote an identifier that comes from the schema, never from a user."""
    return '"' + identifier.replace('"', '""') + '"'


def _tables(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]


def _columns(conn: sqlite3.Connection, table: str) -> list[tuple[str, str]]:
    return [(r[1], (r[2] or "").upper()) for r in conn.execute("SELECT * FROM pragma_table_info(?)", (table,))]


def _foreign_keys(conn: sqlite3.Connection) -> list[tuple[str, str, str, str | None]]:
    """``(child table, child column, parent table, parent column)`` of every
    single-column foreign key (parent column None: the parent's primary key)."""
    out = []
    for table in _tables(conn):
        groups: dict[int, list] = {}
        for fk in conn.execute("SELECT * FROM pragma_foreign_key_list(?)", (table,)):
            groups.setdefault(fk["id"], []).append(fk)
        for parts in groups.values():
            if len(parts) == 1:
                fk = parts[0]
                out.append((table, fk["from"], fk["table"], fk["to"]))
    return out


def _primary_key(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute("SELECT * FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk", (table,))]


def _has_rowid(conn: sqlite3.Connection, table: str) -> bool:
    row = conn.execute("SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?", (table,)).fetchone()
    return not (row and row[0])


def _related(conn: sqlite3.Connection, cid: int) -> dict[str, dict[Any, dict[str, Any]]]:
    """Rows that belong to customer ``cid``, by table, keyed by rowid (or by
    the primary key's values for a WITHOUT ROWID table): rows whose foreign
    key points at the customer, rows pointing at those, and so on until
    nothing new turns up."""
    fks = [fk for fk in _foreign_keys(conn) if fk[0] != "customers"]
    found: dict[str, dict[Any, dict[str, Any]]] = {}
    changed = True
    while changed:
        changed = False
        for child, col, parent, pcol in fks:
            if parent.lower() == "customers":
                keys = {cid}
            elif parent in found:
                pcols = [pcol] if pcol else _primary_key(conn, parent)
                if len(pcols) != 1:
                    continue
                keys = {r[pcols[0]] for r in found[parent].values() if r.get(pcols[0]) is not None}
            else:
                continue
            if not keys:
                continue
            bucket = found.setdefault(child, {})
            for key, row in _rows_where_in(conn, child, col, sorted(keys)):
                if key not in bucket:
                    bucket[key] = row
                    changed = True
    return {t: rows for t, rows in found.items() if rows}


def _rows_where_in(conn: sqlite3.Connection, table: str, column: str, keys: list) -> list[tuple[Any, dict]]:
    rowid = _has_rowid(conn, table)
    pk = [] if rowid else _primary_key(conn, table)
    select = "rowid AS __key__, *" if rowid else "*"
    out = []
    for start in range(0, len(keys), 500):
        part = keys[start:start + 500]
        sql = f"SELECT {select} FROM {_q(table)} WHERE {_q(column)} IN ({', '.join('?' * len(part))})"
        for r in conn.execute(sql, part):
            row = dict(r)
            key = row.pop("__key__") if rowid else tuple(row[c] for c in pk)
            out.append((key, row))
    return out


def related_rows(conn: sqlite3.Connection, cid: int) -> dict[str, list[dict[str, Any]]]:
    """Every row that belongs to customer ``cid`` (not the customer row
    itself), by table in name order, rows in key order."""
    found = _related(conn, cid)
    return {t: [found[t][k] for k in sorted(found[t])] for t in sorted(found)}


# --------------------------------------------------------------------------- export


def export(conn: sqlite3.Connection, cid: int) -> dict[str, Any]:
    """Everything stored about customer ``cid`` (subject access request).
    Money columns (integer cents at rest) are given as decimal strings."""
    row = conn.execute("SELECT * FROM customers WHERE id = ?", (cid,)).fetchone()
    if row is None:
        raise NotFound(f"no customer with id {cid}", "see 'salescrm customer list' for ids")
    records = related_rows(conn, cid)
    return {
        "subject_access_export": 1,
        "exported_at": db.now_iso(),
        "customer_id": cid,
        "money": "amounts are decimal strings in the order's currency (stored as integer cents)",
        "customer": _money_as_text(dict(row)),
        "records": {t: [_money_as_text(r) for r in rows] for t, rows in records.items()},
        "audit": _audit_about(conn, cid, records),
    }


def _audit_about(conn: sqlite3.Connection, cid: int, records: dict[str, list[dict[str, Any]]]) -> list[dict]:
    """Audit entries about the customer and about its records (an entity
    ``order`` is a row of ``orders``, and so on)."""
    wanted: dict[str, set[str]] = {"customer": {str(cid)}}
    for table, rows in records.items():
        if rows and "id" in rows[0]:
            wanted.setdefault(table.removesuffix("s"), set()).update(str(r["id"]) for r in rows)
    out = []
    for entity, ids in wanted.items():
        keys = sorted(ids)
        for start in range(0, len(keys), 500):
            part = keys[start:start + 500]
            out += [dict(r) for r in conn.execute(
                "SELECT id, at, os_user, command, action, entity, entity_id FROM audit WHERE entity = ?"
                f" AND entity_id IN ({', '.join('?' * len(part))})", [entity, *part])]
    return sorted(out, key=lambda r: r["id"])


def _money_as_text(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (money.fmt(v) if isinstance(v, int) and db.MONEY_COLUMN.search(k) else v)
            for k, v in row.items()}


# --------------------------------------------------------------------------- forget


def needles(customer: dict[str, Any]) -> list[str]:
    """The customer's identifiers to search for in other texts, longest first."""
    found = set()
    for key in ("name", "company", "email", "phone", "address", "external_id"):
        v = customer.get(key)
        if isinstance(v, str) and len(v.strip()) >= MIN_NEEDLE:
            found.add(v.strip())
    if customer.get("phone"):
        digits = re.sub(r"\D", "", customer["phone"])
        if len(digits) >= 6:
            found.add(digits)
    return _longest_first(found)


def name_words(customer: dict[str, Any]) -> list[str]:
    """Words of the name and company, and the e-mail's local part ("Zelda",
    "Quarrington", "zelda.q"): searched for in prose only (``PROSE``), where
    someone may have written "Zelda called to cancel"."""
    words = set()
    for key in ("name", "company"):
        for w in re.split(r"[\s,.;:()/&'\"-]+", customer.get(key) or ""):
            if len(w) >= MIN_NEEDLE:
                words.add(w)
    local = (customer.get("email") or "").split("@")[0]
    if len(local) >= MIN_NEEDLE:
        words.add(local)
    return _longest_first(words)


#: Columns that hold prose (reasons, references, details) rather than codes
#: or product names: the customer's name words are erased there too.
PROSE = frozenset({"detail", "reference", "reason", "note", "notes", "text", "comment"})


def _longest_first(words: set[str]) -> list[str]:
    return sorted(words, key=lambda w: (-len(w), w))


def _cleared_texts(conn: sqlite3.Connection, cid: int, tables: set[str]) -> list[str]:
    out = []
    for table, column, where, _ in ERASED_TEXTS:
        if table not in tables or (where == _BY_ORDER and "orders" not in tables):
            continue
        for (v,) in conn.execute(f"SELECT DISTINCT {_q(column)} FROM {_q(table)} WHERE {where}", (cid,)):
            if isinstance(v, str) and len(v.strip()) >= MIN_NEEDLE and v.strip() != ERASED:
                out.append(v.strip())
    return out


def forget(conn: sqlite3.Connection, cid: int) -> dict[str, Any]:
    """Erase customer ``cid``'s personal data (see the module's doc); call
    inside ``db.write_tx``.  Returns ``{"customer", "status", "erased"}``
    where ``erased`` names the tables where something was erased."""
    assert conn.in_transaction, "privacy.forget must run inside db.write_tx"
    row = conn.execute("SELECT * FROM customers WHERE id = ?", (cid,)).fetchone()
    if row is None:
        raise NotFound(f"no customer with id {cid}", "see 'salescrm customer list' for ids")
    customer = dict(row)
    if customer["forgotten_at"]:
        return {"customer": cid, "status": "already forgotten", "erased": []}
    tables = set(_tables(conn))
    erased: set[str] = set()
    # Texts elsewhere first, while the identifiers can still be read.  The
    # texts cleared below are searched for too: a tracking number or a return
    # reason is copied into the order's (append-only) history.
    words = _longest_first(set(needles(customer) + _cleared_texts(conn, cid, tables)))
    erased.update(_scrub_identifiers(conn, cid, words, name_words(customer)))
    for table, column, where, value in ERASED_TEXTS:
        if table not in tables or (where == _BY_ORDER and "orders" not in tables):
            continue
        n = conn.execute(
            f"UPDATE {_q(table)} SET {_q(column)} = ? WHERE {where} AND {_q(column)} IS NOT NULL"
            f" AND {_q(column)} IS NOT ?", (value, cid, value)).rowcount
        if n:
            erased.add(table)
    if conn.execute("DELETE FROM customer_tags WHERE customer_id = ?", (cid,)).rowcount:
        erased.add("customer_tags")
    now = db.now_iso()
    name = label(cid)
    sets = ", ".join(f"{c} = NULL" for c in CLEARED_FIELDS)
    conn.execute(
        f"UPDATE customers SET name = ?, name_key = ?, {sets}, forgotten_at = ?,"
        " archived_at = coalesce(archived_at, ?), updated_at = ? WHERE id = ?",
        (name, validate.name_key(name), now, now, now, cid))
    erased.add("customers")
    db.audit(conn, "forget", "customer", cid)
    return {"customer": cid, "status": "forgotten", "erased": sorted(erased)}


def _scrub_identifiers(conn: sqlite3.Connection, cid: int, words: list[str], prose_words: list[str]) -> set[str]:
    """Replace the customer's identifiers (``words``) in every text column of
    every row that belongs to it (``related_rows``), and its name words in
    the ``PROSE`` columns; append-only tables too."""
    touched: set[str] = set()
    for table, rows in _related(conn, cid).items():
        hits = []
        for c, t in _columns(conn, table):
            if t not in ("TEXT", ""):
                continue
            look = _longest_first(set(words) | set(prose_words)) if c in PROSE else words
            folded = [w.casefold() for w in look]
            for key, r in rows.items():
                v = r.get(c)
                if isinstance(v, str) and any(w in v.casefold() for w in folded):
                    new = v
                    for w in look:
                        new = _replace_casefold(new, w)
                    hits.append((key, c, new))
        if not hits:
            continue
        pk = None if _has_rowid(conn, table) else _primary_key(conn, table)
        where = "rowid = ?" if pk is None else " AND ".join(f"{_q(c)} = ?" for c in pk)
        with _guards_lifted(conn, table):
            for key, col, new in hits:
                params = [key] if pk is None else list(key)
                conn.execute(f"UPDATE {_q(table)} SET {_q(col)} = ? WHERE {where}", [new, *params])
        touched.add(table)
    return touched


def _replace_casefold(text: str, word: str) -> str:
    return re.sub(re.escape(word), ERASED, text, flags=re.IGNORECASE)


class _guards_lifted:
    """Drop a table's ``BEFORE UPDATE`` guard triggers (append-only tables)
    and recreate them, unchanged, on the way out -- inside the caller's
    transaction, so no other connection ever sees the table unguarded."""

    def __init__(self, conn: sqlite3.Connection, table: str) -> None:
        self.conn = conn
        self.table = table
        self.saved: list[tuple[str, str]] = []

    def __enter__(self) -> None:
        rows = self.conn.execute(
            "SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = ?", (self.table,)).fetchall()
        for name, sql in rows:
            if re.search(r"\bBEFORE\s+UPDATE\b", sql, re.IGNORECASE) and "RAISE" in sql.upper():
                self.saved.append((name, sql))
                self.conn.execute(f"DROP TRIGGER {_q(name)}")

    def __exit__(self, *exc: object) -> None:
        for _name, sql in self.saved:
            self.conn.execute(sql)


def purge(conn: sqlite3.Connection) -> bool:
    """After a ``forget`` has committed: move the new pages into the
    database file and empty the WAL, so that the erased values are in
    neither.  False if another connection was reading and the WAL could not
    be emptied yet (it will be at that connection's next checkpoint)."""
    return db.checkpoint(conn)
