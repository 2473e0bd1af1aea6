"""Importing customers and products through the CLI: formats, encodings,
mapping, strict parsing, idempotency, all-or-nothing, rejects, dry runs,
overlapping runs and a process killed mid-import."""

from __future__ import annotations

import csv
import fcntl
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from salescrm import db, importer
from tests.conftest import snapshot

DATA = Path(__file__).parent / "data"

HEADER = "external_id,name,email,phone,city,credit_limit\n"
ROWS = [
    "000123,Anna Schmidt,anna@example.de,0049 30 1234567,Berlin,1500.50\n",
    '000124,"Müller, Jörg",joerg@example.de,+49 89 7654321,"München\nSchwabing",\n',
    "000125,王芳,wang.fang@example.cn,+86 138 0013 8000,上海,0\n",
]


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8", newline="")
    else:
        path.write_bytes(text)
    return path


def customers(db_path: Path) -> list[dict]:
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM customers ORDER BY id")]
    finally:
        conn.close()


def count(db_path: Path, table: str) -> int:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


def summary(result) -> dict:
    return json.loads(result.stdout)


# --------------------------------------------------------------------------- formats


def test_csv_import_keeps_text_as_text(run, tmp_path, db_path):
    f = write(tmp_path / "c.csv", HEADER + "".join(ROWS))
    s = summary(run.ok("import", "customers", f, "--json"))
    assert (s["status"], s["rows"], s["inserted"], s["rejected"]) == ("committed", 3, 3, 0)
    rows = customers(db_path)
    assert [r["external_id"] for r in rows] == ["000123", "000124", "000125"]  # leading zeros survive
    assert rows[0]["phone"] == "0049301234567"  # leading zero kept, normalised like 'customer add'
    assert rows[1]["phone"] == "+49897654321"  # + kept
    assert rows[1]["name"] == "Müller, Jörg"
    assert rows[1]["city"] == "München\nSchwabing"  # quoted field with an embedded newline
    assert rows[0]["credit_limit"] == 150050 and rows[2]["credit_limit"] == 0
    assert rows[2]["name"] == "王芳"
    assert {type(r["external_id"]) for r in rows} == {str}


@pytest.mark.parametrize("fmt", ["tsv", "json", "jsonl"])
def test_other_formats_give_the_same_rows(run, tmp_path, db_path, fmt):
    reference = tmp_path / "ref.db"
    f = write(tmp_path / "c.csv", HEADER + "".join(ROWS))
    run.ok("--db", reference, "import", "customers", f)
    recs = list(csv.DictReader(open(f, encoding="utf-8", newline="")))
    if fmt == "tsv":
        text = "\t".join(recs[0]) + "\n" + "".join(
            "\t".join(v.replace("\n", " ") if False else v for v in r.values()) + "\n" for r in recs if "\n" not in "".join(r.values()))
        # TSV cannot hold the newline without quotes: csv-style quoting works too
        import io
        buf = io.StringIO()
        w = csv.writer(buf, delimiter="\t", lineterminator="\n")
        w.writerow(list(recs[0]))
        for r in recs:
            w.writerow(list(r.values()))
        text = buf.getvalue()
    elif fmt == "json":
        text = json.dumps([{k: (v or None) for k, v in r.items()} for r in recs], ensure_ascii=False, indent=1)
    else:
        text = "".join(json.dumps({k: v for k, v in r.items() if v}, ensure_ascii=False) + "\n" for r in recs)
    g = write(tmp_path / f"c.{fmt}", text)
    run.ok("import", "customers", g)
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("created_at", "updated_at")} for r in rows]  # noqa: E731
    assert strip(customers(db_path)) == strip(customers(reference))


def test_json_numbers_are_read_as_written(run, tmp_path, db_path):
    f = write(tmp_path / "c.json", '[{"email": "a@example.com", "name": "A", "credit_limit": 12.5,'
                                   ' "payment_terms_days": 30, "external_id": "007"}]')
    run.ok("import", "customers", f)
    r = customers(db_path)[0]
    assert (r["credit_limit"], r["payment_terms_days"], r["external_id"]) == (1250, 30, "007")


