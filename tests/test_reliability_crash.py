"""Crash safety: a process killed with SIGKILL in the middle of an import, an
order confirmation, a payment, a merge, a migration, an export or a forget
leaves the database as before or as after -- never in between -- and
``db check`` clean.  Real subprocesses (``python -m salescrm``) are killed
at named pause points (``db.pause_point``) or at random moments."""

from __future__ import annotations

import csv
import random
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from salescrm import db
from tests.conftest import snapshot
from tests.test_reliability_kit import (
    SECRET_EMAIL,
    cli,
    counts,
    kill_at,
    only_first_migration,
    problems,
    schema_and_version,
    seeded,
    start,
    wait_for,
)


def customers_csv(path: Path, n: int, *, start_at: int = 0) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["external_id", "name", "email", "phone", "city", "credit_limit", "tags"])
        for i in range(start_at, start_at + n):
            w.writerow([f"EXT-{i:06d}", f"Imported {i}", f"imp{i}@example.net", f"+49 30 {i:07d}",
                        f"City {i % 7}", f"{i % 900}.{i % 100:02d}", "import,batch"])
    return path


def orders_csv(path: Path, n_orders: int, customer_email: str) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["order_no", "customer_email", "order_date", "sku", "qty", "unit_price"])
        for i in range(n_orders):
            for sku, qty in (("GT-250", 1 + i % 3), ("SVC", 1)):
                w.writerow([f"IMP-{i:06d}", customer_email, "2026-01-15", sku, qty, "5.90" if sku == "GT-250" else "50.00"])
    return path


# --------------------------------------------------------------------------- imports


@pytest.mark.parametrize("point", ["import-before-apply", "before-commit"])
def test_kill_during_customer_import_changes_nothing(tmp_path, point):
    path = tmp_path / "crm.db"
    seeded(path)
    src = customers_csv(tmp_path / "in.csv", 1500)
    before = snapshot(path)
    kill_at("import", "customers", src, point=point, db_path=path, tmp=tmp_path)
    assert snapshot(path) == before
    assert problems(path) == []
    # the same file imports cleanly afterwards (the killed run left no trace)
    r = cli("import", "customers", src, db_path=path)
    assert r.returncode == 0, r.stderr
    assert counts(path)["customers"] == len(before["customers"]) + 1500
    assert problems(path) == []


def test_kill_half_way_through_applying_orders_changes_nothing(tmp_path):
    """``import-mid-apply`` is reached after every 2,000 orders written inside
    the transaction: the kill lands with rows already inserted."""
    path = tmp_path / "crm.db"
    seeded(path)
    src = orders_csv(tmp_path / "orders.csv", 2500, "c3@example.com")
    before = snapshot(path)
    kill_at("import", "orders", src, point="import-mid-apply", db_path=path, tmp=tmp_path)
    assert snapshot(path) == before
    assert problems(path) == []


def test_kill_at_random_moments_of_an_import_leaves_before_or_after(tmp_path):
    path = tmp_path / "crm.db"
    seeded(path)
    src = customers_csv(tmp_path / "in.csv", 2000)
    before = snapshot(path)
    # how long a whole run takes here, and what "after" looks like
    done = tmp_path / "done.db"
    seeded(done)
    t0 = time.monotonic()
    r = cli("import", "customers", src, db_path=done)
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    after = counts(done)
    rng = random.Random(20260301)
    outcomes = []
    for _ in range(3):
        seeded(path)
        proc = start("import", "customers", src, db_path=path)
        time.sleep(rng.uniform(0.2, took * 1.3))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        state = snapshot(path)
        if state == before:
            outcomes.append("before")
        else:
            assert counts(path) == after, "a killed import left the database in between"
            outcomes.append("after")
        assert problems(path) == []
    print(f"random kills of a {took:.1f} s import: {outcomes}")


# --------------------------------------------------------------------------- orders, payments, merges


