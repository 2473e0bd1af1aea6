"""``salescrm demo``: realistic data in every state, a clean database."""

from __future__ import annotations

import sqlite3

from salescrm import db, demo


def test_demo_builds_every_order_state(tmp_path):
    conn = db.connect(tmp_path / "demo.db")
    with db.write_tx(conn):
        counts = demo.build(conn, seed=7)
    assert counts["customers"] == len(demo.CUSTOMERS)
    statuses = {r[0] for r in conn.execute("SELECT DISTINCT status FROM orders")}
    assert {"draft", "confirmed", "partially_shipped", "shipped", "delivered", "closed",
            "cancelled"} <= statuses
    assert conn.execute("SELECT count(*) FROM returns").fetchone()[0] > 0
    assert conn.execute("SELECT count(*) FROM customers WHERE name GLOB '*[一-龥]*'").fetchone()[0] > 5
    assert db.check(conn) == []


def test_demo_is_deterministic(tmp_path):
    def totals(path):
        conn = db.connect(path)
        with db.write_tx(conn):
            demo.build(conn, seed=3, today=__import__("datetime").date(2026, 6, 1))
        return conn.execute("SELECT group_concat(total_cents) FROM orders ORDER BY id").fetchone()[0]

    assert totals(tmp_path / "a.db") == totals(tmp_path / "b.db")


def test_demo_command(run, tmp_path):
    path = tmp_path / "d.db"
    result = run.ok("--db", str(path), "demo")
    assert "customer list" in result.stdout and "王芳" in result.stdout
    assert f"demo database: {path}" in result.stderr
    assert sqlite3.connect(path).execute("SELECT count(*) FROM orders").fetchone()[0] == 160
    again = run("--db", str(path), "demo", "--no-tour")
    assert again.exit_code == 1 and "already holds data" in again.stderr
