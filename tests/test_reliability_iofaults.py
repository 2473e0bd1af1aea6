"""I/O faults: disk full (RLIMIT_FSIZE in the child), a read-only database or
directory, a missing directory, a file that is not a database, a database
from a newer salescrm or another application.  Each gives one clear line on
stderr, its documented exit code, and leaves the files as they were.

Root ignores file permissions; the read-only cases then run the child
without CAP_DAC_OVERRIDE (``drop_root_overrides``), which makes root obey
them, and are skipped only where even that is impossible."""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import stat
from pathlib import Path

import pytest

from salescrm import customers, db
from tests.conftest import snapshot
from tests.test_reliability_crash import customers_csv
from tests.test_reliability_kit import (
    cli,
    drop_root_overrides,
    file_bytes,
    files,
    permissions_enforceable,
    problems,
    seeded,
)

SHM = 32768  # the WAL index: a write limit below it fails before any data is touched


def file_limit(n: int):
    """preexec_fn: files may not grow past ``n`` bytes; SIGXFSZ is ignored,
    so the write fails with EFBIG instead of killing the process."""
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (n, n))
    return apply


def one_line(r, *needles: str) -> None:
    assert r.stderr.startswith("Error: ") and r.stderr.count("\n") == 1, r.stderr
    assert "Traceback" not in r.stderr
    for n in needles:
        assert n in r.stderr, r.stderr


# --------------------------------------------------------------------------- disk full


def test_disk_full_during_import_fails_cleanly(tmp_path):
    path = tmp_path / "crm.db"
    seeded(path)
    src = customers_csv(tmp_path / "in.csv", 3000)
    before = snapshot(path)
    r = cli("import", "customers", src, db_path=path, preexec_fn=file_limit(SHM + 200_000))
    assert r.returncode == 74
    one_line(r, "cannot write the database")
    assert snapshot(path) == before
    assert problems(path) == []
    # with room again, the same file imports
    r = cli("import", "customers", src, db_path=path)
    assert r.returncode == 0, r.stderr


def test_disk_full_during_an_interactive_write(tmp_path):
    path = tmp_path / "crm.db"
    seeded(path)
    before = snapshot(path)
    # room for the WAL index and one page: every write needs more
    r = cli("customer", "add", "Full Disk", "--note", "n" * 9000, db_path=path,
            preexec_fn=file_limit(SHM + 4096 + 56))
    assert r.returncode == 74
    one_line(r, "the disk is full")
    assert snapshot(path) == before
    assert problems(path) == []


def test_disk_full_during_export_leaves_no_file(tmp_path):
    path = tmp_path / "crm.db"
    seeded(path, customers_n=5000)
    out = tmp_path / "out"
    out.mkdir()
    r = cli("export", "customers", "-o", out / "c.csv", db_path=path, preexec_fn=file_limit(100_000))
    assert r.returncode == 74
    one_line(r, "c.csv")
    assert list(out.iterdir()) == []


def test_disk_full_during_backup_leaves_no_file(tmp_path):
    path = tmp_path / "crm.db"
    seeded(path, customers_n=5000)
    out = tmp_path / "out"
    out.mkdir()
    r = cli("db", "backup", out / "b.db", db_path=path, preexec_fn=file_limit(100_000))
    assert r.returncode == 74
    one_line(r, "b.db")
    assert list(out.iterdir()) == []  # not even the copy's rollback journal
    assert problems(path) == []


def test_disk_full_during_customer_export_leaves_no_file(tmp_path):
    path = tmp_path / "crm.db"
    ids = seeded(path)
    conn = db.connect(path)
    with db.write_tx(conn):  # a long history: an export of about 200 KB
        for i in range(200):
            customers.log(conn, ids["secret"], "note", f"note {i}: " + "x" * 1000)
    db.checkpoint(conn)
    conn.close()
    out = tmp_path / "out"
    out.mkdir()
    r = cli("customer", "export", ids["secret"], "-o", out / "sar.json", db_path=path,
            preexec_fn=file_limit(100_000))
    assert r.returncode == 74
    one_line(r)
    assert list(out.iterdir()) == []


# --------------------------------------------------------------------------- read-only


@pytest.fixture
def enforce(tmp_path):
    if not permissions_enforceable(tmp_path):
        pytest.skip("file permissions cannot be enforced here (root without CAP_SETPCAP)")
    return drop_root_overrides


