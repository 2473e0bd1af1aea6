"""Business settings kept in the ``settings`` table: the seller's details
printed on documents, payment terms, tax mode, discount limit, channels.

Every key is declared here with its type, default and help; values are
validated on ``set`` and stored as normalised text.  No Typer, no Rich.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable

from salescrm import db, money, validate
from salescrm.errors import ValidationError


def _text(value: str, key: str) -> str:
    return validate.text(value, field=key, max_len=500) or ""


def _bool(value: str, key: str) -> str:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on", "y"):
        return "true"
    if v in ("0", "false", "no", "off", "n"):
        return "false"
    raise ValidationError(f"{key} must be true or false, not {value!r}")


def _days(value: str, key: str) -> str:
    v = value.strip()
    if not re.fullmatch(r"\d{1,4}", v):
        raise ValidationError(f"{key} must be a whole number of days (0-9999), not {value!r}")
    return str(int(v))


def _percent(value: str, key: str) -> str:
    return format(money.parse_percent(value, field=key).normalize(), "f")


def _list(value: str, key: str) -> str:
    items = []
    for part in value.split(","):
        p = part.strip().lower()
        if not p:
            continue
        if not re.fullmatch(r"[\w.-]{1,40}", p):
            raise ValidationError(f"{key}: {part.strip()!r} is not a valid name",
                                  "use letters, digits, '-', '_' or '.', separated by commas")
        if p not in items:
            items.append(p)
    if not items:
        raise ValidationError(f"{key} needs at least one value")
    return ",".join(items)


def _currency(value: str, key: str) -> str:
    v = value.strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", v):
        raise ValidationError(f"{key} must be a three-letter ISO 4217 code such as EUR, not {value!r}")
    return v


def _prefix(value: str, key: str) -> str:
    v = value.strip()
    if not re.fullmatch(r"[A-Za-z0-9/_-]{0,12}", v):
        raise ValidationError(f"{key} must be up to 12 letters, digits, '-', '_' or '/'")
    return v


@dataclass(frozen=True)
class Setting:
    key: str
    default: str
    help: str
    parse: Callable[[str, str], str]
    kind: str = "text"  # text, bool, int, percent, list


SETTINGS: dict[str, Setting] = {
    s.key: s
    for s in [
        Setting("seller.name", "", "Seller's name on quotes and invoices", _text),
        Setting("seller.address", "", "Seller's postal address (use \\n for new lines)", _text),
        Setting("seller.email", "", "Seller's e-mail", _text),
        Setting("seller.phone", "", "Seller's phone", _text),
        Setting("seller.tax_id", "", "Seller's VAT / tax number", _text),
        Setting("seller.bank", "", "Bank details for payment by transfer", _text),
        Setting("currency", "EUR", "Currency of new orders (ISO 4217)", _currency),
        Setting("tax_inclusive", "false",
                "Prices entered include tax (true) or exclude it (false); stated on documents",
                _bool, "bool"),
        Setting("default_tax_rate", "0", "Tax rate (percent) for new products", _percent, "percent"),
        Setting("payment_terms_days", "30",
                "Days to pay after the order date, unless the customer has their own terms",
                _days, "int"),
        Setting("max_line_discount_pct", "30",
                "Largest line discount (percent) allowed at confirm without --override", _percent,
                "percent"),
        Setting("channels", "retail,online,phone,partner", "Sales channels allowed on orders", _list,
                "list"),
        Setting("payment_methods", "cash,card,transfer,cheque,wallet,other",
                "Payment methods allowed by order pay", _list, "list"),
        Setting("invoice_prefix", "INV-", "Prefix of invoice numbers", _prefix),
        Setting("quote_validity_days", "30", "Days a quote is valid", _days, "int"),
    ]
}


def _setting(key: str) -> Setting:
    try:
        return SETTINGS[key]
    except KeyError:
        raise ValidationError(
            f"unknown setting {key!r}", "see 'salescrm settings show' for the known keys"
        ) from None


def get_text(conn: sqlite3.Connection, key: str) -> str:
    s = _setting(key)
    return db.get_setting(conn, key, s.default) or s.default


def get(conn: sqlite3.Connection, key: str) -> Any:
    """The typed value: bool, int, Decimal (percent), list[str] or str."""
    s = _setting(key)
    raw = get_text(conn, key)
    if s.kind == "bool":
        return raw == "true"
    if s.kind == "int":
        return int(raw)
    if s.kind == "percent":
        return Decimal(raw)
    if s.kind == "list":
        return raw.split(",") if raw else []
    return raw


def set(conn: sqlite3.Connection, key: str, value: str) -> str:  # noqa: A001 - the natural name
    """Validate and store; returns the stored text.  Call inside ``write_tx``."""
    assert conn.in_transaction, "settings.set must run inside db.write_tx"
    s = _setting(key)
    stored = s.parse(str(value), key)
    if s.parse is _text:
        stored = stored.replace("\\n", "\n")
    db.set_setting(conn, key, stored)
    db.audit(conn, "set", "setting", key)
    return stored


def unset(conn: sqlite3.Connection, key: str) -> None:
    """Back to the default."""
    assert conn.in_transaction, "settings.unset must run inside db.write_tx"
    _setting(key)
    conn.execute("DELETE FROM settings WHERE key = ?", (key,))
    db.audit(conn, "unset", "setting", key)


def all_settings(conn: sqlite3.Connection) -> list[dict]:
    stored = {r[0]: r[1] for r in conn.execute("SELECT key, value FROM settings")}
    return [
        {"key": s.key, "value": stored.get(s.key, s.default), "default": s.default,
         "is_default": s.key not in stored, "help": s.help}
        for s in SETTINGS.values()
    ]


def seller(conn: sqlite3.Connection) -> dict[str, str]:
    """The seller's details for documents (empty strings when unset)."""
    return {k.split(".", 1)[1]: get_text(conn, k) for k in SETTINGS if k.startswith("seller.")}
