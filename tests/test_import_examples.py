"""The shipped example mapping files work on the shipped public data sets."""

from __future__ import annotations

import csv
import json
import sqlite3
from decimal import Decimal
from pathlib import Path

from salescrm import db

EX = Path(__file__).parent.parent / "examples"
CHINOOK = EX / "datasets" / "chinook"


def test_chinook_end_to_end(run, db_path):
    run.ok("import", "customers", CHINOOK / "customers.csv", "--map-file", EX / "chinook_customers.toml")
    run.ok("import", "products", CHINOOK / "products.csv", "--map-file", EX / "chinook_products.toml")
    s = json.loads(run.ok("import", "orders", CHINOOK / "invoice_lines.csv", "--map-file",
                          EX / "chinook_orders.toml", "--json").stdout)
    assert (s["inserted"], s["detail"]["lines_inserted"], s["rejected"]) == (412, 2240, 0)
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT name, external_id, region FROM customers WHERE id = 1").fetchone() == (
        "Luís Gonçalves", "1", "SP")
    assert conn.execute("SELECT count(*), sum(total_cents) FROM orders WHERE status = 'confirmed'").fetchone() == (
        412, 232860)  # Chinook's invoices add up to 2,328.60
    # each invoice total equals Chinook's own
    with open(CHINOOK / "invoice_lines.csv", encoding="utf-8", newline="") as f:
        want: dict[str, Decimal] = {}
        for r in csv.DictReader(f):
            want[r["InvoiceId"]] = want.get(r["InvoiceId"], Decimal(0)) + Decimal(r["UnitPrice"]) * int(r["Quantity"])
    got = {n: Decimal(t) / 100 for n, t in conn.execute("SELECT number, total_cents FROM orders")}
    assert got == want
    r = run.ok("import", "orders", CHINOOK / "invoice_lines.csv", "--map-file", EX / "chinook_orders.toml")
    assert "already imported" in r.stderr
    c = db.connect(db_path)
    assert db.check(c) == []


def test_online_retail_sample(run, tmp_path, db_path):
    src = EX / "datasets" / "online_retail" / "online_retail_2010-12.csv"
    head = tmp_path / "retail.csv"
    with open(src, encoding="utf-8", newline="") as f, open(head, "w", encoding="utf-8", newline="") as out:
        for i, line in enumerate(f):
            if i > 3000:
                break
            out.write(line)
    rej = tmp_path / "rejected.csv"
    s = json.loads(run.ok("import", "orders", head, "--map-file", EX / "online_retail_orders.toml",
                          "--create-missing", "--rejects", rej, "--json").stdout)
    assert s["inserted"] > 100 and s["rejected"] > 0
    reasons = rej.read_text(encoding="utf-8")
    assert "qty: must be a whole number greater than 0" in reasons  # cancellations
    assert "is required to find the customer" in reasons  # guest sales
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT currency, channel FROM orders LIMIT 1").fetchone() == ("GBP", "online")
    assert conn.execute("SELECT external_id FROM customers WHERE external_id = '17850.0'").fetchone()