def test_read_only_database_file(tmp_path, enforce):
    path = tmp_path / "crm.db"
    seeded(path)
    os.chmod(path, 0o400)
    main_before = path.read_bytes()
    r = cli("customer", "list", "--format", "csv", db_path=path, preexec_fn=enforce)
    assert r.returncode == 0, r.stderr
    assert "Customer 7" in r.stdout
    for args in (("customer", "add", "Cannot Write"), ("order", "pay", "SO-000001", "-a", "1", "-m", "cash"),
                 ("import", "customers", customers_csv(tmp_path / "in.csv", 10))):
        r = cli(*args, db_path=path, preexec_fn=enforce)
        assert r.returncode == 74, (args, r.stderr)
        one_line(r, "read-only")
    assert path.read_bytes() == main_before
    os.chmod(path, 0o600)
    assert problems(path) == []


def test_read_only_directory(tmp_path, enforce):
    """SQLite's WAL needs its -wal and -shm beside the file: in a directory
    we cannot write, reads fail too -- with exit 74 and one line."""
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "crm.db"
    seeded(path)
    before = files(path)
    os.chmod(folder, 0o500)
    try:
        for args in (("customer", "list"), ("customer", "add", "Cannot Write"), ("db", "check")):
            r = cli(*args, db_path=path, preexec_fn=enforce)
            assert r.returncode == 74, (args, r.stderr)
            one_line(r, "read-only")
        assert sorted(p.name for p in folder.iterdir()) == ["crm.db"]
        assert files(path) == before
    finally:
        os.chmod(folder, 0o700)


def test_unwritable_new_database_location(tmp_path, enforce):
    folder = tmp_path / "locked"
    folder.mkdir()
    os.chmod(folder, 0o500)
    try:
        r = cli("customer", "add", "Nowhere", db_path=folder / "sub" / "crm.db", preexec_fn=enforce)
        assert r.returncode == 74
        one_line(r, "cannot create the database")
    finally:
        os.chmod(folder, 0o700)


# --------------------------------------------------------------------------- missing, foreign, damaged, newer


def test_missing_directory(tmp_path):
    # reading a database that is not there: an empty result, and no file made
    nowhere = tmp_path / "no" / "such" / "crm.db"
    r = cli("customer", "list", "--format", "csv", db_path=nowhere)
    assert r.returncode == 0 and r.stdout.startswith("id,")
    assert not (tmp_path / "no").exists()
    # writing creates the folders, private
    r = cli("customer", "add", "First", db_path=nowhere)
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(nowhere.parent.stat().st_mode) == 0o700
    # a "directory" that is a file cannot be created: exit 74 (also as root)
    blocker = tmp_path / "plain-file"
    blocker.write_text("not a folder")
    r = cli("customer", "add", "Second", db_path=blocker / "crm.db")
    assert r.returncode == 74
    one_line(r, "cannot create the database")
    assert blocker.read_text() == "not a folder"


@pytest.mark.parametrize("content", [
    b"hello, this is a text file and not a database\n" * 100,
    b"\x00" * 4096 + b"\xff" * 4096,
    "truncated",
])
def test_not_a_database(tmp_path, content):
    path = tmp_path / "crm.db"
    if content == "truncated":
        seeded(tmp_path / "good.db")
        content = (tmp_path / "good.db").read_bytes()[:3000]
    path.write_bytes(content)
    for args in (("customer", "list"), ("customer", "add", "Nope"), ("db", "check"), ("db", "info")):
        r = cli(*args, db_path=path)
        assert r.returncode == 78, (args, r.returncode, r.stderr)
        one_line(r, "not a salescrm database")
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("crm")) == ["crm.db"]


def test_database_of_another_application_is_refused(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA application_id = 1196444237")  # 'GPKG': a GeoPackage
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    for args in (("customer", "list"), ("customer", "add", "Nope"), ("db", "check")):
        r = cli(*args, db_path=path)
        assert r.returncode == 78, (args, r.stderr)
        one_line(r, "not a salescrm one")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_database_from_a_newer_salescrm_is_refused_untouched(tmp_path, journal):
    """Also a backup (rollback journal): it is not switched to WAL on the way
    to being refused."""
    path = tmp_path / "newer.db"
    seeded(path)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {db.schema_version() + 1}")
    conn.execute(f"PRAGMA journal_mode = {journal}")
    conn.commit()
    conn.close()
    before = file_bytes(path)
    for args in (("customer", "list"), ("customer", "add", "Nope"), ("db", "check"),
                 ("import", "customers", customers_csv(tmp_path / "in.csv", 5))):
        r = cli(*args, db_path=path)
        assert r.returncode == 78, (args, r.stderr)
        one_line(r, "newer than this salescrm")
    assert file_bytes(path) == before