def test_json_rejects_nan_nested_and_duplicate_keys(run, tmp_path, db_path):
    f = write(tmp_path / "c.jsonl",
              '{"email": "a@example.com", "name": "A", "credit_limit": NaN}\n'
              '{"email": "b@example.com", "name": {"first": "B"}}\n'
              '{"email": "c@example.com", "name": "C", "name": "D"}\n')
    r = run("import", "customers", f)
    assert r.exit_code == 65
    assert "line 1: is not valid JSON" in r.stderr
    assert "line 2, column 'name': holds a nested value" in r.stderr
    assert "line 3, column 'name': appears twice" in r.stderr
    assert customers(db_path) == []


def test_stdin(run, db_path):
    s = summary(run.ok("import", "customers", "-", "--json", input=HEADER + ROWS[0]))
    assert s["inserted"] == 1 and s["source"] == "-"
    r = run.ok("import", "customers", "-", input=HEADER + ROWS[0])
    assert "already imported" in r.stderr


def test_bom_and_crlf(run, tmp_path, db_path):
    text = (HEADER + ROWS[0] + ROWS[2]).replace("\n", "\r\n")
    f = write(tmp_path / "c.csv", b"\xef\xbb\xbf" + text.encode("utf-8"))
    run.ok("import", "customers", f)
    rows = customers(db_path)
    assert rows[0]["external_id"] == "000123"  # the BOM did not stick to the first header
    assert rows[1]["city"] == "上海"  # no stray \r


def test_invalid_utf8_names_the_line_and_suggests_an_encoding(run, tmp_path, db_path):
    f = write(tmp_path / "c.csv", (HEADER + ROWS[0]).encode() + "9,Zoë,z@example.com,,Köln,\n".encode("latin-1"))
    r = run("import", "customers", f)
    assert r.exit_code == 65
    assert "line 3 is not valid utf-8" in r.stderr
    assert "--encoding" in r.stderr
    assert snapshot(db_path).get("customers", []) == []
    g = write(tmp_path / "l.csv", (HEADER + "9,Zoë,z@example.com,,Köln,\n").encode("latin-1"))
    run.ok("import", "customers", g, "--encoding", "latin-1")
    assert customers(db_path)[0]["name"] == "Zoë"


def test_missing_file_exit_66(run, tmp_path):
    r = run("import", "customers", tmp_path / "nope.csv")
    assert r.exit_code == 66 and "no such file" in r.stderr


def test_ragged_rows_and_duplicate_headers(run, tmp_path, db_path):
    f = write(tmp_path / "c.csv", HEADER + ROWS[0] + "000200,Short Row\n")
    r = run("import", "customers", f)
    assert r.exit_code == 65
    assert "line 3: has 2 fields but the header has 6" in r.stderr
    g = write(tmp_path / "d.csv", "email,name,email\na@example.com,A,b@example.com\n")
    r = run("import", "customers", g)
    assert r.exit_code == 65 and "names column 'email' twice" in r.stderr
    assert count(db_path, "customers") == 0


def test_nul_bytes_and_size_cap(run, tmp_path, db_path):
    f = write(tmp_path / "c.csv", HEADER + ROWS[0] + "000300,Nul\x00Name,n@example.com,,,\n"
              + "000301," + "x" * 50 + ",long@example.com,,,\n")
    r = run("import", "customers", f, "--max-field", "40")
    assert r.exit_code == 65
    assert "line 3, column 'name': contains a NUL byte" in r.stderr
    assert "line 4, column 'name': is longer than 40 characters" in r.stderr
    assert count(db_path, "customers") == 0


def test_strict_money_and_decimal_comma(run, tmp_path, db_path):
    bad = ["1,500.00", "1e3", "NaN", "Infinity", "$5", "1.234"]
    text = "email,name,credit_limit\n" + "".join(f"c{i}@example.com,C{i},\"{v}\"\n" for i, v in enumerate(bad))
    f = write(tmp_path / "c.csv", text)
    r = run("import", "customers", f)
    assert r.exit_code == 65
    assert r.stderr.count("column 'credit_limit': not a valid amount") == len(bad)
    g = write(tmp_path / "d.csv", 'email,name,credit_limit\nd@example.com,D,"1.234,50"\ne@example.com,E,"7,5"\n')
    run.ok("import", "customers", g, "--decimal-comma")
    assert [c["credit_limit"] for c in customers(db_path)] == [123450, 750]


