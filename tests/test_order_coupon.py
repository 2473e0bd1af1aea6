"""``order create --coupon CODE``: the order and its coupon in one
transaction; a bad coupon refuses the whole create and writes nothing."""

from __future__ import annotations

import sqlite3

import pytest

from salescrm import db, orders, promotions
from salescrm.errors import NotFound
from tests.conftest import snapshot


@pytest.fixture
def shop(run, db_path):
    """TEA 10.00 and MUG 5.00 (tax 0), a customer, and SAVE5: 5.00 off with
    the coupon SAVE5."""
    for sku, name, price in (("TEA", "Tea", "10.00"), ("MUG", "Mug", "5.00")):
        run.ok("product", "add", sku, name, "--price", price, "--cost", "1.00")
        run.ok("stock", "receive", sku, "100")
    run.ok("customer", "add", "Ann", "--email", "ann@example.com")
    run.ok("promo", "add", "SAVE5", "--amount-off", "5", "--coupon", "SAVE5")
    return db_path


def one_line_error(result, code=1) -> str:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr


def show(run, number: str) -> dict:
    return run.json("order", "show", number)


def test_create_with_a_coupon(run, shop):
    r = run.ok("order", "create", "-c", "ann@example.com", "--line", "TEA:2", "--coupon", "save5")
    number = r.stdout.strip()
    assert "coupon save5" in r.stderr
    o = show(run, number)
    assert o["total"] == 15.00
    conn = sqlite3.connect(shop)
    try:
        assert conn.execute("SELECT coupon, coupon_key FROM order_coupons").fetchall() == [("save5", "save5")]
        # the same as creating, then 'promo coupon': one order event for the promotion
        assert conn.execute("SELECT kind FROM order_events ORDER BY id").fetchall() == [
            ("create",), ("line",), ("promotion",)]
    finally:
        conn.close()
    # confirming counts the usage, as for a coupon entered afterwards
    run.ok("order", "confirm", number)
    assert run.json("promo", "show", "SAVE5")["used"] == 1


def test_without_a_coupon_the_coupon_promotion_does_not_apply(run, shop):
    number = run.ok("order", "create", "-c", "ann@example.com", "--line", "TEA:2").stdout.strip()
    assert show(run, number)["total"] == 20.00


@pytest.mark.parametrize("code, message", [
    ("NOPE", "no promotion has the coupon NOPE"),
    ("has space", "a coupon code is letters"),
])
def test_a_bad_coupon_refuses_the_whole_create(run, shop, code, message):
    before = snapshot(shop)
    r = run("order", "create", "-c", "ann@example.com", "--line", "TEA:2", "--coupon", code)
    assert message in one_line_error(r)
    assert r.stdout == ""
    assert snapshot(shop) == before  # no order, no lines, no event, no audit row, no order number used


def test_an_empty_coupon_is_no_coupon(run, shop):
    number = run.ok("order", "create", "-c", "ann@example.com", "--line", "TEA:2", "--coupon", "").stdout.strip()
    assert show(run, number)["total"] == 20.00


def test_the_library_create_with_a_coupon_is_one_transaction(shop):
    conn = db.connect(shop)
    try:
        with db.write_tx(conn):
            ref = orders.create(conn, customer="ann@example.com", lines=["TEA:1", "MUG:2"], coupon="SAVE5")
            assert [p["promotion"] for p in promotions.order_promotions(conn, ref.id)] == ["SAVE5"]
            assert orders.get(conn, ref.id)["total_cents"] == 2000 - 500
        before = snapshot(shop)
        with pytest.raises(NotFound), db.write_tx(conn):
            orders.create(conn, customer="ann@example.com", lines=["TEA:1"], coupon="NOPE")
        assert snapshot(shop) == before
    finally:
        conn.close()
