"""Security: user input only ever reaches SQL as bound parameters; sort and
filter fields are whitelisted; every file we create is 0600 whatever the
umask; every connection runs with secure_delete on, trusted_schema off and
foreign keys on; a database that is not ours is refused."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from salescrm import db
from tests.conftest import snapshot
from tests.test_reliability_kit import cli, command_tree, frun, paused, seeded  # noqa: F401

MARK = "zq9x"  # in every payload: finding it in SQL text means a value was pasted into SQL
PAYLOADS = [
    f"{MARK}'; DROP TABLE customers; --",
    f"{MARK}name); DELETE FROM orders; --",
    f"1 OR 1=1 {MARK}",
    f"{MARK}\u2019) OR \u2018x\u2019=\u2018x",  # unicode quotes
    f"{MARK}\" OR \"\"=\"",
    f"-{MARK},id; PRAGMA writable_schema=1",
]
READ_GROUPS = {"report", "export", "audit", "agenda", "dashboard"}
READ_NAMES = {"list", "show", "dupes", "sample", "runs", "info", "check", "margin", "history", "explain",
              "movements"}
NOT_FILTERS = {"output", "fmt", "dest", "rejects", "map_file", "force", "raw"}


def list_commands():
    out = []
    for path, cmd in command_tree():
        if not path or path == ("agenda", "done"):
            continue
        if path[0] in READ_GROUPS or path[-1] in READ_NAMES:
            opts = [p for p in cmd.params if p.param_type_name == "option" and not getattr(p, "is_flag", False)
                    and p.name not in NOT_FILTERS]
            args = [p for p in cmd.params if p.param_type_name == "argument"]
            out.append((path, opts, args))
    return out


class Recorder(sqlite3.Connection):
    """Keeps the SQL text of every statement, before parameters are bound."""

    seen: list[str] = []

    def execute(self, sql, *args, **kwargs):
        Recorder.seen.append(sql)
        return super().execute(sql, *args, **kwargs)

    def executemany(self, sql, *args, **kwargs):
        Recorder.seen.append(sql)
        return super().executemany(sql, *args, **kwargs)


def test_injection_payloads_in_every_filter_and_sort_option(frun, db_path, monkeypatch):
    ids = seeded(db_path)
    real = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: real(*a, factory=Recorder, **k))
    Recorder.seen = []
    before = snapshot(db_path)
    commands = list_commands()
    assert len(commands) >= 15
    tried, outcomes = 0, {}
    plausible = {"customer": str(ids["secret"]), "order": ids["shipped"], "sku": "GT-250", "promo": "1",
                 "plan": "1", "key": "currency", "percent": "10"}
    for path, opts, args in commands:
        base = [*path] + [plausible.get(a.name, "1") for a in args if a.nargs != -1]
        targets = [(o.opts[0], None) for o in opts] + [(None, i) for i, a in enumerate(args)]
        for option, arg_index in targets:
            for payload in PAYLOADS:
                if option is not None:
                    argv = [*base, option, payload]
                else:
                    argv = list(base)
                    argv[len(path) + arg_index] = payload
                r = frun(*argv, "--format", "csv") if any(o.name == "fmt" for o in opts) else frun(*argv)
                tried += 1
                assert r.exception is None or isinstance(r.exception, SystemExit), (argv, r.exception)
                assert r.exit_code <= 2, (argv, r.exit_code, r.stderr)
                assert "internal error" not in r.stderr and "Traceback" not in r.stderr, (argv, r.stderr)
                outcomes[r.exit_code] = outcomes.get(r.exit_code, 0) + 1
    assert snapshot(db_path) == before
    assert len(Recorder.seen) > 1000  # the recorder did see the statements
    leaked = [sql for sql in Recorder.seen if MARK in sql]
    assert leaked == [], leaked[:3]
    assert tried > 300
    print(f"\n{tried} injection attempts over {len(commands)} read commands: exit codes {outcomes}")


def test_sort_fields_are_whitelisted(frun, db_path):
    seeded(db_path)
    r = frun("customer", "list", "--sort", "name); DELETE FROM customers; --")
    assert r.exit_code == 1 and "cannot sort by" in r.stderr and "sort by one of" in r.stderr
    r = frun("customer", "list", "--sort", "-created_at,name", "--format", "csv")
    assert r.exit_code == 0


# --------------------------------------------------------------------------- files


def test_every_file_is_0600_whatever_the_umask(tmp_path):
    home = tmp_path / "new" / "place"
    path = home / "crm.db"
    out = tmp_path / "out"
    umask0 = lambda: os.umask(0)  # noqa: E731
    bad = tmp_path / "bad.csv"
    bad.write_text("external_id,name,email\nE1,Good Row,good@example.org\nE2,Bad Row,not-an-email\n",
                   encoding="utf-8")
    steps = [
        ("customer", "add", "Umask Zero", "--email", "u0@example.org"),
        ("import", "customers", bad, "--rejects", out / "rejects.csv"),
        ("db", "backup", out / "backup.db"),
        ("export", "customers", "-o", out / "customers.csv"),
        ("export", "all", "-o", out / "all"),
        ("customer", "export", "u0@example.org", "-o", out / "sar.json"),
        ("order", "create", "-c", "u0@example.org"),
    ]
    out.mkdir()
    os.chmod(out, 0o777)
    for step in steps:
        r = cli(*step, db_path=path, preexec_fn=umask0)
        assert r.returncode == 0, (step, r.stderr)
    # -wal and -shm exist while a command runs: look at them then
    proc = paused("customer", "add", "Paused", point="before-commit", db_path=path, tmp=tmp_path)
    try:
        during = {p.name: stat.S_IMODE(p.stat().st_mode) for p in home.iterdir()}
    finally:
        proc.kill()
        proc.communicate()
    assert {"crm.db", "crm.db-wal", "crm.db-shm", "crm.db.import-lock"} <= set(during)
    made = [p for p in out.rglob("*") if p.is_file()] + [p for p in home.iterdir()]
    modes = {str(p.relative_to(tmp_path)): stat.S_IMODE(p.stat().st_mode) for p in made}
    assert {p: m for p, m in modes.items() if m != 0o600} == {}
    assert {p: m for p, m in during.items() if m != 0o600} == {}
    for d in (home, home.parent, out / "all"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
    assert len(modes) >= 10, modes


# --------------------------------------------------------------------------- connections


def test_every_connection_has_the_safe_pragmas(frun, db_path, monkeypatch):
    seen = []
    real = db._configure

    def configure(conn):
        real(conn)
        seen.append(tuple(conn.execute(f"PRAGMA {p}").fetchone()[0]
                          for p in ("secure_delete", "trusted_schema", "foreign_keys")))

    monkeypatch.setattr(db, "_configure", configure)
    ids = seeded(db_path)
    seen.clear()
    for args in (("customer", "add", "X"), ("customer", "list"), ("order", "pay", ids["shipped"], "-a", "1", "-m", "cash"),
                 ("customer", "forget", str(ids["secret"]), "--yes"), ("db", "check"), ("report", "sales")):
        assert frun(*args).exit_code == 0, args
    assert len(seen) >= 6
    assert set(seen) == {(1, 0, 1)}


def test_a_database_with_tables_but_no_application_id_is_refused(tmp_path):
    path = tmp_path / "plain.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO customers (name) VALUES ('someone else''s data')")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    r = cli("customer", "add", "Intruder", db_path=path)
    assert r.returncode == 78 and "not a salescrm one" in r.stderr
    assert path.read_bytes() == before


def test_an_empty_file_is_ours_to_initialise(tmp_path):
    path = tmp_path / "empty.db"
    path.touch(mode=0o600)
    r = cli("customer", "add", "First", db_path=path)
    assert r.returncode == 0, r.stderr
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == db.APPLICATION_ID
    conn.close()