def test_dates_iso_or_given_format(run, tmp_path, db_path):
    f = write(tmp_path / "c.csv", "email,name,created_at\na@example.com,A,31/12/2025 10:00\n")
    r = run("import", "customers", f)
    assert r.exit_code == 65 and "column 'created_at': not a date-time" in r.stderr
    run.ok("import", "customers", f, "--date-format", "%d/%m/%Y %H:%M")
    assert customers(db_path)[0]["created_at"].startswith("2025-12-31")


# --------------------------------------------------------------------------- mapping


def test_map_options_and_unknown_columns(run, tmp_path, db_path):
    f = write(tmp_path / "c.csv", "Nr,Full Name,E-mail,Fax\n1,Anna,anna@example.de,123\n")
    r = run("import", "customers", f, "--map", "Nr=external_id", "--map", "Full Name=name", "--map", "E-mail=email")
    assert r.exit_code == 65 and "unknown column 'Fax'" in r.stderr and "--map 'Fax=_'" in r.stderr
    run.ok("import", "customers", f, "--map", "Nr=external_id", "--map", "Full Name=name",
           "--map", "E-mail=email", "--map", "Fax=_")
    c = customers(db_path)[0]
    assert (c["external_id"], c["name"], c["email"]) == ("1", "Anna", "anna@example.de")
    r = run("import", "customers", f, "--map", "Nr=nickname")
    assert r.exit_code == 2 and "no field 'nickname'" in r.stderr


def test_map_file_with_constants_and_skip(run, db_path):
    s = summary(run.ok("import", "customers", DATA / "shop_customers.csv", "--map-file", DATA / "shop.toml", "--json"))
    assert s["inserted"] == 3
    rows = customers(db_path)
    assert [r["external_id"] for r in rows] == ["000123", "000124", "000125"]
    assert {r["source"] for r in rows} == {"webshop"}
    assert rows[2]["city"] == "上海"


def test_bad_map_file(run, tmp_path):
    m = write(tmp_path / "m.toml", "colums = 3\n")
    r = run("import", "customers", DATA / "shop_customers.csv", "--map-file", m)
    assert r.exit_code == 65 and "unknown keys: colums" in r.stderr
    r = run("import", "customers", DATA / "shop_customers.csv", "--map-file", tmp_path / "none.toml")
    assert r.exit_code == 66


# --------------------------------------------------------------------------- idempotency


def test_same_file_again_is_a_no_op(run, tmp_path, db_path):
    f = write(tmp_path / "c.csv", HEADER + "".join(ROWS))
    run.ok("import", "customers", f)
    before = snapshot(db_path)
    r = run.ok("import", "customers", f, "--json")
    assert summary(r)["status"] == "already-imported"
    assert "already imported" in r.stderr and "nothing to do" in r.stderr
    assert snapshot(db_path) == before
    s = summary(run.ok("import", "customers", f, "--force", "--json"))
    assert (s["inserted"], s["updated"], s["unchanged"]) == (0, 0, 3)


def test_changed_file_applies_only_the_changes(run, tmp_path, db_path):
    f = write(tmp_path / "c.csv", HEADER + "".join(ROWS))
    run.ok("import", "customers", f)
    before = {c["id"]: c for c in customers(db_path)}
    changed = [ROWS[0].replace("Berlin", "Potsdam"), ROWS[1], ROWS[2],
               "000126,Neu,neu@example.de,,Hamburg,\n"]
    g = write(tmp_path / "c2.csv", HEADER + "".join(changed))
    s = summary(run.ok("import", "customers", g, "--json"))
    assert (s["inserted"], s["updated"], s["unchanged"], s["rejected"]) == (1, 1, 2, 0)
    after = {c["id"]: c for c in customers(db_path)}
    assert after[1]["city"] == "Potsdam"
    assert after[2] == before[2] and after[3] == before[3]  # untouched, updated_at included


def test_match_by_email_case_insensitively(run, tmp_path, db_path):
    run.ok("import", "customers", write(tmp_path / "a.csv", "email,name\nAnna@Example.de,Anna\n"))
    s = summary(run.ok("import", "customers", write(tmp_path / "b.csv", "email,name,city\n anna@example.DE ,Anna,Berlin\n"), "--json"))
    assert (s["inserted"], s["updated"]) == (0, 1)
    assert count(db_path, "customers") == 1


