"""Database, output layer and error boundary."""

from __future__ import annotations

import json
import os
import sqlite3
import stat

import pytest

from salescrm import db
from salescrm.errors import Conflict, DatabaseRefused
from tests.conftest import run_subprocess


def test_db_file_created_0600_on_first_write(tmp_path):
    path = tmp_path / "sub" / "dir" / "x.db"
    conn = db.connect(path, write=True)
    conn.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == db.APPLICATION_ID
    assert conn.execute("PRAGMA user_version").fetchone()[0] == db.schema_version()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_read_does_not_create_file(tmp_path):
    path = tmp_path / "none.db"
    conn = db.connect(path, write=False)
    assert conn.execute("SELECT count(*) FROM customers").fetchone()[0] == 0
    conn.close()
    assert not path.exists()


def test_tables_are_strict(tmp_path):
    conn = db.connect(tmp_path / "s.db")
    rows = conn.execute("SELECT name, strict FROM pragma_table_list WHERE schema='main' "
                        "AND name NOT LIKE 'sqlite_%'").fetchall()
    assert rows and all(r[1] == 1 for r in rows), [tuple(r) for r in rows if not r[1]]


def test_newer_schema_refused_and_untouched(tmp_path):
    path = tmp_path / "new.db"
    db.connect(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 999")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(DatabaseRefused, match="newer"):
        db.connect(path)
    assert path.read_bytes() == before


def _at_schema(path, version: int) -> None:
    """A database as salescrm left it at an older ``version``: that many migrations, no more."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    for name, sql in db._migrations()[:version]:
        for statement in db.split_sql(sql):
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {version}")
    conn.execute(f"PRAGMA application_id = {db.APPLICATION_ID}")
    conn.execute("COMMIT")
    conn.close()


def test_an_upgrade_says_so_first_on_the_command_line_and_nowhere_else(tmp_path, run, monkeypatch, capsys):
    old = tmp_path / "old.db"
    _at_schema(old, 6)
    got = run.ok("--db", str(old), "customer", "list")
    assert f"upgrading the database from schema 6 to {db.schema_version()} ..." in got.stderr
    assert run.ok("--db", str(old), "customer", "list").stderr == ""  # done once
    # a large database is warned that it may take minutes
    big = tmp_path / "big.db"
    _at_schema(big, 6)
    monkeypatch.setattr(db, "UPGRADE_SLOW_ORDERS", 0)
    assert "(0 orders: it can take a few minutes; meanwhile other commands exit 75, busy) ..." in run.ok(
        "--db", str(big), "customer", "list").stderr
    # a new database is made, not upgraded: nothing said
    assert "upgrading" not in run.ok("--db", str(tmp_path / "new.db"), "customer", "add", "X").stderr
    # the library says nothing unless told how
    monkeypatch.setattr(db, "upgrade_notice", None)
    _at_schema(tmp_path / "lib.db", 5)
    capsys.readouterr()
    db.connect(tmp_path / "lib.db").close()
    assert capsys.readouterr() == ("", "")
    assert sqlite3.connect(tmp_path / "lib.db").execute("PRAGMA user_version").fetchone()[0] == db.schema_version()


def test_foreign_sqlite_refused(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(DatabaseRefused, match="not a salescrm"):
        db.connect(path)


def test_pragmas(tmp_path):
    conn = db.connect(tmp_path / "p.db")
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA secure_delete").fetchone()[0] == 1
    assert conn.execute("PRAGMA trusted_schema").fetchone()[0] == 0
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000


def test_write_tx_rolls_back(tmp_path):
    conn = db.connect(tmp_path / "r.db")
    with pytest.raises(RuntimeError):
        with db.write_tx(conn):
            db.set_setting(conn, "k", "v")
            raise RuntimeError("boom")
    assert db.get_setting(conn, "k") is None


def test_audit_is_append_only(tmp_path):
    conn = db.connect(tmp_path / "a.db")
    with db.write_tx(conn):
        db.audit(conn, "create", "customer", 1)
    with pytest.raises(Conflict, match="append-only"):
        with db.write_tx(conn):
            conn.execute("DELETE FROM audit")
    assert conn.execute("SELECT count(*) FROM audit").fetchone()[0] == 1


def test_db_info_and_check(run, db_path):
    db.connect(db_path).close()
    info = run.json("db", "info")
    assert info["schema_version"] == db.schema_version()
    assert {r["table"] for r in info["row_counts"]} >= {"customers", "audit"}
    result = run("db", "check")
    assert result.exit_code == 0 and result.stdout == ""


def test_db_backup_0600(run, db_path, tmp_path):
    db.connect(db_path).close()
    dest = tmp_path / "copy.db"
    run.ok("db", "backup", str(dest))
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert sqlite3.connect(dest).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    again = run("db", "backup", str(dest))
    assert again.exit_code == 1 and "--force" in again.stderr


def test_not_a_database_exit_78(run, tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_text("hello, not sqlite\n" * 100)
    result = run("--db", str(bad), "db", "info")
    assert result.exit_code == 78
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert bad.read_text().startswith("hello")


def test_unwritable_path_exit_74(run, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
    finally:
        pass
    result = run("--db", str(ro / "x" / "y.db"), "db", "backup", str(tmp_path / "b.db"))
    assert result.exit_code in (1, 74)


def test_usage_error_exit_2(run):
    result = run("db", "info", "--format", "xml")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error:") and result.stderr.count("\n") == 1


def test_subprocess_help_and_pipe(tmp_path):
    r = run_subprocess("--help")
    assert r.returncode == 0 and "customer" in r.stdout
    r = run_subprocess("--db", str(tmp_path / "z.db"), "db", "info", "--format", "json")
    assert r.returncode == 0 and json.loads(r.stdout)["exists"] is False


def test_audit_command_lists_writes_without_personal_data(run):
    run.ok("customer", "add", "王芳", "--email", "wang.fang@example.cn")
    rows = run.csv("audit", "--entity", "customer")
    assert rows and rows[0]["action"] == "create" and rows[0]["command"] == "customer add"
    text = run.ok("audit", "--format", "json").stdout
    assert "wang.fang" not in text and "王芳" not in text
    bad = run("audit", "--since", "yesterdayish")
    assert bad.exit_code == 1 and bad.stderr.startswith("Error:")


def test_wal_and_shm_are_0600_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        conn = db.connect(tmp_path / "u" / "x.db")
        with db.write_tx(conn):
            db.set_setting(conn, "k", "v")
        files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "u").iterdir()}
        conn.close()
    finally:
        os.umask(old)
    assert files.get("x.db") == 0o600
    assert all(mode == 0o600 for mode in files.values()), files
    assert stat.S_IMODE((tmp_path / "u").stat().st_mode) == 0o700


def test_pipe_into_head_ends_quietly(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "pipe.db"
    conn = db.connect(path)
    with db.write_tx(conn):
        conn.executemany(
            "INSERT INTO customers (name, name_key, created_at, updated_at) VALUES (?, ?, ?, ?)",
            [(f"C{i}", f"c{i}", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z") for i in range(20000)])
    conn.close()
    cmd = f"{sys.executable} -m salescrm --db {path} customer list --limit 20000 | head -1"
    r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, timeout=60)
    assert r.stdout.startswith("id,"), r.stdout
    assert r.stderr == "" and r.returncode == 0


@pytest.mark.parametrize("args", [
    ["order", "quote", "SO-000001", "--output", "", "--html", "--force"],
    ["order", "quote", "SO-000001", "--output", ".", "--force"],
    ["customer", "export", "1", "--output", ".", "--force"],
    ["db", "backup", "", "--force"],
    ["db", "backup", ".", "--force"],
])
def test_a_file_to_write_that_names_a_directory_or_nothing_is_a_usage_error(run, db_path, tmp_path, monkeypatch,
                                                                               args):
    # (found by the fuzz test: an empty --output is the current directory, and the temporary file
    # beside it had no name to be made from)
    from salescrm import customers, orders, products, stock

    conn = db.connect(db_path)
    with db.write_tx(conn):
        customers.add(conn, "王芳", email="wang@example.cn")
        products.add(conn, sku="TEA", name="Tea", price=1000, tax_rate="0")
        stock.receive(conn, "TEA", 5)
        orders.create(conn, customer="wang@example.cn", lines=["TEA:1"])
    conn.close()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    got = run(*args)
    assert got.exit_code == 2, got.stderr
    assert "internal error" not in got.stderr
    assert "give a file name" in got.stderr or "is a directory" in got.stderr
    assert list(work.iterdir()) == []


def test_file_to_write_refuses_a_directory_or_no_name(tmp_path):
    from salescrm.errors import UsageError
    from salescrm.validate import file_to_write

    for bad in ("", ".", str(tmp_path), tmp_path / ".."):
        with pytest.raises(UsageError, match="give a file name to --rejects"):
            file_to_write(bad, option="--rejects")
    assert file_to_write(tmp_path / "out.csv")[0] == tmp_path / "out.csv"
    assert file_to_write("new/out.csv")[0].name == "out.csv"
    path, tmp = file_to_write(tmp_path / "out.csv")
    assert tmp.parent == path.parent and tmp.name.startswith(".out.csv.tmp-")
