"""Imported orders keep the file's prices, discounts and totals: the
promotions running today are not applied to them (not on create, not on
confirm, not when a second import changes a draft), unless
``--apply-promotions`` asks for it."""

from __future__ import annotations

import json
import sqlite3
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from salescrm import db, orders, promotions
from tests.conftest import snapshot

DATA = Path(__file__).parent / "data"
HEADER = "order_no,order_date,status,customer_email,channel,sku,qty,unit_price,discount_pct\n"
LAST_YEAR = (date.today() - timedelta(days=365)).isoformat()


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", newline="")
    return path


def q(db_path: Path, sql: str, *params) -> list[tuple]:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def file_total() -> int:
    """H-1 of ``history_file``, priced as the file says: 2 x 5.90 at 7 % tax,
    and 12.00 - 10 % at 19 % tax."""
    a = orders.line_amounts(2, 590, tax_rate=Decimal("7"))
    b = orders.line_amounts(1, 1200, tax_rate=Decimal("19"), discount_pct=Decimal("10"))
    return a.total + b.total


def history_file(tmp_path: Path, status: str, name: str = "h.csv") -> Path:
    return write(tmp_path / name, HEADER +
                 f"H-1,{LAST_YEAR},{status},anna@example.de,online,TEA-250,2,5.90,\n"
                 f"H-1,{LAST_YEAR},{status},anna@example.de,online,MUG-01,1,12.00,10\n")


@pytest.fixture
def shop(run, db_path):
    """Customers and products, stock for confirming, and a 20 % off promotion
    running today with no start or end date (it would match last year's
    orders too)."""
    run.ok("import", "customers", DATA / "shop_customers.csv", "--map-file", DATA / "shop.toml")
    run.ok("import", "products", DATA / "products.csv")
    run.ok("stock", "receive", "TEA-250", "100")
    run.ok("stock", "receive", "MUG-01", "100")
    run.ok("promo", "add", "EVERYTHING20", "--percent", "20%")
    return db_path


def order(db_path: Path, number: str = "H-1") -> dict:
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return dict(conn.execute("SELECT * FROM orders WHERE number = ?", (number,)).fetchone())
    finally:
        conn.close()


def promotion_rows(db_path: Path) -> tuple[int, int, int]:
    """(order_promotions, order_adjustments, promotion_usage) rows."""
    return (q(db_path, "SELECT count(*) FROM order_promotions")[0][0],
            q(db_path, "SELECT count(*) FROM order_adjustments")[0][0],
            q(db_path, "SELECT count(*) FROM promotion_usage WHERE released_at IS NULL")[0][0])


def check(db_path: Path) -> None:
    conn = db.connect(db_path)
    try:
        assert db.check(conn) == []
        assert orders.check_totals(conn) == []
    finally:
        conn.close()


@pytest.mark.parametrize("status", ["confirmed", "draft", "cancelled"])
def test_last_years_orders_keep_the_files_totals(run, shop, tmp_path, status):
    s = json.loads(run.ok("import", "orders", history_file(tmp_path, status), "--json").stdout)
    assert (s["inserted"], s["rejected"]) == (1, 0)
    o = order(shop)
    assert (o["status"], o["order_date"]) == (status, LAST_YEAR)
    assert o["total_cents"] == file_total()
    assert o["adjustment_cents"] == 0
    assert promotion_rows(shop) == (0, 0, 0)
    assert q(shop, "SELECT count(*) FROM order_events WHERE kind = 'promotion'") == [(0,)]
    # the promotion would have applied: an interactive order of the same lines gets it
    run.ok("order", "create", "--customer", "anna@example.de", "--line", "TEA-250:2", "--line", "MUG-01:1-10%",
           "--date", LAST_YEAR)
    assert q(shop, "SELECT count(*) FROM order_promotions") == [(1,)]
    check(shop)


@pytest.mark.parametrize("status", ["confirmed", "draft"])
def test_apply_promotions_prices_new_orders_with_the_promotions(run, shop, tmp_path, status):
    s = json.loads(run.ok("import", "orders", history_file(tmp_path, status), "--apply-promotions",
                          "--json").stdout)
    assert (s["inserted"], s["rejected"]) == (1, 0)
    o = order(shop)
    assert o["status"] == status
    saving = q(shop, "SELECT saving_cents FROM order_promotions")[0][0]
    assert saving > 0
    assert o["adjustment_cents"] == -saving
    assert o["total_cents"] == file_total() - saving
    used = 1 if status == "confirmed" else 0
    assert promotion_rows(shop) == (1, 1, used)
    check(shop)


def test_a_second_import_changing_a_draft_applies_no_promotion(run, shop, tmp_path):
    run.ok("import", "orders", history_file(tmp_path, "draft"))
    assert order(shop)["total_cents"] == file_total()
    # lines change, and the header: the draft is rewritten through orders.edit / remove_line / add_line
    changed = write(tmp_path / "h2.csv", HEADER +
                    f"H-1,{LAST_YEAR},draft,anna@example.de,phone,TEA-250,3,5.90,\n")
    s = json.loads(run.ok("import", "orders", changed, "--json").stdout)
    assert s["updated"] == 1
    o = order(shop)
    assert o["channel"] == "phone"
    assert o["total_cents"] == orders.line_amounts(3, 590, tax_rate=Decimal("7")).total
    assert promotion_rows(shop) == (0, 0, 0)
    # then confirmed by a third import: still the file's total, no usage counted
    run.ok("import", "orders", write(tmp_path / "h3.csv", HEADER +
                                     f"H-1,{LAST_YEAR},confirmed,anna@example.de,phone,TEA-250,3,5.90,\n"))
    o = order(shop)
    assert o["status"] == "confirmed"
    assert o["total_cents"] == orders.line_amounts(3, 590, tax_rate=Decimal("7")).total
    assert promotion_rows(shop) == (0, 0, 0)
    check(shop)


def test_apply_promotions_is_only_for_orders(run, shop):
    r = run("import", "customers", DATA / "shop_customers.csv", "--apply-promotions")
    assert r.exit_code == 2


def test_the_library_switch(shop):
    """orders.create / add_line / remove_line / edit with apply_promotions=False."""
    conn = db.connect(shop)
    try:
        with db.write_tx(conn):
            ref = orders.create(conn, customer="anna@example.de", lines=["TEA-250:2", "MUG-01:1"],
                                order_date=LAST_YEAR, apply_promotions=False)
            orders.add_line(conn, ref.id, "TEA-250:1", apply_promotions=False)
            orders.remove_line(conn, ref.id, "1", apply_promotions=False)
            orders.edit(conn, ref.id, notes="from the old shop", apply_promotions=False)
            assert promotions.order_promotions(conn, ref.id) == []
            o = orders.get(conn, ref.id)
            assert o["adjustment_cents"] == 0
            # the default still prices with the promotions
            orders.add_line(conn, ref.id, "TEA-250:1")
            assert len(promotions.order_promotions(conn, ref.id)) == 1
    finally:
        conn.close()


def test_a_rejected_history_import_writes_nothing(run, shop, tmp_path):
    before = snapshot(shop)
    bad = write(tmp_path / "bad.csv", HEADER +
                f"H-1,{LAST_YEAR},confirmed,anna@example.de,online,TEA-250,2,5.90,\n"
                f"H-2,{LAST_YEAR},confirmed,anna@example.de,online,NO-SUCH,1,1.00,\n")
    r = run("import", "orders", bad, "--apply-promotions")
    assert r.exit_code == 65
    assert snapshot(shop) == before
