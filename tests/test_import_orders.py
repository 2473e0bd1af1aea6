"""Importing orders (one row per line, grouped by order number) and payments."""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from pathlib import Path

from salescrm import db, orders
from tests.conftest import snapshot

DATA = Path(__file__).parent / "data"

LINES_HEADER = "order_no,order_date,customer_email,channel,sku,qty,unit_price,discount_pct\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", newline="")
    return path


def summary(result) -> dict:
    return json.loads(result.stdout)


def q(db_path: Path, sql: str, *params) -> list[tuple]:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def setup_shop(run) -> None:
    run.ok("import", "customers", DATA / "shop_customers.csv", "--map-file", DATA / "shop.toml")
    run.ok("import", "products", DATA / "products.csv")


def check_db(db_path: Path) -> None:
    conn = db.connect(db_path)
    try:
        assert db.check(conn) == []
        assert orders.check_totals(conn) == []
    finally:
        conn.close()


def test_lines_are_grouped_into_orders_with_library_totals(run, db_path):
    setup_shop(run)
    s = summary(run.ok("import", "orders", DATA / "shop_orders.csv", "--map-file", DATA / "shop_orders.toml",
                       "--json"))
    assert (s["inserted"], s["detail"]["lines_inserted"], s["rejected"]) == (3, 5, 0)
    got = q(db_path, "SELECT number, order_date, status, channel, total_cents FROM orders ORDER BY id")
    assert [g[:4] for g in got] == [("W-1001", "2026-01-03", "draft", "online"),
                                    ("W-1002", "2026-01-04", "draft", "phone"),
                                    ("W-1003", "2026-01-04", "draft", "online")]
    # W-1001: 2 x 5.90 at 7 % tax + 12.00 - 10 % at 19 % tax, computed by the orders library
    a = orders.line_amounts(2, 590, tax_rate=Decimal("7"))
    b = orders.line_amounts(1, 1200, tax_rate=Decimal("19"), discount_pct=Decimal("10"))
    assert got[0][4] == a.total + b.total
    lines = q(db_path, "SELECT line_no, sku, qty, unit_price, discount_pct, net_cents, tax_cents FROM order_lines"
                       " WHERE order_id = 1 ORDER BY line_no")
    assert lines == [(1, "TEA-250", 2, 590, None, a.net, a.tax), (2, "MUG-01", 1, 1200, "10", b.net, b.tax)]
    assert q(db_path, "SELECT count(*) FROM order_events WHERE kind = 'create'") == [(3,)]
    check_db(db_path)


def test_lines_of_one_order_apart_in_the_file_are_merged(run, tmp_path, db_path):
    setup_shop(run)
    f = write(tmp_path / "o.csv", LINES_HEADER +
              "A-1,2026-02-01,anna@example.de,online,TEA-250,1,,\n"
              "A-2,2026-02-01,joerg@example.de,online,TEA-250,2,,\n"
              "A-1,2026-02-01,anna@example.de,online,MUG-01,3,,\n")
    s = summary(run.ok("import", "orders", f, "--json"))
    assert (s["inserted"], s["detail"]["lines_inserted"]) == (2, 3)
    assert q(db_path, "SELECT o.number, l.line_no, l.sku FROM order_lines l JOIN orders o ON o.id = l.order_id"
                      " ORDER BY o.number, l.line_no") == [
        ("A-1", 1, "TEA-250"), ("A-1", 2, "MUG-01"), ("A-2", 1, "TEA-250")]
    check_db(db_path)


def test_order_fields_that_disagree_reject_the_order(run, tmp_path, db_path):
    setup_shop(run)
    before = snapshot(db_path)
    f = write(tmp_path / "o.csv", LINES_HEADER +
              "A-1,2026-02-01,anna@example.de,online,TEA-250,1,,\n"
              "A-1,2026-02-02,anna@example.de,online,MUG-01,1,,\n"
              "A-2,2026-02-01,joerg@example.de,online,TEA-250,2,,\n"
              "A-2,2026-02-01,anna@example.de,online,MUG-01,1,,\n")
    r = run("import", "orders", f)
    assert r.exit_code == 65
    assert "line 3, column 'order_date': differs from line 2 of the same order" in r.stderr
    assert "line 5, column 'customer_email': differs from line 4 of the same order" in r.stderr
    assert snapshot(db_path) == before
    rej = tmp_path / "rej.csv"
    s = summary(run.ok("import", "orders", f, "--rejects", rej, "--json"))
    assert (s["inserted"], s["rejected"]) == (0, 4)  # whole orders are rejected, never a part of one
    assert "the order is rejected: see line 3" in rej.read_text()


