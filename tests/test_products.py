"""Products and the stock ledger, through the CLI and the library."""

from __future__ import annotations

from decimal import Decimal

import pytest

from salescrm import db, products, stock
from salescrm.errors import Conflict, ValidationError
from tests.orderkit import fast_cli  # noqa: F401 - a fixture

pytestmark = pytest.mark.usefixtures("fast_cli")


@pytest.fixture
def catalogue(run):
    run.ok("product", "add", "GT-250", "龙井绿茶 250g", "--category", "tea", "--cost", "3.20", "--price", "5.90",
           "--tax-rate", "13", "--reorder-level", "20")
    run.ok("product", "add", "MUG-01", "青花瓷马克杯", "--category", "teaware", "--cost", "4.50", "--price", "12",
           "--tax-rate", "13%", "--reorder-level", "2")
    run.ok("product", "add", "CLASS-1", "Tea tasting class", "--category", "services", "--price", "50",
           "--kind", "service", "--unit", "h", "--tax-rate", "6")
    run.ok("stock", "receive", "GT-250", "100", "--note", "PO 4411")


def test_add_show_list(run, catalogue):
    p = run.json("product", "show", "gt-250")
    assert (p["sku"], p["name"], p["category"], p["unit_cost"], p["list_price"], p["tax_rate"]) == (
        "GT-250", "龙井绿茶 250g", "tea", 3.20, 5.90, 13)
    assert (p["on_hand"], p["reserved"], p["available"], p["reorder_level"]) == (100, 0, 100, 20)
    assert p["movements"][0]["kind"] == "receive" and p["movements"][0]["reason"] == "PO 4411"
    rows = run.csv("product", "list")
    assert [r["sku"] for r in rows] == ["CLASS-1", "GT-250", "MUG-01"]
    assert rows[1]["list_price"] == "5.90" and rows[1]["tax_rate"] == "13"
    assert [r["sku"] for r in run.csv("product", "list", "--category", "TEA")] == ["GT-250"]
    assert [r["sku"] for r in run.csv("product", "list", "--search", "马克")] == ["MUG-01"]
    assert [r["sku"] for r in run.csv("product", "list", "--search", "gt-")] == ["GT-250"]
    assert [r["sku"] for r in run.csv("product", "list", "--low-stock")] == ["MUG-01"]  # 0 <= 2
    assert [r["sku"] for r in run.csv("product", "list", "--sort", "-price")] == ["CLASS-1", "MUG-01", "GT-250"]
    table = run.ok("product", "list", "--format", "table").stdout
    assert "龙井绿茶 250g" in table and "5.90" in table


def test_sku_unique_case_insensitive_and_refusals_change_nothing(run, catalogue, db_path, snap):
    before = snap(db_path)
    for args, message in [
        (("product", "add", "gt-250", "dup", "--price", "1"), "SKU gt-250 already exists (as GT-250)"),
        (("product", "add", "NEW 1", "x", "--price", "1"), "not a valid SKU"),
        (("product", "add", "NEW", "x", "--price", "-1"), "must not be negative"),
        (("product", "add", "NEW", "x", "--price", "abc"), "not a valid amount"),
        (("product", "add", "NEW", "x", "--price", "1.999"), "not a valid amount"),
        (("product", "add", "NEW", "x", "--price", "1", "--tax-rate", "101"), "between 0 and 100"),
        (("product", "add", "NEW", "x", "--price", "1", "--kind", "thing"), "goods or service"),
        (("product", "add", "NEW", "x", "--price", "1", "--reorder-level", "-2"), "reorder level"),
        (("product", "add", "NEW", "", "--price", "1"), "name must not be empty"),
        (("product", "edit", "NOPE", "--price", "1"), "no product with SKU 'NOPE'"),
        (("product", "edit", "MUG-01", "--sku", "gt-250"), "already exists"),
        (("product", "edit", "GT-250", "--kind", "service"), "has stock"),
        (("stock", "receive", "CLASS-1", "5"), "is a service: it has no stock"),
        (("stock", "receive", "GT-250", "0"), "must not be zero"),
        (("stock", "receive", "GT-250", "-5"), "must be positive"),
        (("stock", "receive", "GT-250", "1.5"), "whole number"),
        (("stock", "receive", "GT-250", "many"), "not a number"),
        (("stock", "receive", "NOPE", "1"), "no product"),
        (("stock", "adjust", "GT-250", "-101", "--reason", "stock-take"), "only 100 on hand"),
        (("stock", "adjust", "GT-250", "-1", "--reason", " "), "reason must not be empty"),
    ]:
        result = run(*args)
        assert result.exit_code == 1, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
        assert snap(db_path) == before, args


