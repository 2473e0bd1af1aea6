"""Exports: formats, formula-injection escaping, atomic 0600 files, and the
round trip: importing our own export gives back exactly the same data."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import stat
from pathlib import Path

from salescrm import exporter
from tests.conftest import snapshot

DATA = Path(__file__).parent / "data"

TRICKY = (
    "external_id,name,company,email,phone,notes,credit_limit,tags\n"
    "007,\"=HYPERLINK(\"\"http://x\"\")\",+Plus Ltd,eve@example.com,+44 20 7946 0000,\"-minus\nsecond line\",,\"vip,@home\"\n"
    "008,''=already quoted,@at,al@example.com,0049 30 1234567,\"'plain apostrophe\",1234.50,\n"
    "009,王芳,\"Tab\tInside\",wang@example.cn,,\"\",,\n"
)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", newline="")
    return path


def parse_csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def seed(run, tmp_path: Path) -> None:
    run.ok("import", "customers", write(tmp_path / "c.csv", TRICKY))
    run.ok("import", "customers", DATA / "shop_customers.csv", "--map-file", DATA / "shop.toml")
    run.ok("import", "products", DATA / "products.csv")
    run.ok("stock", "receive", "TEA-250", "50")
    run.ok("import", "orders", DATA / "shop_orders.csv", "--map-file", DATA / "shop_orders.toml")
    run.ok("import", "orders", write(tmp_path / "o.csv",
           "order_no,order_date,customer_email,sku,qty,unit_price,discount,status,notes\n"
           "R-1,2026-02-01,eve@example.com,TEA-250,3,5.90,1.00,confirmed,=1+1\n"
           "R-1,2026-02-01,eve@example.com,GIFT-BOX,1,,,confirmed,=1+1\n"
           "R-2,2026-02-02,al@example.com,MUG-01,2,,,cancelled,\n"))
    run.ok("import", "payments", write(tmp_path / "p.csv",
           "order_no,amount,method,paid_at,reference\nR-1,10.00,card,2026-02-03T09:00:00Z,-ref\n"))


def test_formula_cells_are_escaped_and_numbers_are_not(run, tmp_path):
    seed(run, tmp_path)
    rows = parse_csv(run.ok("export", "customers").stdout)
    by_id = {r["external_id"]: r for r in rows}
    assert by_id["007"]["name"] == "'=HYPERLINK(\"http://x\")"
    assert by_id["007"]["company"] == "'+Plus Ltd"
    assert by_id["007"]["phone"] == "'+442079460000"
    assert by_id["007"]["notes"] == "'-minus\nsecond line"
    assert by_id["007"]["tags"] == "'@home,vip"
    assert by_id["008"]["name"] == "''=already quoted"  # so that the import can undo it exactly
    assert by_id["008"]["company"] == "'@at"
    assert by_id["008"]["notes"] == "'plain apostrophe"  # not a formula: left alone
    assert by_id["008"]["credit_limit"] == "1234.50" and by_id["008"]["phone"] == "0049301234567"
    raw = {r["external_id"]: r for r in parse_csv(run.ok("export", "customers", "--raw").stdout)}
    assert raw["007"]["name"] == "=HYPERLINK(\"http://x\")"
    pay = parse_csv(run.ok("export", "payments").stdout)
    assert pay[0]["amount"] == "10.00" and pay[0]["reference"] == "'-ref"


def test_json_and_jsonl(run, tmp_path):
    seed(run, tmp_path)
    data = json.loads(run.ok("export", "lines", "-f", "json").stdout)
    assert data[0]["order_no"] == "W-1001" and data[0]["unit_price"] == 5.9 and data[0]["qty"] == 2
    lines = run.ok("export", "products", "-f", "jsonl").stdout.splitlines()
    first = json.loads(lines[0])
    assert first["sku"] == "TEA-250" and first["active"] is True and first["list_price"] == 5.9
    assert json.loads(run.ok("export", "customers", "-f", "json").stdout)[0]["name"] == '=HYPERLINK("http://x")'


def test_file_is_atomic_0600_and_not_overwritten(run, tmp_path):
    seed(run, tmp_path)
    out = tmp_path / "out" / "customers.csv"
    r = run.ok("export", "customers", "-o", out)
    assert "exported 6 customers" in r.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert [p.name for p in out.parent.iterdir()] == ["customers.csv"]  # no temporary left behind
    r = run("export", "customers", "-o", out)
    assert r.exit_code == 1 and "exists" in r.stderr and "--force" in r.stderr
    run.ok("export", "customers", "-o", out, "--force", "--segment", "none-such")
    assert len(parse_csv(out.read_text(encoding="utf-8"))) == 0


def test_filters(run, tmp_path):
    seed(run, tmp_path)
    assert [r["order_no"] for r in parse_csv(run.ok("export", "orders", "--status", "confirmed").stdout)] == ["R-1"]
    assert {r["order_no"] for r in parse_csv(run.ok("export", "lines", "--from", "2026-02-01", "--to", "2026-02-01").stdout)} == {"R-1"}
    assert [r["sku"] for r in parse_csv(run.ok("export", "products", "--category", "ware").stdout)] == ["MUG-01"]
    assert [r["city"] for r in parse_csv(run.ok("export", "customers", "--city", "Berlin").stdout)] == ["Berlin"]


def _strip(rows: list[dict], drop: tuple[str, ...]) -> list[dict]:
    """Without the columns that differ between databases, in a stable order
    (ids, and so the order of rows, may differ)."""
    out = [{k: v for k, v in r.items() if k not in drop} for r in rows]
    return sorted(out, key=lambda r: sorted(r.items()))


def test_round_trip_export_then_import(run, tmp_path, db_path):
    seed(run, tmp_path)
    out = tmp_path / "all"
    run.ok("export", "all", "-o", out)
    # into the same database: every row matches and nothing changes
    before = snapshot(db_path)
    for entity, part in (("customers", "customers"), ("products", "products"), ("orders", "lines"),
                         ("payments", "payments")):
        s = json.loads(run.ok("import", entity, out / f"{part}.csv", "--json").stdout)
        assert s["inserted"] == 0 and s["updated"] == 0 and s["rejected"] == 0, (entity, s)
    after = snapshot(db_path)
    assert {t: v for t, v in after.items() if t not in ("import_runs", "audit")} == \
        {t: v for t, v in before.items() if t not in ("import_runs", "audit")}
    # into a new database: the same data comes back
    fresh = tmp_path / "fresh.db"
    run.ok("--db", fresh, "settings", "set", "default_tax_rate", "0")
    for entity, part in (("customers", "customers"), ("products", "products")):
        run.ok("--db", fresh, "import", entity, out / f"{part}.csv")
    run.ok("--db", fresh, "stock", "receive", "TEA-250", "50")
    run.ok("--db", fresh, "import", "orders", out / "lines.csv")
    run.ok("--db", fresh, "import", "payments", out / "payments.csv")
    again = tmp_path / "again"
    run.ok("--db", fresh, "export", "all", "-o", again)
    volatile = ("id", "customer_id", "updated_at", "created_at", "on_hand", "reserved")
    for part in ("customers", "products", "lines", "payments", "orders"):
        a = parse_csv((out / f"{part}.csv").read_text(encoding="utf-8"))
        b = parse_csv((again / f"{part}.csv").read_text(encoding="utf-8"))
        keep_created = part == "customers"  # imported customers keep their creation time
        drop = tuple(v for v in volatile if not (keep_created and v == "created_at"))
        assert _strip(a, drop) == _strip(b, drop), part
    conn = sqlite3.connect(fresh)
    assert conn.execute("SELECT name FROM customers WHERE external_id = '008'").fetchone()[0] == "'=already quoted"
    assert conn.execute("SELECT phone FROM customers WHERE external_id = '008'").fetchone()[0] == "0049301234567"


def test_escape_helper_matches_sql():
    for value in ["=1", "+1", "-1", "@x", "\tx", "\rx", "'=x", "''", "'a", "a", "", "'"]:
        assert exporter.escape_text(value) == (("'" + value) if value[:1] in "=+-@\t\r" and value
                                               or value[:2] in ("'=", "'+", "'-", "'@", "''", "'\t", "'\r")
                                               else value)


def test_export_all_with_bad_filters_creates_no_folder(run, tmp_path):
    """Found by the argument fuzz: the folder was made before the filters
    were checked, so a refused run left it behind."""
    target = tmp_path / "out"
    result = run("export", "all", "-o", target, "--search", "")
    assert result.exit_code == 1 and "search" in result.stderr
    assert not target.exists()