def test_unknown_customers_and_products(run, tmp_path, db_path):
    f = write(tmp_path / "o.csv", "order_no,order_date,customer_external_id,customer_name,sku,description,qty,unit_price\n"
              "B-1,2026-03-01,C-77,Nadia,NEW-1,New thing,2,3.50\n"
              "B-1,2026-03-01,C-77,Nadia,NEW-2,,1,1.00\n"
              "B-2,2026-03-02,C-78,,NEW-1,New thing,1,3.50\n")
    r = run("import", "orders", f)
    assert r.exit_code == 65
    assert "line 2, column 'customer_external_id': no such customer" in r.stderr
    assert "--create-missing" in r.stderr
    assert q(db_path, "SELECT count(*) FROM orders") == [(0,)]
    s = summary(run.ok("import", "orders", f, "--create-missing", "--json"))
    assert s["created"] == {"customers": 2, "products": 2} and s["inserted"] == 2
    assert q(db_path, "SELECT external_id, name FROM customers ORDER BY id") == [("C-77", "Nadia"), ("C-78", "Customer C-78")]
    assert q(db_path, "SELECT sku, name, list_price FROM products ORDER BY id") == [
        ("NEW-1", "New thing", 350), ("NEW-2", "NEW-2", 100)]
    check_db(db_path)


def test_rerun_of_a_changed_orders_file(run, tmp_path, db_path):
    setup_shop(run)
    base = ("C-1,2026-04-01,anna@example.de,online,TEA-250,1,,\n"
            "C-2,2026-04-01,joerg@example.de,online,TEA-250,2,,\n"
            "C-3,2026-04-02,joerg@example.de,online,MUG-01,1,,\n")
    f = write(tmp_path / "o1.csv", LINES_HEADER + base)
    run.ok("import", "orders", f)
    assert summary(run.ok("import", "orders", f, "--json"))["status"] == "already-imported"
    ev_before = q(db_path, "SELECT count(*) FROM order_events")[0][0]
    o2 = base.replace("C-2,2026-04-01,joerg@example.de,online,TEA-250,2", "C-2,2026-04-01,joerg@example.de,online,TEA-250,5")
    g = write(tmp_path / "o2.csv", LINES_HEADER + o2 + "C-4,2026-04-03,anna@example.de,online,MUG-01,1,,\n")
    s = summary(run.ok("import", "orders", g, "--json"))
    assert (s["inserted"], s["updated"], s["unchanged"]) == (1, 1, 2)
    assert q(db_path, "SELECT l.qty FROM order_lines l JOIN orders o ON o.id = l.order_id WHERE o.number = 'C-2'") == [(5,)]
    assert q(db_path, "SELECT count(*) FROM order_events")[0][0] > ev_before
    check_db(db_path)


def test_status_confirm_and_cancel_go_through_the_lifecycle(run, tmp_path, db_path):
    setup_shop(run)
    run.ok("stock", "receive", "TEA-250", "10")
    f = write(tmp_path / "o.csv", "order_no,order_date,customer_email,sku,qty,status\n"
              "D-1,2026-05-01,anna@example.de,TEA-250,3,confirmed\n"
              "D-2,2026-05-01,anna@example.de,TEA-250,1,draft\n"
              "D-3,2026-05-01,anna@example.de,TEA-250,1,shipped\n")
    r = run("import", "orders", f)
    assert r.exit_code == 65 and "line 4, column 'status': a new order can be imported as draft, confirmed or cancelled" in r.stderr
    g = write(tmp_path / "o2.csv", f.read_text().replace("D-3,2026-05-01,anna@example.de,TEA-250,1,shipped\n", ""))
    run.ok("import", "orders", g)
    assert q(db_path, "SELECT number, status FROM orders ORDER BY number") == [("D-1", "confirmed"), ("D-2", "draft")]
    assert q(db_path, "SELECT reserved FROM products WHERE sku = 'TEA-250'") == [(3,)]
    h = write(tmp_path / "o3.csv", g.read_text().replace("confirmed", "cancelled").replace(",draft", ",confirmed"))
    s = summary(run.ok("import", "orders", h, "--json"))
    assert s["unchanged"] == 0 and s["updated"] == 2
    assert q(db_path, "SELECT number, status FROM orders ORDER BY number") == [("D-1", "cancelled"), ("D-2", "confirmed")]
    assert q(db_path, "SELECT reserved FROM products WHERE sku = 'TEA-250'") == [(1,)]
    check_db(db_path)