def test_kill_during_order_confirmation(tmp_path):
    """Stock reservation, status and event are one transaction."""
    path = tmp_path / "crm.db"
    ids = seeded(path)
    before = snapshot(path)
    kill_at("order", "confirm", ids["draft2"], point="before-commit", db_path=path, tmp=tmp_path)
    assert snapshot(path) == before
    assert problems(path) == []
    r = cli("order", "confirm", ids["draft2"], db_path=path)
    assert r.returncode == 0, r.stderr
    conn = sqlite3.connect(path)
    status, reserved, confirms = conn.execute(
        "SELECT o.status, (SELECT sum(qty) FROM stock_movements m WHERE m.order_id = o.id AND kind = 'reserve'),"
        " (SELECT count(*) FROM order_events e WHERE e.order_id = o.id AND kind = 'confirm')"
        " FROM orders o WHERE number = ?", (ids["draft2"],)).fetchone()
    conn.close()
    assert (status, reserved, confirms) == ("confirmed", 4, 1)
    assert problems(path) == []


def test_kill_during_payment(tmp_path):
    path = tmp_path / "crm.db"
    ids = seeded(path)
    before = snapshot(path)
    kill_at("order", "pay", ids["shipped"], "--amount", "2.00", "--method", "cash",
            point="before-commit", db_path=path, tmp=tmp_path)
    assert snapshot(path) == before
    assert problems(path) == []


def test_kill_during_customer_merge(tmp_path):
    path = tmp_path / "crm.db"
    ids = seeded(path)
    before = snapshot(path)
    kill_at("customer", "merge", ids["others"][0], ids["secret"], point="before-commit", db_path=path, tmp=tmp_path)
    assert snapshot(path) == before
    assert problems(path) == []
    r = cli("customer", "merge", ids["others"][0], ids["secret"], db_path=path)
    assert r.returncode == 0, r.stderr
    assert problems(path) == []


def test_kill_during_forget(tmp_path):
    path = tmp_path / "crm.db"
    ids = seeded(path)
    before = snapshot(path)
    kill_at("customer", "forget", ids["secret"], "--yes", point="before-commit", db_path=path, tmp=tmp_path)
    assert snapshot(path) == before  # nothing half-erased
    assert problems(path) == []


# --------------------------------------------------------------------------- migrations


def test_kill_during_a_migration_keeps_the_old_version(tmp_path):
    path = tmp_path / "old.db"
    only_first_migration(path)
    version, schema = schema_and_version(path)
    assert version == 1
    before = snapshot(path)
    # the pause comes after the second migration's statements, inside the transaction
    kill_at("customer", "list", point="migration", db_path=path, tmp=tmp_path)
    assert schema_and_version(path) == (version, schema)
    assert snapshot(path) == before
    r = cli("customer", "list", "--format", "csv", db_path=path)
    assert r.returncode == 0, r.stderr
    assert SECRET_EMAIL in r.stdout
    assert schema_and_version(path)[0] == db.schema_version()
    assert problems(path) == []


# --------------------------------------------------------------------------- exports


def test_kill_during_export_leaves_no_partial_file(tmp_path):
    path = tmp_path / "crm.db"
    seeded(path, customers_n=20000)
    before = snapshot(path)
    out = tmp_path / "out" / "customers.jsonl"
    out.parent.mkdir()
    proc = start("export", "customers", "-o", out, db_path=path)
    wait_for(lambda: any(p.name.startswith(".customers.jsonl.tmp") for p in out.parent.iterdir()) or out.exists(),
             what="the export's temporary file", proc=proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    if out.exists():  # it finished first: then the file is whole
        assert out.read_text(encoding="utf-8").count("\n") == 20001
    leftovers = [p for p in out.parent.iterdir() if p.name.startswith(".")]
    for p in leftovers:  # a killed process cannot clean up; what it leaves is private
        assert p.stat().st_mode & 0o077 == 0
    assert snapshot(path) == before
    assert problems(path) == []


def test_kill_during_customer_export_leaves_no_partial_file(tmp_path):
    path = tmp_path / "crm.db"
    ids = seeded(path)
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "sar.json"
    before = snapshot(path)
    kill_at("customer", "export", ids["secret"], "-o", out, point="export-before-rename", db_path=path,
            tmp=tmp_path)
    assert not out.exists()
    (leftover,) = folder.iterdir()  # the whole text, under its temporary name, private
    assert leftover.name.startswith(".sar.json.tmp-") and leftover.stat().st_mode & 0o077 == 0
    assert snapshot(path) == before
    r = cli("customer", "export", ids["secret"], "-o", out, db_path=path)
    assert r.returncode == 0 and out.read_text(encoding="utf-8").rstrip().endswith("}")