def test_duplicate_keys_in_one_file(run, tmp_path, db_path):
    f = write(tmp_path / "c.csv", "email,name\na@example.com,A\nb@example.com,B\nA@example.com,A again\n")
    r = run("import", "customers", f)
    assert r.exit_code == 65 and "line 4, column 'email': the same e-mail as line 2" in r.stderr


# --------------------------------------------------------------------------- all or nothing


def test_bad_row_at_the_end_of_a_large_file_writes_nothing(run, tmp_path, db_path):
    run.ok("import", "customers", write(tmp_path / "seed.csv", "email,name\nseed@example.com,Seed\n"))
    before = snapshot(db_path)
    n = 20_000
    with open(tmp_path / "big.csv", "w", encoding="utf-8") as f:
        f.write("email,name,phone\n")
        for i in range(n):
            f.write(f"user{i}@example.com,User {i},+1 555 {i:07d}\n")
        f.write("secret-person-at-nowhere,Private Name,+1 555 0000000\n")
    r = run("import", "customers", tmp_path / "big.csv")
    assert r.exit_code == 65
    assert f"line {n + 2}, column 'email': not a valid e-mail address" in r.stderr
    assert "1 of 20001 rows are invalid; nothing was imported" in r.stderr
    assert "secret-person" not in r.stderr and "Private Name" not in r.stderr  # no personal data
    assert snapshot(db_path) == before


def test_rejects_file_keeps_the_valid_rows(run, tmp_path, db_path):
    f = write(tmp_path / "c.csv", HEADER + ROWS[0] + "000200,Bad,not-an-email,,,\n" + ROWS[2]
              + "000201,Worse,w@example.com,,,-5\n")
    rej = tmp_path / "rejects.csv"
    s = summary(run.ok("import", "customers", f, "--rejects", rej, "--json"))
    assert (s["status"], s["inserted"], s["rejected"]) == ("partial", 2, 2)
    assert stat.S_IMODE(rej.stat().st_mode) == 0o600
    rows = list(csv.DictReader(open(rej, encoding="utf-8", newline="")))
    assert [r["line"] for r in rows] == ["3", "5"]
    assert rows[0]["email"] == "not-an-email" and "email: not a valid e-mail" in rows[0]["reason"]
    assert "credit_limit: must not be negative" in rows[1]["reason"]
    assert [c["external_id"] for c in customers(db_path)] == ["000123", "000125"]


def test_dry_run_writes_nothing(run, tmp_path, db_path):
    run.ok("import", "customers", write(tmp_path / "a.csv", HEADER + ROWS[0]))
    before = snapshot(db_path)
    f = write(tmp_path / "c.csv", HEADER + ROWS[0].replace("Berlin", "Bonn") + ROWS[1])
    r = run.ok("import", "customers", f, "--dry-run", "--json")
    s = summary(r)
    assert (s["status"], s["inserted"], s["updated"]) == ("dry-run", 1, 1)
    assert "nothing was written" in r.stderr
    assert snapshot(db_path) == before
    # and the real run afterwards is not mistaken for a re-run
    assert summary(run.ok("import", "customers", f, "--json"))["status"] == "committed"


def test_products_import_and_update(run, tmp_path, db_path):
    s = summary(run.ok("import", "products", DATA / "products.csv", "--json"))
    assert s["inserted"] == 3
    g = write(tmp_path / "p.csv", "sku,name,list_price,active\ntea-250,龙井绿茶 250g,6.20,true\nMUG-01,Mug,12.00,false\n")
    s = summary(run.ok("import", "products", g, "--json"))
    assert (s["inserted"], s["updated"], s["unchanged"]) == (0, 2, 0)
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT sku, list_price, active FROM products ORDER BY id").fetchall() == [
        ("TEA-250", 620, 1), ("MUG-01", 1200, 0), ("GIFT-BOX", 2500, 1)]
    s = summary(run.ok("import", "products", g, "--force", "--json"))
    assert s["unchanged"] == 2


# --------------------------------------------------------------------------- concurrency and crashes


