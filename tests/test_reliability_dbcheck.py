"""``salescrm db check``: silent with exit 0 on a healthy database; exit 1
and one problem per row -- never personal data -- for a damaged file,
foreign-key violations, money stored with the wrong type, order totals that
differ from their lines, stock that differs from its ledger."""

from __future__ import annotations

import csv
import io
import sqlite3
from pathlib import Path

import pytest

from tests.test_reliability_kit import (
    SECRET_ADDRESS,
    SECRET_EMAIL,
    SECRET_NAME,
    SECRET_PHONE,
    cli,
    seeded,
)

PERSONAL = (SECRET_EMAIL, SECRET_NAME, SECRET_PHONE, SECRET_ADDRESS, "Quarrington", "Leakford", "c7@example.com",
            "Customer 7")


def check(path: Path, *extra: str) -> tuple[int, list[str], str]:
    r = cli("db", "check", "--format", "csv", *extra, db_path=path)
    rows = [row["problem"] for row in csv.DictReader(io.StringIO(r.stdout))] if r.stdout else []
    for secret in PERSONAL:
        assert secret not in r.stdout and secret not in r.stderr, secret
    return r.returncode, rows, r.stderr


def raw(path: Path) -> sqlite3.Connection:
    """A connection that bypasses our rules, as another tool would."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = OFF")
    return conn


def test_healthy_database_is_silent(tmp_path):
    path = tmp_path / "crm.db"
    seeded(path)
    r = cli("db", "check", db_path=path)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


@pytest.mark.parametrize("extra", [(), ("--quick",)])
def test_damaged_pages_are_reported(tmp_path, extra):
    path = tmp_path / "crm.db"
    seeded(path, customers_n=3000)
    conn = sqlite3.connect(path)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    leaves = [r[0] for r in conn.execute("SELECT pageno FROM dbstat WHERE name = 'customers' AND pagetype = 'leaf'")]
    conn.close()
    good = path.read_bytes()
    for offset, garbage in ((0, b"\xff" * 16), (300, bytes(range(256)) * 2)):
        bad = tmp_path / f"damaged-{offset}.db"
        start = (leaves[len(leaves) // 2] - 1) * page_size + offset
        bad.write_bytes(good[:start] + garbage + good[start + len(garbage):])
        code, problems, err = check(bad, *extra)
        assert code == 1, err
        assert problems and all(p.startswith(("integrity:", "money:", "salescrm.")) for p in problems), problems
        assert any(p.startswith("integrity:") for p in problems)


def test_foreign_key_violations(tmp_path):
    path = tmp_path / "crm.db"
    seeded(path)
    conn = raw(path)
    conn.execute("INSERT INTO interactions (customer_id, kind, text, at, os_user, created_at)"
                 f" VALUES (99999, 'note', 'written by another tool about {SECRET_NAME}', 'x', 'x', 'x')")
    conn.execute("DELETE FROM products WHERE sku = 'SVC'")  # order lines still point at it
    conn.close()
    code, problems, _ = check(path)
    assert code == 1
    assert any(p.startswith("foreign key: interactions row") and p.endswith("missing customers") for p in problems)
    assert any(p.startswith("foreign key: order_lines row") and p.endswith("missing products") for p in problems)


def test_money_with_the_wrong_type(tmp_path):
    """STRICT tables refuse a REAL or TEXT amount, so this needs a file
    edited past the schema (writable_schema), as a damaged or hand-made file
    could be."""
    path = tmp_path / "crm.db"
    seeded(path)
    conn = raw(path)
    sql = conn.execute("SELECT sql FROM sqlite_schema WHERE name = 'payments'").fetchone()[0]
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute("UPDATE sqlite_schema SET sql = ? WHERE name = 'payments'", (sql.replace(") STRICT", ")"),))
    conn.close()
    conn = raw(path)
    conn.execute("PRAGMA ignore_check_constraints = ON")
    conn.execute("DROP TRIGGER payments_no_update")
    conn.execute("UPDATE payments SET amount_cents = 10.5 WHERE id = 1")
    conn.execute("INSERT INTO payments (order_id, kind, amount_cents, method, paid_at, created_at)"
                 " VALUES (1, 'payment', '3.20', 'cash', 'x', 'x')")
    conn.close()
    code, problems, _ = check(path)
    assert code == 1
    assert "money: payments.amount_cents holds 2 values that are not integer cents" in problems
    assert "money: payments.amount_cents is declared INTEGER in a table that is not STRICT" in problems


def test_order_totals_that_differ_from_their_lines(tmp_path):
    path = tmp_path / "crm.db"
    ids = seeded(path)
    conn = raw(path)
    conn.execute("PRAGMA ignore_check_constraints = ON")
    conn.execute("UPDATE orders SET total_cents = total_cents + 1 WHERE number = ?", (ids["confirmed"],))
    conn.execute("UPDATE order_lines SET net_cents = net_cents + 5, total_cents = total_cents + 5"
                 " WHERE order_id = (SELECT id FROM orders WHERE number = ?) AND line_no = 1", (ids["draft2"],))
    conn.close()
    code, problems, _ = check(path)
    assert code == 1
    assert any(p.startswith(f"order {ids['confirmed']}: stored totals differ") for p in problems), problems
    assert any(p.startswith(f"order {ids['draft2']}") for p in problems), problems


def test_stock_that_differs_from_its_ledger(tmp_path):
    path = tmp_path / "crm.db"
    seeded(path)
    conn = raw(path)
    conn.execute("UPDATE products SET on_hand = on_hand + 7 WHERE sku = 'GT-250'")
    conn.close()
    code, problems, _ = check(path)
    assert code == 1
    assert any(p.startswith("stock: product") and "GT-250" in p and "ledger" in p for p in problems), problems


def test_every_problem_at_once_and_json(tmp_path):
    path = tmp_path / "crm.db"
    seeded(path)
    conn = raw(path)
    conn.execute("PRAGMA ignore_check_constraints = ON")
    conn.execute("UPDATE products SET reserved = reserved + 1 WHERE sku = 'MUG-01'")
    conn.execute("UPDATE orders SET paid_cents = paid_cents + 100 WHERE id = 1")
    conn.execute("INSERT INTO customer_tags (customer_id, tag) VALUES (4242, 'orphan')")
    conn.close()
    r = cli("db", "check", "--format", "json", db_path=path)
    assert r.returncode == 1
    import json

    problems = [p["problem"] for p in json.loads(r.stdout)]
    assert len(problems) >= 3
    kinds = {p.split(":")[0].split(" ")[0] for p in problems}
    assert {"stock", "order", "foreign"} <= kinds, problems