def test_edit_and_archive(run, catalogue):
    run.ok("product", "edit", "mug-01", "--price", "13.50", "--name", "Mug (blue)", "--tax-rate", "7.5")
    p = run.json("product", "show", "MUG-01")
    assert (p["list_price"], p["name"], p["tax_rate"]) == (13.50, "Mug (blue)", 7.5)
    run.ok("product", "archive", "MUG-01")
    assert "MUG-01" not in [r["sku"] for r in run.csv("product", "list")]
    assert "MUG-01" in [r["sku"] for r in run.csv("product", "list", "--all")]
    again = run("product", "archive", "MUG-01")
    assert again.exit_code == 1 and "already archived" in again.stderr
    run.ok("product", "edit", "MUG-01", "--active")
    assert "MUG-01" in [r["sku"] for r in run.csv("product", "list")]


def test_stock_ledger_commands(run, catalogue, db_path):
    run.ok("stock", "adjust", "GT-250", "-3", "--reason", "broken in transit")
    run.ok("stock", "receive", "MUG-01", "10")
    rows = run.csv("stock", "show", "GT-250")
    assert [(r["kind"], r["qty"], r["on_hand"]) for r in rows] == [("adjust", "-3", "97"), ("receive", "100", "100")]
    assert rows[0]["reason"] == "broken in transit"
    levels = {r["sku"]: r for r in run.csv("stock", "list")}
    assert set(levels) == {"GT-250", "MUG-01"}  # services have no stock
    assert levels["GT-250"]["on_hand"] == "97" and levels["GT-250"]["value"] == "310.40"
    assert levels["MUG-01"]["low"] == "false"
    assert [r["sku"] for r in run.csv("stock", "list", "--low")] == []
    run.ok("stock", "adjust", "MUG-01", "-9", "--reason", "stock-take")
    assert [r["sku"] for r in run.csv("stock", "list", "--low")] == ["MUG-01"]
    assert run("db", "check").exit_code == 0


def test_db_check_reports_stock_that_differs_from_its_ledger(run, catalogue, db_path):
    conn = db.connect(db_path)
    with db.write_tx(conn):
        conn.execute("UPDATE products SET on_hand = 7 WHERE sku = 'GT-250'")
    conn.close()
    result = run("db", "check", "--format", "csv")
    assert result.exit_code == 1
    assert "product 1 (GT-250) shows on hand 7, reserved 0; its ledger says 100, 0" in result.stdout


def test_library_add_and_levels(db_path):
    conn = db.connect(db_path)
    with db.write_tx(conn):
        pid = products.add(conn, sku="X-1", name="  Thing  ", price=100, tax_rate=Decimal("7.50"))
        stock.receive(conn, "x-1", 5)
        stock.adjust(conn, "X-1", 2, reason="found")
    p = products.get(conn, "X-1")
    assert p["id"] == pid and p["name"] == "Thing" and p["tax_rate"] == Decimal("7.5")
    assert stock.levels_from_ledger(conn, pid) == (7, 0)
    with pytest.raises(Conflict):
        with db.write_tx(conn):
            products.add(conn, sku="x-1", name="dup", price=1)
    with pytest.raises(ValidationError, match="reason"):
        with db.write_tx(conn):
            stock.adjust(conn, "X-1", 1, reason="")
