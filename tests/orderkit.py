"""Shared helpers for the product, stock and order tests."""

from __future__ import annotations

import sqlite3

import pytest

from salescrm import db, products, stock


def add_customer(conn: sqlite3.Connection, name: str, email: str | None = None, *,
                 credit_limit: int | None = None, terms: int | None = None, archived: bool = False) -> int:
    """A customer row written directly (independent of the customers module)."""
    now = db.now_iso()
    cur = conn.execute(
        "INSERT INTO customers (name, name_key, email, email_key, credit_limit, payment_terms_days,"
        " archived_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (name, name.casefold(), email, email.casefold() if email else None, credit_limit, terms,
         now if archived else None, now, now),
    )
    return int(cur.lastrowid)


def catalogue(conn: sqlite3.Connection) -> None:
    """GT-250 (13% tax, 100 in stock), MUG-01 (13%, 5 in stock), SVC (service, 6%)."""
    products.add(conn, sku="GT-250", name="龙井绿茶 250g", category="tea", cost=320, price=590, tax_rate="13",
                 reorder_level=20)
    products.add(conn, sku="MUG-01", name="青花瓷马克杯", category="teaware", cost=450, price=1200, tax_rate="13",
                 reorder_level=2)
    products.add(conn, sku="SVC", name="Tasting class", category="services", price=5000, tax_rate="6",
                 kind="service", unit="h")
    stock.receive(conn, "GT-250", 100, note="PO 4411")
    stock.receive(conn, "MUG-01", 5)


def levels(conn: sqlite3.Connection, sku: str) -> tuple[int, int, int]:
    p = products.get(conn, sku)
    return p["on_hand"], p["reserved"], p["available"]


def order_row(conn: sqlite3.Connection, number: str) -> dict:
    return dict(conn.execute("SELECT * FROM orders WHERE number = ?", (number,)).fetchone())


def assert_consistent(conn: sqlite3.Connection) -> None:
    """db check is clean and every order's parts add up to its total."""
    assert db.check(conn) == []
    for o in conn.execute("SELECT * FROM orders"):
        lines = conn.execute("SELECT coalesce(sum(net_cents),0), coalesce(sum(tax_cents),0) FROM order_lines"
                             " WHERE order_id = ?", (o["id"],)).fetchone()
        adj = conn.execute("SELECT coalesce(sum(amount_cents),0) FROM order_adjustments WHERE order_id = ?",
                           (o["id"],)).fetchone()[0]
        assert o["total_cents"] == lines[0] + lines[1] + o["shipping_cents"] + adj
        paid = conn.execute("SELECT coalesce(sum(amount_cents),0) FROM payments WHERE order_id = ?",
                            (o["id"],)).fetchone()[0]
        assert o["paid_cents"] == paid
        assert 0 <= o["paid_cents"] <= o["total_cents"] - o["returned_cents"]


_COMMAND = None


@pytest.fixture(autouse=False)
def fast_cli(monkeypatch):
    """Build Typer's click command once per session instead of on every
    ``run(...)`` (typer.testing rebuilds the whole tree each call)."""
    global _COMMAND
    import typer.main
    import typer.testing

    from salescrm.cli import app

    if _COMMAND is None:
        _COMMAND = typer.main.get_command(app)
    monkeypatch.setattr(typer.testing, "_get_command", lambda _app: _COMMAND)
