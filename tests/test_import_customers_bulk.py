"""The bulk path of ``import customers``: new customers are validated and
normalised by ``customers.prepare_new`` (what ``customers.add`` writes) and
inserted with ``executemany``; existing ones still go through
``customers.edit``.  The result must be exactly what adding them one by one
gives."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest

from salescrm import customers, db, importer
from tests.conftest import snapshot

HEADER = ["external_id", "name", "company", "email", "phone", "city", "segment", "credit_limit",
          "payment_terms_days", "tags", "created_at", "notes"]
ROWS = [
    ["E-1", "  Anna   Schmidt ", "ACME  GmbH", "Anna@Example.DE", "0049 (30) 123-4567", "Berlin", "retail",
     "1500.50", "30", "VIP, Berlin ,vip", "2024-03-01T09:30:00Z", "likes tea"],
    ["E-2", "Müller, Jörg", "", "joerg@example.de", "+49 89 7654321", "München", "", "", "", "", "", ""],
    ["", "王芳", "上海茶叶", "wang.fang@example.cn", "+86 138 0013 8000", "上海", "b2b", "0", "0", "茶", "", "多行\n备注"],
    ["E-4", "ｆｕｌｌ ｗｉｄｔｈ", "", "", "555 0100", "", "", "", "", "", "", ""],
]
KEEP = ("id", "name", "name_key", "company", "company_key", "email", "email_key", "phone", "address", "city",
        "region", "country", "segment", "source", "owner", "notes", "credit_limit", "payment_terms_days",
        "external_id", "archived_at", "forgotten_at")


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def table(db_path: Path, sql: str) -> list[dict]:
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql)]
    finally:
        conn.close()


def state(db_path: Path) -> tuple[list[dict], list[dict]]:
    """Customers (without the timestamps of the run) and their tags."""
    rows = [{k: r[k] for k in KEEP} | {"created": r["created_at"][:10]}
            for r in table(db_path, "SELECT * FROM customers ORDER BY id")]
    return rows, table(db_path, "SELECT customer_id, tag FROM customer_tags ORDER BY customer_id, tag")


def one_by_one(db_path: Path, rows: list[list[str]]) -> None:
    """The same rows through customers.add, as the importer did before."""
    conn = db.connect(db_path)
    try:
        with db.write_tx(conn):
            for row in rows:
                r = dict(zip(HEADER, row))
                tags = r.pop("tags")
                created = r.pop("created_at")
                values = {k: (v if v != "" else None) for k, v in r.items()}
                cid = customers.add(conn, values.pop("name").strip(), tags=tags.split(",") if tags else [],
                                    **values)
                if created:
                    conn.execute("UPDATE customers SET created_at = ? WHERE id = ?", (created, cid))
    finally:
        conn.close()


def test_bulk_insert_gives_what_customers_add_gives(run, tmp_path, db_path):
    s = json.loads(run.ok("import", "customers", write_csv(tmp_path / "c.csv", ROWS), "--json").stdout)
    assert (s["inserted"], s["updated"], s["rejected"]) == (4, 0, 0)
    reference = tmp_path / "ref.db"
    one_by_one(reference, ROWS)
    assert state(db_path) == state(reference)
    got = state(db_path)[0]
    assert (got[0]["name"], got[0]["name_key"], got[0]["email_key"], got[0]["phone"], got[0]["credit_limit"],
            got[0]["created"]) == ("Anna   Schmidt", "anna schmidt", "anna@example.de", "0049301234567",
                                   150050, "2024-03-01")
    assert got[3]["name_key"] == "full width"
    assert state(db_path)[1][:2] == [{"customer_id": 1, "tag": "berlin"}, {"customer_id": 1, "tag": "vip"}]
    created = "SELECT count(*) AS n FROM audit WHERE action = 'create' AND entity = 'customer'"
    assert table(db_path, created)[0]["n"] == 4
    assert table(db_path, "SELECT count(*) AS n FROM audit WHERE entity = 'import_run'")[0]["n"] == 1
    conn = db.connect(db_path)
    try:
        assert db.check(conn) == []
    finally:
        conn.close()


def test_new_ids_follow_the_existing_ones_and_updates_still_work(run, tmp_path, db_path):
    run.ok("customer", "add", "Seed", "--email", "seed@example.com")
    run.ok("customer", "add", "Anna", "--email", "anna@example.de", "--city", "Bonn")
    run.ok("customer", "add", "Old Jörg", "--email", "old@example.de")
    run.ok("customer", "edit", "3", "--external-id", "E-2")
    run.ok("customer", "delete", "1")  # the highest id is what counts, not the number of rows
    out = tmp_path / "hook.jsonl"
    run.ok("hook", "add", "customer.created", f"cat >> {out}; echo >> {out}")
    s = json.loads(run.ok("import", "customers", write_csv(tmp_path / "c.csv", ROWS), "--json").stdout)
    # row 1 matches customer 2 by e-mail, row 2 customer 3 by external id; rows 3 and 4 are new
    assert (s["inserted"], s["updated"], s["unchanged"], s["rejected"]) == (2, 2, 0, 0)
    rows = {r["id"]: r for r in table(db_path, "SELECT * FROM customers")}
    assert sorted(rows) == [2, 3, 4, 5]
    assert (rows[2]["city"], rows[2]["external_id"], rows[3]["name"]) == ("Berlin", "E-1", "Müller, Jörg")
    assert (rows[4]["email"], rows[5]["external_id"]) == ("wang.fang@example.cn", "E-4")
    events = [json.loads(line) for line in out.read_text().split("\n") if line.strip()]
    assert sorted(e["data"]["customer_id"] for e in events) == [4, 5]
    # and again: nothing changes
    s = json.loads(run.ok("import", "customers", write_csv(tmp_path / "c.csv", ROWS), "--force", "--json").stdout)
    assert (s["inserted"], s["updated"], s["unchanged"]) == (0, 0, 4)


def test_a_row_refused_by_the_library_names_line_and_column_never_the_value(run, tmp_path, db_path):
    bad = [r.copy() for r in ROWS]
    bad[1][HEADER.index("payment_terms_days")] = "4000"  # a number to the parser, too many days to customers
    run.ok("customer", "add", "Seed", "--email", "seed@example.com")
    before = snapshot(db_path)
    r = run("import", "customers", write_csv(tmp_path / "c.csv", bad))
    assert r.exit_code == 65
    assert "line 3: payment terms must be a whole number of days from 0 to 3650" in r.stderr
    assert "Müller" not in r.stderr and "joerg" not in r.stderr
    assert snapshot(db_path) == before
    rejects = tmp_path / "rejects.csv"
    s = json.loads(run.ok("import", "customers", write_csv(tmp_path / "c.csv", bad), "--rejects", rejects,
                          "--json").stdout)
    assert (s["inserted"], s["rejected"]) == (3, 1)
    assert [c["external_id"] for c in table(db_path, "SELECT external_id FROM customers ORDER BY id")] == [
        None, "E-1", None, "E-4"]
    assert "payment terms" in rejects.read_text(encoding="utf-8")


def test_a_batch_that_breaks_a_unique_key_is_redone_row_by_row(monkeypatch, tmp_path, db_path):
    """Should matching ever miss an existing e-mail, the batch falls back to
    customers.add, which refuses just that row (and says why)."""
    conn = db.connect(db_path)
    try:
        with db.write_tx(conn):
            customers.add(conn, "Anna", email="anna@example.de")
        monkeypatch.setattr(importer.CustomersAdapter, "resolve", lambda self, ctx: None)  # matches nothing
        rejects = tmp_path / "rejects.csv"
        s = importer.run(conn, db_path, importer.Options(entity="customers", source=str(write_csv(
            tmp_path / "c.csv", ROWS)), rejects=rejects))
        assert (s.inserted, s.rejected) == (3, 1)
        assert s.errors == ["line 2: refused (Conflict)"]
        names = [r[0] for r in conn.execute("SELECT name FROM customers ORDER BY id")]
        assert names == ["Anna", "Müller, Jörg", "王芳", "ｆｕｌｌ ｗｉｄｔｈ"]
        assert [r[0] for r in conn.execute("SELECT tag FROM customer_tags WHERE customer_id = 3")] == ["茶"]
        assert db.check(conn) == []
    finally:
        conn.close()


@pytest.mark.parametrize("n", [1, importer.BATCH + 7])
def test_batches(run, tmp_path, db_path, n):
    rows = [[f"X-{i}", f"Name {i}", "", f"p{i}@example.com", "", "", "", "", "", "a,b" if i % 2 else "", "", ""]
            for i in range(n)]
    s = json.loads(run.ok("import", "customers", write_csv(tmp_path / "c.csv", rows), "--json").stdout)
    assert s["inserted"] == n
    assert table(db_path, "SELECT count(*) AS n, min(id) AS lo, max(id) AS hi FROM customers")[0] == {
        "n": n, "lo": 1, "hi": n}
    assert table(db_path, "SELECT count(*) AS n FROM customer_tags")[0]["n"] == 2 * (n // 2)
