"""Hooks: registered commands run after a commit with the event as JSON on
stdin; a failing hook is reported and never undoes the change."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest

from salescrm import db, hooks


def test_add_list_disable_enable_remove(run, tmp_path):
    hid = run.ok("hook", "add", "order.paid", "cat > /dev/null").stdout.strip()
    assert hid == "1"
    rows = run.csv("hook", "list")
    assert rows == [{"id": "1", "event": "order.paid", "enabled": "true", "command": "cat > /dev/null",
                     "created_at": rows[0]["created_at"]}]
    run.ok("hook", "disable", "1")
    assert run.csv("hook", "list")[0]["enabled"] == "false"
    run.ok("hook", "enable", "1")
    assert run.csv("hook", "list", "--event", "order.paid")[0]["enabled"] == "true"
    run.ok("hook", "remove", "1")
    assert run.csv("hook", "list") == []
    r = run("hook", "add", "order.exploded", "true")
    assert r.exit_code == 1 and "unknown event" in r.stderr
    r = run("hook", "remove", "9")
    assert r.exit_code == 1 and "no hook with id 9" in r.stderr


def test_import_finished_runs_the_hook_after_commit(run, tmp_path, db_path):
    seen = tmp_path / "seen.json"
    # the hook reads the event and checks that the data is already committed
    script = tmp_path / "hook.sh"
    check = f"import sqlite3; print(sqlite3.connect('{db_path}').execute('select count(*) from customers').fetchone()[0])"
    script.write_text(f"#!/bin/sh\ncat > {seen}\n{sys.executable} -c \"{check}\" > {tmp_path}/count.txt\n")
    script.chmod(0o700)
    run.ok("hook", "add", "import.finished", str(script))
    f = tmp_path / "c.csv"
    f.write_text("email,name\na@example.com,A\n", encoding="utf-8")
    run.ok("import", "customers", f)
    event = json.loads(seen.read_text())
    assert event["event"] == "import.finished"
    assert event["data"]["status"] == "committed" and event["data"]["inserted"] == 1
    assert "errors" not in event["data"]
    assert (tmp_path / "count.txt").read_text().strip() == "1"  # it ran after the commit


def test_failing_hook_is_reported_and_changes_stay(run, tmp_path, db_path):
    run.ok("hook", "add", "import.finished", "exit 3")
    f = tmp_path / "c.csv"
    f.write_text("email,name\na@example.com,A\n", encoding="utf-8")
    r = run.ok("import", "customers", f)
    assert "warning: hook 1 (import.finished) failed: exit 3; the change itself was saved" in r.stderr
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT count(*) FROM customers").fetchone()[0] == 1


def test_hook_test_command(run, tmp_path):
    out = tmp_path / "t.json"
    run.ok("hook", "add", "order.shipped", f"cat > {out}")
    r = run.ok("hook", "test", "1")
    assert "ran: exit 0" in r.stderr
    event = json.loads(out.read_text())
    assert event["event"] == "order.shipped" and event["data"]["test"] is True
    run.ok("hook", "add", "order.paid", "exit 1")
    r = run("hook", "test", "2")
    assert r.exit_code == 1 and "failed: exit 1" in r.stderr


def test_fire_for_other_modules(tmp_path, monkeypatch):
    path = tmp_path / "h.db"
    conn = db.connect(path)
    out = tmp_path / "fired.json"
    with db.write_tx(conn):
        hooks.add(conn, "order.paid", f"cat > {out}; echo $SALESCRM_EVENT >> {out}.env")
        hooks.add(conn, "order.paid", "sleep 5")
        h = hooks.add(conn, "order.paid", "true")
        hooks.set_enabled(conn, h.id, False)
    with db.write_tx(conn):
        with pytest.raises(RuntimeError, match="after the transaction"):
            hooks.fire(conn, "order.paid", {"order_no": "SO-1"})
    monkeypatch.setenv(hooks.TIMEOUT_ENV, "0.5")
    reported = []
    results = hooks.fire(conn, "order.paid", {"order_no": "SO-1", "amount": "5.00"}, report=reported.append)
    assert [r.ok for r in results] == [True, False]  # the disabled one did not run
    assert results[1].detail == "timed out after 0.5s" and reported == results
    assert json.loads(out.read_text())["data"] == {"order_no": "SO-1", "amount": "5.00"}
    assert Path(f"{out}.env").read_text().strip() == "order.paid"
    conn.close()
    # by path, as the other modules' CLI may call it; no database: nothing to do
    assert hooks.fire(tmp_path / "none.db", "order.paid", {}) == []
    assert len(hooks.fire(path, "customer.created", {"customer_id": 1})) == 0


def test_imports_fire_record_events_after_commit(run, tmp_path, db_path):
    log = tmp_path / "events.jsonl"
    for event in ("customer.created", "order.confirmed", "order.paid"):
        run.ok("hook", "add", event, f"cat >> {log}")
    c = tmp_path / "c.csv"
    c.write_text("email,name\na@example.com,A\nb@example.com,B\n", encoding="utf-8")
    run.ok("import", "customers", c)
    run.ok("import", "customers", c, "--force")  # matched, not created: no new events
    p = tmp_path / "p.csv"
    p.write_text("sku,name,list_price\nX-1,Thing,10.00\n", encoding="utf-8")
    run.ok("import", "products", p)
    run.ok("stock", "receive", "X-1", "5")
    o = tmp_path / "o.csv"
    o.write_text("order_no,order_date,customer_email,sku,qty,status\nE-1,2026-01-01,a@example.com,X-1,1,confirmed\n"
                 "E-2,2026-01-01,b@example.com,X-1,1,\n", encoding="utf-8")
    run.ok("import", "orders", o, "--dry-run")  # a dry run fires nothing
    run.ok("import", "orders", o)
    pay = tmp_path / "pay.csv"
    pay.write_text("order_no,amount,method,reference\nE-1,4.00,card,R1\nE-1,6.00,card,R2\n", encoding="utf-8")
    run.ok("import", "payments", pay)
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["event"], e["data"].get("customer_id"), e["data"].get("order_no")) for e in events] == [
        ("customer.created", 1, None), ("customer.created", 2, None),
        ("order.confirmed", 1, "E-1"), ("order.paid", None, "E-1")]
