"""``salescrm customer ...`` and ``salescrm agenda`` end to end."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import date, timedelta

import pytest

from tests.conftest import run_subprocess


def add(run, name, *opts):
    result = run.ok("customer", "add", name, *opts)
    assert result.stdout == ""
    assert result.stderr.startswith("added customer ")
    return int(result.stderr.split()[-1])


def one_line_error(result, code=1):
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def add_order(db_path, cid):
    """An order row in whatever ``orders`` table the schema has."""
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    if conn.execute("SELECT 1 FROM sqlite_schema WHERE name = 'orders'").fetchone() is None:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY,"
                     " customer_id INTEGER NOT NULL REFERENCES customers(id)) STRICT")
    values = {"customer_id": cid}
    n = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
    for col in conn.execute("SELECT * FROM pragma_table_info('orders')"):
        if col["name"] in values or col["pk"] or not col["notnull"] or col["dflt_value"] is not None:
            continue
        values[col["name"]] = 0 if "INT" in col["type"].upper() else f"{col['name']}-{n}"
    conn.execute(f"INSERT INTO orders ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                 list(values.values()))
    conn.commit()
    conn.close()


@pytest.fixture
def wang(run):
    return add(run, "王芳", "--email", "wang.fang@example.cn", "--phone", "+86 138 0013 8000",
               "--city", "上海", "--region", "East", "--segment", "retail", "--tag", "vip",
               "--credit-limit", "5000", "--terms-days", "30", "--owner", "li")


# --------------------------------------------------------------------------- add, show, list


def test_add_and_show_cjk(run, wang):
    data = run.json("customer", "show", "wang.fang@example.cn")
    assert data["id"] == wang and data["name"] == "王芳" and data["city"] == "上海"
    assert data["phone"] == "+8613800138000" and data["tags"] == ["vip"]
    assert data["credit_limit"] == 5000 and data["payment_terms_days"] == 30
    assert data["order_count"] == 0 and data["revenue"] == 0 and data["last_order_date"] is None
    assert data["rating_avg"] is None and data["rating_count"] == 0
    assert data["interactions"] == [] and data["tasks"] == [] and data["ratings"] == []
    assert run.json("customer", "show", str(wang))["email"] == "wang.fang@example.cn"


def test_show_table_and_markdown(run, wang):
    text = run.ok("customer", "show", str(wang), "--format", "table").stdout
    assert "王芳" in text and "5,000.00" in text and "Latest interactions" in text
    md = run.ok("customer", "show", str(wang), "--format", "markdown").stdout
    assert md.startswith(f"## Customer {wang}: 王芳") and "### Open tasks" in md


def test_list_search_sort_limit(run, wang):
    ann = add(run, "Ann Lee", "--email", "ann@acme.com", "--company", "Acme", "--region", "West")
    bob = add(run, "Bob", "--company", "Acme Ltd", "--region", "West", "--tag", "vip")
    rows = run.csv("customer", "list", "--search", "王", "--sort", "-created_at", "--limit", "20")
    assert [r["name"] for r in rows] == ["王芳"]
    assert rows[0]["credit_limit"] == "5000.00" and rows[0]["tags"] == "vip"
    assert [r["id"] for r in run.json("customer", "list", "--search", "ACME")] == [ann, bob]
    assert [r["email"] for r in run.json("customer", "list", "--region", "East")] == ["wang.fang@example.cn"]
    assert [r["id"] for r in run.json("customer", "list", "--sort", "-name")] == [wang, bob, ann]
    assert [r["id"] for r in run.json("customer", "list", "--sort", "region,-id")] == [wang, bob, ann]
    assert [r["id"] for r in run.json("customer", "list", "--tag", "vip", "--limit", "1")] == [wang]
    assert [r["id"] for r in run.json("customer", "list", "--search", "138 0013")] == [wang]
    assert run.json("customer", "list", "--since", "tomorrow") == []
    assert len(run.json("customer", "list", "--since", "today")) == 3
    lines = run.ok("customer", "list", "--format", "jsonl").stdout.splitlines()
    assert len(lines) == 3
    tsv = run.ok("customer", "list", "--format", "tsv").stdout.splitlines()
    assert tsv[0].startswith("id\tname\tcompany")


def test_list_table_summary(run):
    for i in range(3):
        add(run, f"C{i}")
    text = run.ok("customer", "list", "--limit", "2", "--format", "table").stdout
    assert "showing 2 of 3 customers" in text
    assert "no customers match" in run.ok("customer", "list", "--search", "zzz", "--format", "table").stdout


def test_list_piped_defaults_to_csv(run, wang):
    out = run.ok("customer", "list").stdout
    assert out.splitlines()[0].startswith("id,name,company,email")


def test_edit_and_clear(run, wang):
    r = run.ok("customer", "edit", str(wang), "--phone", "", "--city", "北京", "--add-tag", "Asia",
               "--remove-tag", "vip", "--credit-limit", "")
    assert r.stderr.startswith(f"updated customer {wang}:")
    data = run.json("customer", "show", str(wang))
    assert data["phone"] is None and data["city"] == "北京" and data["tags"] == ["asia"]
    assert data["credit_limit"] is None
    assert "unchanged" in run.ok("customer", "edit", str(wang), "--city", "北京").stderr
    run.ok("customer", "edit", "wang.fang@example.cn", "--tag", "a", "--tag", "b")
    assert run.json("customer", "show", str(wang))["tags"] == ["a", "b"]
    run.ok("customer", "edit", str(wang), "--tag", "")
    assert run.json("customer", "show", str(wang))["tags"] == []


# --------------------------------------------------------------------------- refusals change nothing


@pytest.mark.parametrize("args, needle", [
    (["customer", "add", "X", "--email", "not-an-email"], "not a valid e-mail"),
    (["customer", "add", "X", "--email", "WANG.FANG@example.cn "], "already has the e-mail"),
    (["customer", "add", "X", "--phone", "call me"], "not a valid phone"),
    (["customer", "add", "X", "--credit-limit", "1,000"], "credit limit"),
    (["customer", "add", "  "], "name must not be empty"),
    (["customer", "show", "999"], "no customer with id 999"),
    (["customer", "show", "nobody@example.com"], "no customer with e-mail"),
    (["customer", "show", "wang"], "not a customer id or e-mail"),
    (["customer", "edit", "999", "--city", "X"], "no customer with id 999"),
    (["customer", "edit", "1", "--email", "bad@"], "not a valid e-mail"),
    (["customer", "edit", "1", "--name", ""], "name must not be empty"),
    (["customer", "delete", "999"], "no customer with id 999"),
    (["customer", "list", "--sort", "salary"], "cannot sort by 'salary'"),
    (["customer", "list", "--sort", "name,-bogus"], "cannot sort by '-bogus'"),
    (["customer", "list", "--since", "someday"], "not a date"),
    (["customer", "list", "--limit", "0"], "--limit"),
    (["customer", "rate", "1", "--score", "abc"], "score must be a whole number from 1 to 5, not 'abc'"),
    (["customer", "rate", "1", "--score", "9"], "from 1 to 5"),
    (["customer", "rate", "999", "--score", "3"], "no customer with id 999"),
    (["customer", "log", "999", "--type", "call", "--text", "x"], "no customer with id 999"),
    (["customer", "log", "1", "--type", "call", "--text", "x", "--at", "noon"], "not a date-time"),
    (["customer", "log", "1", "--type", "call", "--text", "x", "--follow-up", "later"], "not a date"),
    (["customer", "remind", "1", "2026-02-30", "--text", "x"], "not a date"),
    (["customer", "merge", "1", "1"], "into itself"),
    (["customer", "merge", "1", "999"], "no customer with id 999"),
    (["customer", "sample", "--n", "5"], "only 1 match"),
    (["customer", "sample", "--n", "1", "--stratify", "email"], "cannot stratify by 'email'"),
    (["agenda", "done", "999"], "no task with id 999"),
])
def test_bad_input_exit_1_changes_nothing(run, db_path, snap, wang, args, needle):
    assert wang == 1
    before = snap(db_path)
    err = one_line_error(run(*args))
    assert needle in err
    assert snap(db_path) == before


@pytest.mark.parametrize("args", [
    ["customer", "log", "1", "--type", "fax", "--text", "x"],
    ["customer", "rate", "1"],
    ["customer", "add"],
    ["customer", "list", "--limit", "many"],
    ["customer", "show", "1", "--format", "xml"],
    ["agenda", "done", "abc"],
    ["agenda", "--days", "-1"],
    ["customer", "list", "--archived", "--all"],
])
def test_usage_errors_exit_2(run, db_path, snap, wang, args):
    before = snap(db_path)
    one_line_error(run(*args), code=2)
    assert snap(db_path) == before


def test_duplicate_error_names_existing(run, wang):
    err = one_line_error(run("customer", "add", "Someone", "--email", " Wang.Fang@EXAMPLE.cn"))
    assert f"customer {wang} (王芳)" in err


def test_read_commands_do_not_create_the_database(run, db_path):
    assert run.json("customer", "list") == []
    one_line_error(run("customer", "show", "1"))
    assert run.json("agenda") == []
    assert not db_path.exists()


# --------------------------------------------------------------------------- delete, archive


def test_delete_without_orders(run, db_path, wang):
    run.ok("customer", "log", str(wang), "--type", "note", "--text", "hello")
    r = run.ok("customer", "delete", "wang.fang@example.cn")
    assert r.stderr == f"deleted customer {wang}\n"
    one_line_error(run("customer", "show", str(wang)))
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT count(*) FROM interactions").fetchone()[0] == 0
    assert conn.execute("SELECT action FROM audit ORDER BY id DESC LIMIT 1").fetchone()[0] == "delete"


def test_delete_with_orders_refused_then_archived(run, db_path, snap, wang):
    other = add(run, "Ann")
    add_order(db_path, wang)
    before = snap(db_path)
    err = one_line_error(run("customer", "delete", str(wang)))
    assert "has 1 orders" in err and "--force" in err
    assert snap(db_path) == before
    assert "archived customer" in run.ok("customer", "delete", str(wang), "--force").stderr
    assert [r["id"] for r in run.json("customer", "list")] == [other]
    archived = run.json("customer", "list", "--archived")
    assert [r["id"] for r in archived] == [wang] and archived[0]["archived_at"]
    assert [r["id"] for r in run.json("customer", "list", "--all")] == [wang, other]
    assert run.json("customer", "show", str(wang))["archived_at"]
    run.ok("customer", "restore", str(wang))
    assert [r["id"] for r in run.json("customer", "list")] == [wang, other]


# --------------------------------------------------------------------------- interactions, ratings, agenda


def test_log_rate_remind_agenda(run, wang):
    today = date.today()
    r = run.ok("customer", "log", str(wang), "--type", "call", "--text", "Asked for the spring catalogue",
               "--follow-up", (today - timedelta(days=2)).isoformat())
    assert "follow-up task" in r.stderr
    run.ok("customer", "log", str(wang), "--type", "visit", "--text", "Showroom", "--at", "2026-01-05T10:00")
    run.ok("customer", "rate", str(wang), "--score", "4", "--comment", "Pays on time")
    run.ok("customer", "rate", "wang.fang@example.cn", "--score", "5")
    run.ok("customer", "remind", str(wang), "+5d", "--text", "Send the new price list")
    other = add(run, "Bob", "--owner", "sam")
    run.ok("customer", "remind", str(other), "today", "--text", "Call Bob")

    data = run.json("customer", "show", str(wang))
    assert data["rating_count"] == 2 and data["rating_avg"] == 4.5
    assert [i["type"] for i in data["interactions"]] == ["call", "visit"]  # latest first
    assert [t["text"] for t in data["tasks"]] == ["Follow up: Asked for the spring catalogue",
                                                  "Send the new price list"]
    assert data["ratings"][0]["comment"] in ("Pays on time", None)

    due = run.json("agenda")
    assert [(t["customer"], t["days_overdue"]) for t in due] == [("王芳", 2), ("Bob", 0)]
    assert [t["status"] for t in due] == ["overdue", "today"]
    assert len(run.json("agenda", "--days", "7")) == 3
    assert [t["customer"] for t in run.json("agenda", "--owner", "sam")] == ["Bob"]
    assert "nothing due" in run.ok("agenda", "--owner", "nobody", "--format", "table").stdout

    first = due[0]["id"]
    assert run.ok("agenda", "done", str(first)).stderr == f"done: task {first}\n"
    err = one_line_error(run("agenda", "done", str(first)))
    assert "already done" in err
    assert [t["customer"] for t in run.json("agenda")] == ["Bob"]


def test_agenda_done_all_or_nothing(run, db_path, snap, wang):
    run.ok("customer", "remind", str(wang), "today", "--text", "x")
    before = snap(db_path)
    one_line_error(run("agenda", "done", "1", "2"))  # 2 does not exist: 1 stays open
    assert snap(db_path) == before


# --------------------------------------------------------------------------- dupes, merge


def test_dupes_and_merge(run, db_path, snap, wang):
    twin = add(run, "王芳", "--phone", "86 13800138000", "--company", "上海贸易", "--tag", "new",
               "--email", "wang.fang+shop@example.cn")
    run.ok("customer", "log", str(twin), "--type", "call", "--text", "from the twin", "--follow-up", "+1d")
    run.ok("customer", "rate", str(twin), "--score", "2")
    add_order(db_path, twin)
    groups = run.json("customer", "dupes")
    assert {r["id"] for r in groups} == {wang, twin} and groups[0]["reason"] == "email, phone"

    before = snap(db_path)
    moves = run.json("customer", "merge", str(wang), str(twin), "--dry-run")
    assert {m["table"]: m["rows"] for m in moves} == {
        "customer_tags": 1, "interactions": 1, "ratings": 1, "tasks": 1, "orders": 1}
    assert snap(db_path) == before

    r = run.ok("customer", "merge", str(wang), "wang.fang+shop@example.cn")
    assert r.stderr.startswith(f"merged customer {twin} into {wang}: moved ")
    data = run.json("customer", "show", str(wang))
    assert data["company"] == "上海贸易" and data["tags"] == ["new", "vip"]
    assert data["rating_count"] == 1 and len(data["tasks"]) == 1
    assert "wang.fang+shop@example.cn" in data["notes"]
    err = one_line_error(run("customer", "show", str(twin)))
    assert f"merged into customer {wang}" in err
    assert run.json("customer", "dupes") == []
    assert "no likely duplicates" in run.ok("customer", "dupes", "--format", "table").stdout
    assert run("db", "check").exit_code == 0


# --------------------------------------------------------------------------- sample


def test_sample(run, db_path):
    regions = ["East"] * 6 + ["West"] * 3 + ["North"]
    for i, region in enumerate(regions):
        add(run, f"客户{i}", "--region", region, "--segment", "retail" if i % 2 else "b2b")
    a = run.csv("customer", "sample", "--n", "5", "--stratify", "region", "--seed", "7")
    b = run.csv("customer", "sample", "--n", "5", "--stratify", "region", "--seed", "7")
    assert a == b and len(a) == 5
    assert [r["stratum"] for r in a].count("East") == 3
    assert all(r["stratum"] == r["region"] for r in a)
    r = run.ok("customer", "sample", "--n", "5", "--stratify", "region", "--seed", "7", "--format", "csv")
    assert "East 3/6" in r.stderr and "seed 7" in r.stderr
    simple = run.json("customer", "sample", "--n", "4", "--seed", "1", "--segment", "b2b")
    assert len(simple) == 4 and {s["segment"] for s in simple} == {"b2b"}
    assert {s["stratum"] for s in simple} == {"all"}
    assert run.json("customer", "sample", "--n", "4", "--seed", "1", "--segment", "b2b") == simple


def test_add_fires_customer_created_hook(run, tmp_path):
    out = tmp_path / "hook.json"
    run.ok("hook", "add", "customer.created", f"cat > {out}")
    cid = add(run, "王芳")
    message = json.loads(out.read_text())
    assert message["event"] == "customer.created" and message["data"] == {"customer_id": cid}


# --------------------------------------------------------------------------- the installed command


def test_subprocess_round_trip(tmp_path):
    db = str(tmp_path / "sub.db")
    r = run_subprocess("--db", db, "customer", "add", "王芳", "--email", "w@example.cn")
    assert r.returncode == 0 and r.stderr == "added customer 1\n" and r.stdout == ""
    r = run_subprocess("--db", db, "customer", "list", "--search", "王")
    assert r.returncode == 0 and "王芳" in r.stdout
    r = run_subprocess("--db", db, "customer", "rate", "1", "--score", "x")
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    r = run_subprocess("--db", db, "-q", "customer", "add", "B")
    assert r.returncode == 0 and r.stderr == ""


def test_customer_module_is_lazy():
    code = ("import sys, salescrm.cli\n"
            "print(','.join(m for m in ('salescrm.customers', 'salescrm.output', 'random')"
            " if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "salescrm.customers" not in out.stdout and "salescrm.output" not in out.stdout


def test_every_command_has_help(run):
    for args in (["customer"], ["customer", "add"], ["customer", "list"], ["customer", "sample"],
                 ["customer", "merge"], ["agenda"], ["agenda", "done"]):
        r = run.ok(*args, "--help")
        assert "Usage:" in r.stdout