def test_a_bad_line_at_the_end_of_a_large_orders_file_writes_nothing(run, tmp_path, db_path):
    setup_shop(run)
    before = snapshot(db_path)
    with open(tmp_path / "big.csv", "w", encoding="utf-8") as out:
        out.write(LINES_HEADER)
        for i in range(4000):
            out.write(f"N-{i},2026-06-01,anna@example.de,online,TEA-250,1,5.90,\n")
            out.write(f"N-{i},2026-06-01,anna@example.de,online,MUG-01,2,12.00,5\n")
        out.write("N-4000,2026-06-01,anna@example.de,online,TEA-250,0,5.90,\n")
    r = run("import", "orders", tmp_path / "big.csv")
    assert r.exit_code == 65
    assert "line 8002, column 'qty': must be a whole number greater than 0" in r.stderr
    assert snapshot(db_path) == before
    s = summary(run.ok("import", "orders", tmp_path / "big.csv", "--rejects", tmp_path / "r.csv", "--json"))
    assert (s["inserted"], s["detail"]["lines_inserted"], s["rejected"]) == (4000, 8000, 1)
    check_db(db_path)


def test_payments_import(run, tmp_path, db_path):
    setup_shop(run)
    run.ok("stock", "receive", "TEA-250", "10")
    run.ok("import", "orders", write(tmp_path / "o.csv", "order_no,order_date,customer_email,sku,qty,unit_price,status\n"
                                     "P-1,2026-05-01,anna@example.de,TEA-250,2,10.00,confirmed\n"
                                     "P-2,2026-05-01,anna@example.de,TEA-250,1,10.00,draft\n"))
    total = q(db_path, "SELECT total_cents FROM orders WHERE number = 'P-1'")[0][0]
    pay = write(tmp_path / "p.csv", "order_no,amount,method,paid_at,reference\n"
                "P-1,5.00,card,2026-05-02T10:00:00Z,TX-1\n"
                f"P-1,{(total - 500) / 100:.2f},transfer,2026-05-03T10:00:00Z,TX-2\n")
    s = summary(run.ok("import", "payments", pay, "--json"))
    assert s["inserted"] == 2
    assert q(db_path, "SELECT paid_cents FROM orders WHERE number = 'P-1'") == [(total,)]
    s = summary(run.ok("import", "payments", pay, "--force", "--json"))
    assert (s["inserted"], s["unchanged"]) == (0, 2)
    bad = write(tmp_path / "b.csv", "order_no,amount,method,reference\nP-1,1.00,card,TX-3\nP-2,1.00,card,TX-4\n"
                "P-9,1.00,card,TX-5\n")
    r = run("import", "payments", bad)
    assert r.exit_code == 65
    assert "line 4, column 'order_no': no such order" in r.stderr
    r = run("import", "payments", bad, "--rejects", tmp_path / "rej.csv")
    assert r.exit_code == 0
    text = (tmp_path / "rej.csv").read_text()
    assert "fully paid" in text and "no such order" in text and "draft" in text
    check_db(db_path)


def test_killed_in_the_middle_of_writing_orders(run, tmp_path, db_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    setup_shop(run)
    before = snapshot(db_path)
    big = tmp_path / "big.csv"
    with open(big, "w", encoding="utf-8") as out:
        out.write(LINES_HEADER)
        for i in range(5000):
            out.write(f"K-{i},2026-06-01,anna@example.de,online,TEA-250,1,5.90,\n")
    marker = tmp_path / "paused"
    env = {**os.environ, "SALESCRM_DB": str(db_path), "SALESCRM_TEST_PAUSE": "import-mid-apply",
           "SALESCRM_TEST_PAUSE_FILE": str(marker)}
    proc = subprocess.Popen([sys.executable, "-m", "salescrm", "import", "orders", str(big)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "never paused"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)  # 2,000 orders are written, not committed
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    check_db(db_path)
    assert snapshot(db_path) == before
    s = summary(run.ok("import", "orders", big, "--json"))
    assert s["inserted"] == 5000
