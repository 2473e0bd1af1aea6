"""The product catalogue.  No Typer, no Rich.

A product is stocked goods or a service (no stock).  Money is int cents;
the tax rate is a ``Decimal`` percent kept as normalised text.  On hand and
reserved are read from the ledger cache (see ``salescrm.stock``).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from salescrm import db, money, validate
from salescrm.errors import Conflict, NotFound, ValidationError

KINDS = ("goods", "service")
_SKU_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/+#-]{0,63}")

COLUMNS = (
    "id, sku, name, category, kind, unit, unit_cost, list_price, tax_rate, reorder_level,"
    " active, on_hand, reserved, on_hand - reserved AS available, created_at, updated_at"
)

SORTS = {
    "sku": "sku_key",
    "name": "name_key",
    "category": "category",
    "price": "list_price",
    "cost": "unit_cost",
    "on_hand": "on_hand",
    "available": "on_hand - reserved",
    "created_at": "id",
}


def sku_key(sku: str) -> str:
    return sku.strip().casefold()


def check_sku(value: str) -> str:
    v = (value or "").strip()
    if not _SKU_RE.fullmatch(v):
        raise ValidationError(
            f"not a valid SKU: {value!r}",
            "use 1-64 letters, digits and . _ / + # - (no spaces, ':' or '@'), starting with a letter or digit",
        )
    return v


def parse_tax_rate(value: str | Decimal | int) -> Decimal:
    rate = money.parse_percent(str(value), field="tax rate")
    if rate.as_tuple().exponent < -4:  # type: ignore[operator]
        raise ValidationError("tax rate has more than four decimals")
    return rate


def rate_text(rate: Decimal) -> str:
    return format(rate.normalize(), "f")


def _kind(value: str) -> str:
    v = (value or "").strip().lower()
    if v not in KINDS:
        raise ValidationError(f"kind must be goods or service, not {value!r}")
    return v


def _unit(value: str | None) -> str:
    v = validate.text(value, field="unit", max_len=20) or "pcs"
    return v


def _nonneg_int(value: int, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"{field} must be a whole number, zero or more")
    return value


def _cents(value: int, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{field} must be an amount in cents")  # library misuse
    if value < 0:
        raise ValidationError(f"{field} must not be negative")
    return value


def add(
    conn: sqlite3.Connection,
    *,
    sku: str,
    name: str,
    price: int,
    cost: int = 0,
    category: str | None = None,
    tax_rate: Decimal | str | None = None,
    kind: str = "goods",
    unit: str | None = None,
    reorder_level: int = 0,
) -> int:
    """Add a product; money in cents.  Returns its id."""
    assert conn.in_transaction, "products.add must run inside db.write_tx"
    sku = check_sku(sku)
    name_v = validate.text(name, field="name", max_len=200, required=True)
    assert name_v is not None
    if tax_rate is None:
        from salescrm import settings

        rate = settings.get(conn, "default_tax_rate")
    else:
        rate = parse_tax_rate(tax_rate)
    existing = conn.execute("SELECT sku FROM products WHERE sku_key = ?", (sku_key(sku),)).fetchone()
    if existing:
        raise Conflict(f"SKU {sku} already exists (as {existing[0]})",
                       "SKUs are unique whatever their case; use 'product edit' to change it")
    now = db.now_iso()
    cur = conn.execute(
        "INSERT INTO products (sku, sku_key, name, name_key, category, kind, unit, unit_cost,"
        " list_price, tax_rate, reorder_level, active, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
        (sku, sku_key(sku), name_v, validate.name_key(name_v),
         validate.text(category, field="category", max_len=100), _kind(kind), _unit(unit),
         _cents(cost, "unit cost"), _cents(price, "list price"), rate_text(rate),
         _nonneg_int(reorder_level, "reorder level"), now, now),
    )
    pid = int(cur.lastrowid or 0)
    db.audit(conn, "create", "product", pid)
    return pid


def _row(row: sqlite3.Row | None) -> dict[str, Any] | None:
    if row is None:
        return None
    d = dict(row)
    d["tax_rate"] = Decimal(d["tax_rate"])
    d["active"] = bool(d["active"])
    return d


def find(conn: sqlite3.Connection, sku: str) -> dict[str, Any] | None:
    return _row(conn.execute(f"SELECT {COLUMNS} FROM products WHERE sku_key = ?",
                             (sku_key(str(sku)),)).fetchone())


def get(conn: sqlite3.Connection, sku: str) -> dict[str, Any]:
    """A product by SKU (case-insensitive); NotFound otherwise."""
    p = find(conn, sku)
    if p is None:
        raise NotFound(f"no product with SKU {str(sku).strip()!r}",
                       "see 'salescrm product list --search ...'")
    return p


def get_by_id(conn: sqlite3.Connection, product_id: int) -> dict[str, Any]:
    p = _row(conn.execute(f"SELECT {COLUMNS} FROM products WHERE id = ?", (product_id,)).fetchone())
    if p is None:
        raise NotFound(f"no product with id {product_id}")
    return p


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def parse_sort(spec: str | None, whitelist: dict[str, str], default: str) -> str:
    """'-price,name' -> an ORDER BY clause from whitelisted expressions only."""
    parts = []
    for item in (spec or default).split(","):
        item = item.strip()
        if not item:
            continue
        desc = item.startswith("-")
        name = item.lstrip("+-").strip().lower()
        if name not in whitelist:
            raise ValidationError(f"cannot sort by {name!r}",
                                  "sort by one of: " + ", ".join(sorted(whitelist)))
        parts.append(f"{whitelist[name]} {'DESC' if desc else 'ASC'}")
    return ", ".join(parts) or "id"


def list_products(
    conn: sqlite3.Connection,
    *,
    category: str | None = None,
    search: str | None = None,
    low_stock: bool = False,
    kind: str | None = None,
    include_archived: bool = False,
    sort: str | None = None,
    limit: int | None = None,
) -> Iterator[dict[str, Any]]:
    where, params = [], []
    if not include_archived:
        where.append("active = 1")
    if category:
        where.append("category = ? COLLATE NOCASE")
        params.append(category.strip())
    if kind:
        where.append("kind = ?")
        params.append(_kind(kind))
    if search:
        where.append("(name_key LIKE ? ESCAPE '\\' OR sku_key LIKE ? ESCAPE '\\')")
        params += [_like(validate.name_key(search)), _like(sku_key(search))]
    if low_stock:
        where.append("kind = 'goods' AND on_hand - reserved <= reorder_level")
    sql = f"SELECT {COLUMNS} FROM products"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY " + parse_sort(sort, SORTS, "sku") + ", id"
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    for row in conn.execute(sql, params):
        yield _row(row)  # type: ignore[misc]


EDITABLE = ("name", "category", "kind", "unit", "cost", "price", "tax_rate", "reorder_level", "sku")


def edit(conn: sqlite3.Connection, ref: str, /, **changes: Any) -> dict[str, Any]:
    """Change the product with SKU ``ref``: fields as keywords (None values
    are ignored; ``sku=`` renames it); returns the updated product.
    ``cost`` and ``price`` are cents; ``active`` True/False restores/archives."""
    assert conn.in_transaction, "products.edit must run inside db.write_tx"
    p = get(conn, ref)
    sets: dict[str, Any] = {}
    for key, value in changes.items():
        if value is None:
            continue
        if key == "name":
            v = validate.text(value, field="name", max_len=200, required=True)
            sets["name"], sets["name_key"] = v, validate.name_key(v or "")
        elif key == "sku":
            new = check_sku(value)
            other = conn.execute("SELECT sku FROM products WHERE sku_key = ? AND id <> ?",
                                 (sku_key(new), p["id"])).fetchone()
            if other:
                raise Conflict(f"SKU {new} already exists (as {other[0]})")
            sets["sku"], sets["sku_key"] = new, sku_key(new)
        elif key == "category":
            sets["category"] = validate.text(value, field="category", max_len=100)
        elif key == "kind":
            k = _kind(value)
            if k == "service" and (p["on_hand"] or p["reserved"]):
                raise Conflict(f"{p['sku']} has stock (on hand {p['on_hand']}, reserved {p['reserved']})",
                               "adjust the stock to zero before making it a service")
            sets["kind"] = k
        elif key == "unit":
            sets["unit"] = _unit(value)
        elif key == "cost":
            sets["unit_cost"] = _cents(value, "unit cost")
        elif key == "price":
            sets["list_price"] = _cents(value, "list price")
        elif key == "tax_rate":
            sets["tax_rate"] = rate_text(parse_tax_rate(value))
        elif key == "reorder_level":
            sets["reorder_level"] = _nonneg_int(value, "reorder level")
        elif key == "active":
            sets["active"] = 1 if value else 0
        else:
            raise ValidationError(f"cannot edit {key!r}", "editable: " + ", ".join(EDITABLE))
    if sets:
        sets["updated_at"] = db.now_iso()
        assignments = ", ".join(f"{k} = ?" for k in sets)  # keys from the code above only
        conn.execute(f"UPDATE products SET {assignments} WHERE id = ?", [*sets.values(), p["id"]])
        db.audit(conn, "update", "product", p["id"])
    return get_by_id(conn, p["id"])


def archive(conn: sqlite3.Connection, sku: str) -> dict[str, Any]:
    """Hide a product from lists and new orders; its history stays."""
    p = get(conn, sku)
    if not p["active"]:
        raise Conflict(f"{p['sku']} is already archived", "restore it with 'product edit --active'")
    return edit(conn, p["sku"], active=False)
