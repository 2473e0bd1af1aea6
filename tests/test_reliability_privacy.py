"""Privacy: ``customer forget`` (right to erasure) leaves no trace of the
person in the database file or its WAL, keeps orders and money under an
anonymous label, and is audited without the erased data; ``customer
export`` (subject access) gives everything stored about one customer; error
messages, logs and ``--json`` summaries never show the failing row's
personal data."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import pytest

from salescrm import customers, db, orders, privacy
from tests.test_reliability_kit import (
    SECRET_ADDRESS,
    SECRET_EMAIL,
    SECRET_NAME,
    SECRET_PHONE,
    cli,
    files,
    frun,  # noqa: F401
    problems,
    seeded,
)

TRACKING = "JD0146000077123"


def _enrich(path: Path, ids: dict) -> dict:
    """Personal data in the corners: a merged duplicate, a cancel reason and a
    return reason in the append-only history, a refund reference."""
    conn = db.connect(path)
    sid = ids["secret"]
    with db.write_tx(conn):
        dup = customers.add(conn, "Z. Quarrington", email="zq.old@leak-test.example", phone="+44 20 7946 0001",
                            notes="old account of Zelda")
        customers.log(conn, dup, "visit", "visited the shop with her sister")
        customers.merge(conn, sid, dup)
        extra = orders.create(conn, customer=sid, lines=["GT-250:1"], notes="gift wrap for Zelda")
        orders.cancel(conn, extra.id, reason="Zelda Quarrington changed her mind")
        orders.return_items(conn, ids["shipped"], lines=[("GT-250", 1)], reason="Zelda said it was stale")
        orders.refund(conn, ids["shipped"], amount=100, method="cash", reference=f"refund to {SECRET_EMAIL}")
    conn.close()
    return {"dup": dup, "cancelled": extra.number}


SECRETS = [SECRET_EMAIL, SECRET_NAME, "Zelda", "Quarrington", SECRET_ADDRESS, "Hidden Mews", "2079460958",
           "7946 0958", "zq.old@leak-test.example", TRACKING, "QX-77123", "prefers calls after six",
           "spring catalogue", "pays late", "ring Zelda", "Leakford", "zelda-fan", "her sister", "stale", "gift wrap",
           "Quarrington Teas"]


def _leaks(blob: bytes) -> list[str]:
    low = blob.lower()
    found = []
    for s in SECRETS:
        for enc in ("utf-8", "utf-16-le", "utf-16-be"):
            if s.lower().encode(enc) in low:
                found.append(f"{s} ({enc})")
    return found


def _money_rows(path: Path, cid: int) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return [tuple(r) for r in conn.execute(
            "SELECT o.number, o.status, o.total_cents, o.paid_cents, o.returned_cents, l.line_no, l.qty,"
            " l.net_cents, l.tax_cents, (SELECT group_concat(amount_cents) FROM payments p WHERE p.order_id = o.id)"
            " FROM orders o JOIN order_lines l ON l.order_id = o.id WHERE o.customer_id = ? ORDER BY 1, 6", (cid,))]
    finally:
        conn.close()


# --------------------------------------------------------------------------- forget


def test_forget_leaves_no_trace_in_the_file_or_the_wal(tmp_path):
    path = tmp_path / "crm.db"
    ids = seeded(path)
    _enrich(path, ids)
    sid = ids["secret"]
    assert _leaks(b"".join(files(path).values()))  # the test can see the data before
    money_before = _money_rows(path, sid)
    r = cli("customer", "forget", str(sid), "--yes", db_path=path)
    assert r.returncode == 0, r.stderr
    assert f"forgotten customer #{sid}" in r.stderr
    on_disk = files(path)
    assert on_disk.get("-wal", b"") == b""  # checkpointed and truncated, or gone
    assert _leaks(b"".join(on_disk.values())) == []
    # orders and money stay, under the label
    assert _money_rows(path, sid) == money_before
    conn = sqlite3.connect(path)
    name, forgotten, archived = conn.execute(
        "SELECT name, forgotten_at, archived_at FROM customers WHERE id = ?", (sid,)).fetchone()
    audit = conn.execute("SELECT command, action, entity, entity_id FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    audit_text = repr(conn.execute("SELECT * FROM audit").fetchall())
    conn.close()
    assert name == f"forgotten customer #{sid}" and forgotten and archived
    # free text keeps what is not about the person: the cancel reason, minus the name
    conn = sqlite3.connect(path)
    reasons = [r[0] for r in conn.execute("SELECT detail FROM order_events WHERE kind = 'cancel'")]
    conn.close()
    assert any(r.endswith("reason: [erased] changed her mind") for r in reasons), reasons
    assert audit == ("customer forget", "forget", "customer", str(sid))
    assert _leaks(audit_text.encode()) == []
    assert problems(path) == []
    # the append-only guards are back
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE order_events SET detail = 'x'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE payments SET reference = 'x'")
    conn.close()


def test_forget_while_another_program_has_the_database_open(tmp_path):
    """An idle connection keeps the WAL file alive; the checkpoint still
    empties it, and the file holds no trace."""
    path = tmp_path / "crm.db"
    ids = seeded(path)
    other = sqlite3.connect(path)
    other.execute("SELECT count(*) FROM customers").fetchone()
    try:
        r = cli("customer", "forget", SECRET_EMAIL, "--yes", db_path=path)
        assert r.returncode == 0, r.stderr
        on_disk = files(path)
        assert "-wal" in on_disk and on_disk["-wal"] == b""
        assert _leaks(b"".join(on_disk.values())) == []
        assert other.execute("SELECT name FROM customers WHERE id = ?", (ids["secret"],)).fetchone()[0] \
            == privacy.label(ids["secret"])
    finally:
        other.close()


def test_forget_while_a_reader_holds_an_old_snapshot(frun, db_path, monkeypatch):
    """A reader in the middle of a transaction keeps the old pages needed
    for its snapshot: forget commits, says so, and the data leave the file at
    the next checkpoint -- here, when the last connection closes."""
    monkeypatch.setattr(db, "BUSY_TIMEOUT_MS", 200)
    ids = seeded(db_path)
    reader = sqlite3.connect(db_path, isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT email FROM customers WHERE id = ?", (ids["secret"],)).fetchone()[0] == SECRET_EMAIL
    r = frun("customer", "forget", str(ids["secret"]), "--yes")
    assert r.exit_code == 0, r.stderr
    assert "another program is reading" in r.stderr
    # its snapshot still shows the old row: that is what the reader is owed
    assert reader.execute("SELECT email FROM customers WHERE id = ?", (ids["secret"],)).fetchone()[0] == SECRET_EMAIL
    reader.execute("COMMIT")
    reader.close()
    assert frun("customer", "list").exit_code == 0  # any command; its connection is the last to close
    assert _leaks(b"".join(files(db_path).values())) == []


def test_forget_asks_first_and_is_idempotent(frun, db_path):
    ids = seeded(db_path)
    r = frun("customer", "forget", str(ids["secret"]))
    assert r.exit_code == 2 and "cannot be undone" in r.stderr and "--yes" in r.stderr
    assert SECRET_EMAIL in frun("customer", "show", str(ids["secret"]), "--format", "json").stdout
    r = frun("customer", "forget", "424242", "--yes")
    assert r.exit_code == 1 and "no customer" in r.stderr
    assert frun("customer", "forget", str(ids["secret"]), "--yes").exit_code == 0
    r = frun("customer", "forget", str(ids["secret"]), "--yes")
    assert r.exit_code == 0 and "already forgotten" in r.stderr
    # no new orders for a forgotten customer
    r = frun("order", "create", "-c", str(ids["secret"]), "-l", "GT-250:1")
    assert r.exit_code == 1


def test_forget_erases_only_that_customer(frun, db_path):
    ids = seeded(db_path)
    other = ids["others"][2]
    before = frun("customer", "show", str(other), "--format", "json").stdout
    assert frun("customer", "forget", str(ids["secret"]), "--yes").exit_code == 0
    assert frun("customer", "show", str(other), "--format", "json").stdout == before


# --------------------------------------------------------------------------- export


def test_customer_export_holds_everything_stored_about_the_customer(frun, db_path, tmp_path):
    ids = seeded(db_path)
    extra = _enrich(db_path, ids)
    sid = ids["secret"]
    out = tmp_path / "sar.json"
    r = frun("customer", "export", SECRET_EMAIL, "-o", str(out))
    assert r.exit_code == 0, r.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["customer"]["email"] == SECRET_EMAIL and data["customer"]["phone"] == "+442079460958"
    assert data["customer"]["credit_limit"] == "5000.00"  # money as decimal text
    rec = data["records"]
    conn = sqlite3.connect(db_path)
    order_ids = [r[0] for r in conn.execute("SELECT id FROM orders WHERE customer_id = ?", (sid,))]
    marks = ",".join("?" * len(order_ids))
    expected = {
        "customer_tags": conn.execute("SELECT count(*) FROM customer_tags WHERE customer_id = ?", (sid,)),
        "interactions": conn.execute("SELECT count(*) FROM interactions WHERE customer_id = ?", (sid,)),
        "ratings": conn.execute("SELECT count(*) FROM ratings WHERE customer_id = ?", (sid,)),
        "tasks": conn.execute("SELECT count(*) FROM tasks WHERE customer_id = ?", (sid,)),
        "customer_merges": conn.execute("SELECT count(*) FROM customer_merges WHERE kept_id = ?", (sid,)),
        "orders": conn.execute("SELECT count(*) FROM orders WHERE customer_id = ?", (sid,)),
        "order_lines": conn.execute(f"SELECT count(*) FROM order_lines WHERE order_id IN ({marks})", order_ids),
        "payments": conn.execute(f"SELECT count(*) FROM payments WHERE order_id IN ({marks})", order_ids),
        "shipments": conn.execute(f"SELECT count(*) FROM shipments WHERE order_id IN ({marks})", order_ids),
        "returns": conn.execute(f"SELECT count(*) FROM returns WHERE order_id IN ({marks})", order_ids),
        "order_events": conn.execute(f"SELECT count(*) FROM order_events WHERE order_id IN ({marks})", order_ids),
        "stock_movements": conn.execute(f"SELECT count(*) FROM stock_movements WHERE order_id IN ({marks})",
                                        order_ids),
    }
    expected = {k: v.fetchone()[0] for k, v in expected.items()}
    conn.close()
    assert all(n > 0 for n in expected.values()), expected
    assert {k: len(rec.get(k, [])) for k in expected} == expected
    assert {"shipment_lines", "return_lines"} <= set(rec)
    assert any("visited the shop" in i["text"] for i in rec["interactions"])  # moved in by the merge
    assert {p["amount_cents"] for p in rec["payments"]} >= {"10.00", "-1.00"}
    assert any(e["action"] == "merge" for e in data["audit"])
    assert {"customer", "order", "payment", "return"} <= {e["entity"] for e in data["audit"]}
    assert extra["cancelled"] in {o["number"] for o in rec["orders"]}
    # nobody else's data
    text = out.read_text(encoding="utf-8")
    assert "c1@example.com" not in text and "Customer 1\"" not in text


def test_customer_export_to_stdout_and_refusals(frun, db_path):
    ids = seeded(db_path)
    r = frun("customer", "export", str(ids["others"][0]))
    assert r.exit_code == 0 and json.loads(r.stdout)["customer"]["email"] == "c0@example.com"
    assert frun("customer", "export", "999999").exit_code == 1
    r = frun("customer", "export", str(ids["others"][0]), "-o", str(db_path))
    assert r.exit_code == 1 and "--force" in r.stderr


# --------------------------------------------------------------------------- no personal data in messages

LEAKY = ["Zelda Leaky", "zelda.leaky@example.org", "zelda@@leaky", "Leakystraße 9", "+44 (0) 20 ZELDA",
         "0170 9988776655", "ZL-SECRET-1"]


def _assert_no_leak(*texts: str) -> None:
    for t in texts:
        for secret in LEAKY + ["Leaky", "leaky"]:
            assert secret not in t, (secret, t)


@pytest.mark.parametrize("extra", [[], ["--json"], ["--rejects", "REJECTS"], ["--json", "--dry-run"]])
def test_import_errors_name_line_and_column_never_the_value(frun, db_path, tmp_path, extra):
    seeded(db_path)
    src = tmp_path / "bad.csv"
    src.write_text(
        "external_id,name,email,phone,address,credit_limit\n"
        "ZL-SECRET-1,Zelda Leaky,zelda.leaky@example.org,0170 9988776655,Leakystraße 9,not-money\n"
        "ZL-2,Zelda Leaky,zelda@@leaky,,,\n"
        "ZL-3,Zelda Leaky,z3@example.org,+44 (0) 20 ZELDA,,\n"
        "ZL-4,Zelda Leaky,c1@example.com,,,\n"  # the e-mail of another customer
        f"ZL-5,{'Zelda Leaky ' * 30},z5@example.org,,,\n",
        encoding="utf-8")
    args = [a.replace("REJECTS", str(tmp_path / "rejects.csv")) for a in extra]
    r = frun("import", "customers", str(src), *args)
    assert r.exit_code in (0, 65), r.stderr
    _assert_no_leak(r.stdout, r.stderr)
    assert "line 2" in r.stderr and "credit_limit" in r.stderr
    if "--json" in extra:
        summary = json.loads(r.stdout.strip().splitlines()[-1])
        assert summary["errors"]
    if "--rejects" in extra:  # the rows themselves go to the private rejects file, and only there
        rej = tmp_path / "rejects.csv"
        assert "zelda.leaky@example.org" in rej.read_text(encoding="utf-8")
        assert stat.S_IMODE(rej.stat().st_mode) == 0o600


def test_order_and_payment_import_errors_do_not_quote_the_row(frun, db_path, tmp_path):
    seeded(db_path)
    src = tmp_path / "orders.csv"
    src.write_text("order_no,customer_email,customer_name,order_date,sku,qty,notes\n"
                   "IMP-1,zelda.leaky@example.org,Zelda Leaky,2026-01-10,GT-250,2,Leakystraße 9\n"
                   "IMP-2,c1@example.com,Zelda Leaky,2026-13-40,GT-250,x,ZL-SECRET-1\n", encoding="utf-8")
    r = frun("import", "orders", str(src), "--json")
    assert r.exit_code == 65
    _assert_no_leak(r.stdout, r.stderr)
    pay = tmp_path / "pay.csv"
    pay.write_text("order_no,amount,method,paid_at,reference\n"
                   "SO-000001,abc,cash,2026-01-10,zelda.leaky@example.org\n"
                   "SO-999999,1.00,cash,2026-01-10,Zelda Leaky\n", encoding="utf-8")
    r = frun("import", "payments", str(pay), "--json")
    assert r.exit_code == 65
    _assert_no_leak(r.stdout, r.stderr)