def test_overlapping_import_exits_75_at_once(run, tmp_path, db_path):
    run.ok("import", "customers", write(tmp_path / "a.csv", HEADER + ROWS[0]))
    lock = importer.lock_path(db_path)
    fd = os.open(lock, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another import holds it
    try:
        t0 = time.monotonic()
        r = run("import", "customers", write(tmp_path / "b.csv", HEADER + ROWS[1]))
        assert r.exit_code == 75
        assert "another import is running" in r.stderr
        assert time.monotonic() - t0 < 3
    finally:
        os.close(fd)
    run.ok("import", "customers", tmp_path / "b.csv")  # freed


def _spawn(args: list[str], env: dict) -> subprocess.Popen:
    full = dict(os.environ)
    full.update(env)
    return subprocess.Popen([sys.executable, "-m", "salescrm", *args], env=full,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"process ended early: {proc.stderr.read().decode()}")
        if time.monotonic() > deadline:
            raise AssertionError("pause point never reached")
        time.sleep(0.05)


@pytest.mark.parametrize("point", ["import-before-apply", "before-commit"])
def test_killed_mid_import_leaves_the_database_unchanged(tmp_path, db_path, run, point):
    run.ok("import", "customers", write(tmp_path / "seed.csv", HEADER + ROWS[0]))
    before = snapshot(db_path)
    f = tmp_path / "many.csv"
    with open(f, "w", encoding="utf-8") as out:
        out.write("email,name\n")
        for i in range(3000):
            out.write(f"k{i}@example.com,K {i}\n")
    marker = tmp_path / "paused"
    proc = _spawn(["import", "customers", str(f)],
                  {"SALESCRM_DB": str(db_path), "SALESCRM_TEST_PAUSE": point,
                   "SALESCRM_TEST_PAUSE_FILE": str(marker)})
    try:
        _wait_for(marker, proc)
        # while it holds the lock, a second import is turned away at once
        r2 = subprocess.run([sys.executable, "-m", "salescrm", "import", "customers", str(f)],
                            env={**os.environ, "SALESCRM_DB": str(db_path)}, capture_output=True, text=True,
                            timeout=30)
        assert r2.returncode == 75
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()
    conn = db.connect(db_path)
    assert db.check(conn) == []
    conn.close()
    assert snapshot(db_path) == before
    s = summary(run.ok("import", "customers", f, "--json"))  # the lock died with the process
    assert s["inserted"] == 3000


def test_import_runs_listing(run, tmp_path):
    run.ok("import", "customers", write(tmp_path / "a.csv", HEADER + ROWS[0]))
    rows = run.csv("import", "runs")
    assert rows[0]["entity"] == "customers" and rows[0]["source"] == "a.csv" and rows[0]["inserted"] == "1"
    assert len(rows[0]["sha256"]) == 64


def test_rejects_of_a_json_file_are_json_lines(run, tmp_path, db_path):
    f = write(tmp_path / "c.json", json.dumps([{"email": "a@example.com", "name": "A"},
                                               {"email": "bad", "name": "B"}]))
    rej = tmp_path / "rej.jsonl"
    s = summary(run.ok("import", "customers", f, "--rejects", rej, "--json"))
    assert (s["inserted"], s["rejected"]) == (1, 1)
    [line] = rej.read_text(encoding="utf-8").splitlines()
    r = json.loads(line)
    assert r["record"] == 2 and r["row"] == {"email": "bad", "name": "B"} and "email" in r["reason"]


def test_tags_and_created_at(run, tmp_path, db_path):
    f = write(tmp_path / "c.csv", 'email,name,tags,created_at\na@example.com,A,"VIP, Wholesale,vip",2024-05-01T08:00:00Z\n')
    run.ok("import", "customers", f)
    conn = sqlite3.connect(db_path)
    assert [r[0] for r in conn.execute("SELECT tag FROM customer_tags ORDER BY tag")] == ["vip", "wholesale"]
    assert conn.execute("SELECT created_at FROM customers").fetchone()[0] == "2024-05-01T08:00:00Z"
    g = write(tmp_path / "d.csv", "email,name,tags\na@example.com,A,wholesale\n")
    s = summary(run.ok("import", "customers", g, "--json"))
    assert s["updated"] == 1
    assert [r[0] for r in conn.execute("SELECT tag FROM customer_tags")] == ["wholesale"]


def test_json_array_errors_name_the_record(run, tmp_path, db_path):
    f = write(tmp_path / "c.json", '[{"email": "a@example.com", "name": "A"}, {"email": "x", "name": "B"},'
                                   ' {"email": "A@example.com", "name": "C"}]')
    r = run("import", "customers", f)
    assert r.exit_code == 65
    assert "record 2, column 'email': not a valid e-mail address" in r.stderr
    assert "record 3, column 'email': the same e-mail as record 1" in r.stderr
