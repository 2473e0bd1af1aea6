"""Orders through the command line: the whole lifecycle through the
installed command, and every refusal with exit 1 and nothing changed."""

from __future__ import annotations

import csv
import io
import json
import shutil
import stat

import pytest

from salescrm import db, orders
from tests.conftest import run_subprocess
from tests.orderkit import add_customer, catalogue, fast_cli  # noqa: F401 - fast_cli is a fixture

pytestmark = pytest.mark.usefixtures("fast_cli")


class Cli:
    """The installed command in a real process (``python -m salescrm``)."""

    def __call__(self, *args: str):
        return run_subprocess(*[str(a) for a in args])

    def ok(self, *args: str) -> str:
        r = self(*args)
        assert r.returncode == 0, f"{args}: exit {r.returncode}: {r.stderr}"
        return r.stdout

    def json(self, *args: str):
        return json.loads(self.ok(*args, "--format", "json"))

    def csv(self, *args: str) -> list[dict]:
        return list(csv.DictReader(io.StringIO(self.ok(*args, "--format", "csv"))))


def setup_catalogue(run):
    run.ok("customer", "add", "王芳", "--email", "wang.fang@example.cn")
    run.ok("customer", "add", "Anna Schmidt", "--email", "anna@example.de")
    run.ok("product", "add", "GT-250", "龙井绿茶 250g", "--category", "tea", "--cost", "3.20", "--price", "5.90",
           "--tax-rate", "13", "--reorder-level", "20")
    run.ok("product", "add", "MUG-01", "青花瓷马克杯", "--category", "teaware", "--cost", "4.50", "--price", "12.00",
           "--tax-rate", "13")
    run.ok("stock", "receive", "GT-250", "100", "--note", "PO 4411")
    run.ok("stock", "receive", "MUG-01", "10")


def test_full_lifecycle_through_the_installed_cli(run, db_path):
    setup_catalogue(run)
    cli = Cli()

    # every action runs the installed command; the checks after each step read in-process (faster)
    def stock_of(sku):
        p = run.json("product", "show", sku)
        return p["on_hand"], p["reserved"], p["available"]

    def check(n, status, total, paid, balance):
        o = run.json("order", "show", n)
        assert (o["status"], o["total_after_returns"], o["paid"], o["balance"]) == (status, total, paid, balance)
        parts = o["subtotal"] + o["tax"] + o["shipping"] + o["adjustment"]
        assert round(parts, 2) == o["total"]
        assert round(sum(ln["total"] for ln in o["lines"]), 2) == round(o["subtotal"] + o["tax"], 2)
        conn = db.connect(db_path, write=False)
        try:
            assert db.check(conn) == []  # stock agrees with its ledger, totals with their lines
        finally:
            conn.close()
        return o

    # create: 3 x 5.90 (17.70 + 2.30 tax) and 2 mugs at 12.00 less 10% (21.60 + 2.81 tax) = 44.41, + 5.00 shipping
    n = cli.ok("order", "create", "--customer", "wang.fang@example.cn", "--line", "GT-250:3",
               "--line", "MUG-01:2@12.00-10%", "--channel", "online", "--shipping", "5.00",
               "--salesperson", "li").strip()
    assert n == "SO-000001"
    o = check(n, "draft", 49.41, 0, 49.41)
    assert [ln["total"] for ln in o["lines"]] == [20.00, 24.41]
    assert stock_of("GT-250") == (100, 0, 100)
    # edit the draft: one more line, an order discount of 1.00, a note
    cli.ok("order", "add-line", n, "GT-250:1")
    cli.ok("order", "edit", n, "--discount", "1.00", "--note", "Gift wrap")
    o = check(n, "draft", 55.08, 0, 55.08)  # + 6.67, - 1.00
    assert o["notes"] == "Gift wrap" and len(o["lines"]) == 3
    # confirm: reserves 4 + 2
    cli.ok("order", "confirm", n)
    check(n, "confirmed", 55.08, 0, 55.08)
    assert stock_of("GT-250") == (100, 4, 96) and stock_of("MUG-01") == (10, 2, 8)
    # partial shipment
    cli.ok("order", "ship", n, "--line", "GT-250:2", "--carrier", "SF Express", "--tracking", "SF1234")
    o = check(n, "partially_shipped", 55.08, 0, 55.08)
    assert stock_of("GT-250") == (98, 2, 96) and stock_of("MUG-01") == (10, 2, 8)
    assert o["shipments"][0]["lines"] == "GT-250 x 2" and o["shipments"][0]["carrier"] == "SF Express"
    # the rest
    cli.ok("order", "ship", n)
    check(n, "shipped", 55.08, 0, 55.08)
    assert stock_of("GT-250") == (96, 0, 96) and stock_of("MUG-01") == (8, 0, 8)
    # deliver, then pay in two parts: closed on the second
    cli.ok("order", "deliver", n)
    check(n, "delivered", 55.08, 0, 55.08)
    cli.ok("order", "pay", n, "--amount", "30.00", "--method", "card", "--ref", "T-1")
    o = check(n, "delivered", 55.08, 30.00, 25.08)
    assert o["payment_status"] == "partial"
    cli.ok("order", "pay", n, "--amount", "25.08", "--method", "transfer")
    o = check(n, "closed", 55.08, 55.08, 0)
    assert o["payment_status"] == "paid"
    # a return with refund: one mug back, half its line (21.60 / 2 + 2.81 / 2 = 10.80 + 1.41 = 12.21) less
    # its share of the 1.00 order discount (1.00 x 12.21 / 51.08 = 0.239 -> 0.24)
    cli.ok("order", "return", n, "--line", "MUG-01:1", "--refund", "--reason", "chipped")
    o = check(n, "closed", 43.11, 43.11, 0)
    assert o["returns"][0]["amount"] == 11.97
    assert [p["amount"] for p in o["payments"]] == [30.00, 25.08, -11.97]
    assert stock_of("MUG-01") == (9, 0, 9)
    assert [ln["returned_qty"] for ln in o["lines"]] == [0, 1, 0]
    # another order, cancelled after confirm: its reservation is released
    m = cli.ok("order", "create", "-c", "anna@example.de", "--line", "GT-250:5").strip()
    cli.ok("order", "confirm", m)
    assert stock_of("GT-250") == (96, 5, 91)
    cli.ok("order", "cancel", m, "--reason", "duplicate")
    check(m, "cancelled", 33.34, 0, 33.34)
    assert stock_of("GT-250") == (96, 0, 96)
    # the history and the ledger tell the whole story
    assert cli("db", "check").returncode == 0
    kinds = [(e["kind"], e["to_status"]) for e in cli.json("order", "history", n)]
    assert kinds == [("create", "draft"), ("line", None), ("line", None), ("line", None), ("edit", None),
                     ("confirm", "confirmed"), ("ship", "partially_shipped"), ("ship", "shipped"),
                     ("deliver", "delivered"), ("pay", None), ("pay", "closed"), ("return", None)]
    ledger = [(r["kind"], r["qty"]) for r in cli.csv("stock", "show", "GT-250")]
    # GT-250 is on two lines (3 and 1): movements are per line, newest first
    assert ledger == [("release", "5"), ("reserve", "5"), ("ship", "1"), ("ship", "1"), ("ship", "2"),
                      ("reserve", "1"), ("reserve", "3"), ("receive", "100")]
    rows = cli.csv("order", "list", "--totals")
    assert [r["number"] for r in rows] == [m, n, "total"]
    assert rows[-1]["total"] == "88.42" and rows[-1]["balance"] == "33.34"  # 55.08 + 33.34, the draft-less balance
    summary = cli.json("customer", "show", "wang.fang@example.cn")
    assert summary["order_count"] == 1 and summary["revenue"] == 43.11 and summary["open_balance"] == 0


STATES = ("draft", "confirmed", "shipped", "closed", "cancelled")


@pytest.fixture(scope="module")
def every_state_template(tmp_path_factory):
    """SO-000001..5 (2 x GT-250 each, 13.33) in draft, confirmed, shipped,
    closed and cancelled: built once through the library, copied per test."""
    path = tmp_path_factory.mktemp("template") / "every_state.db"
    conn = db.connect(path)
    with db.write_tx(conn):
        add_customer(conn, "王芳", "wang.fang@example.cn")
        add_customer(conn, "Anna Schmidt", "anna@example.de")
        catalogue(conn)
        made = {}
        for state in STATES:
            n = orders.create(conn, customer="wang.fang@example.cn", lines=["GT-250:2"]).number
            made[state] = n
            if state == "cancelled":
                orders.cancel(conn, n)
            elif state != "draft":
                orders.confirm(conn, n)
                if state in ("shipped", "closed"):
                    orders.ship(conn, n)
                if state == "closed":
                    orders.deliver(conn, n)
                    orders.pay(conn, n, amount=1333, method="cash")
    conn.close()
    return path, made


@pytest.fixture
def orders_in_every_state(every_state_template, db_path):
    path, made = every_state_template
    shutil.copyfile(path, db_path)
    return made


REFUSALS = [
    # (state, args after the order number, message)
    ("draft", ("ship",), "cannot ship SO-000001: it is draft; allowed from draft: edit, confirm, quote, cancel"),
    ("draft", ("deliver",), "cannot deliver"),
    ("draft", ("pay", "--amount", "1", "--method", "cash"), "confirm the order first"),
    ("draft", ("return", "--line", "GT-250:1"), "cannot return"),
    ("draft", ("invoice",), "cannot invoice"),
    ("confirmed", ("confirm",), "cannot confirm SO-000002: it is confirmed"),
    ("confirmed", ("edit", "--note", "x"), "only draft orders can be edited"),
    ("confirmed", ("add-line", "GT-250:1"), "cannot edit"),
    ("confirmed", ("remove-line", "1"), "cannot edit"),
    ("confirmed", ("deliver",), "ship it first"),
    ("confirmed", ("return", "--line", "GT-250:1"), "cannot return"),
    ("shipped", ("cancel",), "cannot cancel SO-000003: it is shipped; allowed from shipped: deliver, pay, return"),
    ("shipped", ("ship",), "cannot ship"),
    ("shipped", ("confirm",), "cannot confirm"),
    ("closed", ("pay", "--amount", "0.01", "--method", "cash"), "it is closed"),
    ("closed", ("cancel",), "cannot cancel"),
    ("closed", ("deliver",), "cannot deliver"),
    ("cancelled", ("confirm",), "it is cancelled; allowed from cancelled: nothing (it is final)"),
    ("cancelled", ("pay", "--amount", "1", "--method", "cash"), "cannot pay"),
    ("cancelled", ("quote",), "cannot quote"),
    # shortages, lines, quantities, prices, money
    ("draft", ("add-line", "NOPE-1:1"), "no product with SKU 'NOPE-1'"),
    ("draft", ("add-line", "GT-250:0"), "must not be zero"),
    ("draft", ("add-line", "GT-250:-2"), "must be positive"),
    ("draft", ("add-line", "GT-250:1.5"), "whole number"),
    ("draft", ("add-line", "GT-250:two"), "not a number"),
    ("draft", ("add-line", "GT-250:1@abc"), "not a valid amount"),
    ("draft", ("add-line", "GT-250:1@-3"), "must not be negative"),
    ("draft", ("add-line", "GT-250:1@1.999"), "not a valid amount"),
    ("draft", ("add-line", "GT-250:1-150%"), "between 0 and 100"),
    ("draft", ("add-line", "GT-250:1-9.00"), "more than the line's 5.90"),
    ("draft", ("add-line", "GT-250:1", "GT-250:0"), "must not be zero"),  # all or nothing
    ("draft", ("remove-line", "MUG-01"), "has no line 'MUG-01'"),
    ("draft", ("edit", "--shipping", "-1"), "must not be negative"),
    ("draft", ("edit", "--discount", "99.00"), "more than the lines' total"),
    ("draft", ("edit", "--channel", "fax"), "unknown channel 'fax'"),
    ("draft", ("edit", "--date", "31/12/2026"), "not a date"),
    ("confirmed", ("pay", "--amount", "13.34", "--method", "cash"), "overpayment refused: SO-000002 has 13.33 left"),
    ("confirmed", ("pay", "--amount", "0", "--method", "cash"), "more than zero"),
    ("confirmed", ("pay", "--amount", "-5", "--method", "cash"), "must not be negative"),
    ("confirmed", ("pay", "--amount", "1e3", "--method", "cash"), "not a valid amount"),
    ("confirmed", ("pay", "--amount", "NaN", "--method", "cash"), "not a valid amount"),
    ("confirmed", ("pay", "--amount", "1", "--method", "iou"), "unknown payment method"),
    ("confirmed", ("ship", "--line", "GT-250:3"), "only 2 left to ship"),
    ("confirmed", ("ship", "--line", "MUG-01:1"), "has no line for MUG-01"),
    ("confirmed", ("ship", "--line", "GT-250:0"), "must not be zero"),
    ("confirmed", ("cancel",), None),  # placeholder replaced below: cancel is legal here
    ("shipped", ("return", "--line", "GT-250:3"), "only 2 shipped and not yet returned"),
    ("closed", ("return", "--line", "GT-250:1"), "add --refund to record the refund of 6.67"),
]


@pytest.mark.parametrize("state, args, message", [r for r in REFUSALS if r[2]])
def test_refusals_exit_1_and_change_nothing(run, db_path, snap, orders_in_every_state, state, args, message):
    n = orders_in_every_state[state]
    before = snap(db_path)
    result = run("order", args[0], n, *args[1:])
    assert result.exit_code == 1, result.stderr
    assert message in result.stderr
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert snap(db_path) == before


def test_create_refusals_change_nothing(run, db_path, snap):
    setup_catalogue(run)
    run.ok("product", "add", "OLD-1", "Old tea", "--price", "1")
    run.ok("product", "archive", "OLD-1")
    before = snap(db_path)
    for args, message in [
        (("--customer", "nobody@example.com", "--line", "GT-250:1"), "no customer 'nobody@example.com'"),
        (("--customer", "999", "--line", "GT-250:1"), "no customer '999'"),
        (("--customer", "1", "--line", "NOPE:1"), "no product with SKU 'NOPE'"),
        (("--customer", "1", "--line", "OLD-1:1"), "product OLD-1 is archived"),
        (("--customer", "1", "--line", "GT-250"), "not a line"),
        (("--customer", "1", "--line", "GT-250:1", "--line", "MUG-01:0"), "must not be zero"),
        (("--customer", "1", "--line", "GT-250:1", "--shipping", "1,50"), "not a valid amount"),
        (("--customer", "1", "--line", "GT-250:1", "--discount", "150%"), "between 0 and 100"),
        (("--customer", "1", "--line", "GT-250:1", "--currency", "euro"), "three-letter"),
    ]:
        result = run("order", "create", *args)
        assert result.exit_code == 1, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert snap(db_path) == before, args


def test_shortage_lists_every_short_item_and_changes_nothing(run, db_path, snap):
    setup_catalogue(run)
    n = run.ok("order", "create", "-c", "1", "--line", "GT-250:101", "--line", "MUG-01:11").stdout.strip()
    before = snap(db_path)
    result = run("order", "confirm", n)
    assert result.exit_code == 1
    assert ("not enough stock for SO-000001: GT-250 (need 101, available 100); MUG-01 (need 11, available 10)"
            in result.stderr)
    assert "--allow-backorder" in result.stderr
    assert snap(db_path) == before
    run.ok("order", "confirm", n, "--allow-backorder")
    rows = {r["sku"]: r for r in run.csv("stock", "list")}
    assert rows["GT-250"]["available"] == "-1" and rows["MUG-01"]["available"] == "-1"
    result = run("order", "ship", n)
    assert result.exit_code == 1 and "not enough on hand: GT-250 (need 101, on hand 100)" in result.stderr


def test_discount_limit_override_and_credit_limit(run, db_path, snap):
    setup_catalogue(run)
    run.ok("customer", "edit", "anna@example.de", "--credit-limit", "20")
    n = run.ok("order", "create", "-c", "wang.fang@example.cn", "--line", "MUG-01:1-50%").stdout.strip()
    before = snap(db_path)
    result = run("order", "confirm", n)
    assert result.exit_code == 1 and "line discount above the 30% limit" in result.stderr
    assert snap(db_path) == before
    run.ok("order", "confirm", n, "--override", "damaged box")
    assert "override (damaged box)" in run.json("order", "history", n)[-1]["detail"]
    run.ok("settings", "set", "max_line_discount_pct", "60")
    m = run.ok("order", "create", "-c", "wang.fang@example.cn", "--line", "MUG-01:1-50%").stdout.strip()
    run.ok("order", "confirm", m)
    big = run.ok("order", "create", "-c", "anna@example.de", "--line", "MUG-01:2").stdout.strip()  # 27.12 > 20
    result = run("order", "confirm", big)
    assert result.exit_code == 1 and "exceeds the credit limit 20.00" in result.stderr


def test_list_filters_sort_totals_and_formats(run, orders_in_every_state):
    rows = run.csv("order", "list")
    assert [r["status"] for r in rows] == ["cancelled", "closed", "shipped", "confirmed", "draft"]
    assert [r["status"] for r in run.csv("order", "list", "--status", "confirmed,shipped")] == ["shipped",
                                                                                               "confirmed"]
    assert [r["status"] for r in run.csv("order", "list", "--status", "open", "--unpaid")] == ["shipped",
                                                                                              "confirmed"]
    assert [r["number"] for r in run.csv("order", "list", "--sort", "number", "--limit", "2")] == ["SO-000001",
                                                                                                  "SO-000002"]
    assert run.csv("order", "list", "--customer", "anna@example.de") == []
    assert run.csv("order", "list", "--from", "tomorrow") == []
    assert len(run.csv("order", "list", "--to", "today", "--channel", "retail")) == 5
    assert run.csv("order", "list", "--overdue") == []
    for bad, message in [(("--sort", "total;drop"), "cannot sort by"), (("--status", "lost"), "unknown status"),
                         (("--from", "soon"), "not a date"), (("--customer", "x@y.z"), "no customer")]:
        r = run("order", "list", *bad)
        assert r.exit_code == 1 and message in r.stderr
    table = run.ok("order", "list", "--format", "table").stdout
    assert "total" in table.splitlines()[-2] and "66.65" in table  # 5 x 13.33 under the table
    data = run.json("order", "list", "--status", "closed")
    assert data[0]["payment_status"] == "paid" and data[0]["total"] == 13.33
    md = run.ok("order", "list", "--format", "markdown").stdout
    assert md.startswith("| number")
    limited = run("order", "list", "--limit", "2", "--format", "csv")
    assert "--limit 0 shows all" in limited.stderr


def test_quote_and_invoice_documents(run, db_path, tmp_path, orders_in_every_state):
    run.ok("settings", "set", "seller.name", "Tea & Co <Ltd>")
    run.ok("settings", "set", "seller.address", "1 Tea Street\\nHangzhou")
    run.ok("settings", "set", "seller.bank", "IBAN DE00 1234")
    quote = run.ok("order", "quote", orders_in_every_state["draft"]).stdout
    assert quote.startswith("# Quote SO-000001")
    assert "Tea & Co \\<Ltd\\>" in quote and "龙井绿茶 250g" in quote
    assert "Prices exclude tax" in quote and "Valid until" in quote and "net 30 days" in quote
    assert "| **Total** | **13.33 EUR** |" in quote
    n = orders_in_every_state["confirmed"]
    out = tmp_path / "inv.html"
    run.ok("order", "invoice", n, "--html", "-o", str(out))
    html = out.read_text()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "<h1>Invoice INV-000001</h1>" in html and "Tea &amp; Co &lt;Ltd&gt;" in html
    assert "Balance due" in html and "due " in html and "IBAN DE00 1234" in html
    again = run("order", "invoice", n, "-o", str(out))
    assert again.exit_code == 1 and "--force" in again.stderr
    md = run.ok("order", "invoice", n).stdout
    assert md.startswith("# Invoice INV-000001")  # the same invoice, not a new number
    run.ok("order", "invoice", orders_in_every_state["closed"])
    shown = run.json("order", "show", orders_in_every_state["closed"])
    assert shown["invoice_number"] == "INV-000002"
    assert run.json("settings", "show", "seller.address")[0]["value"] == "1 Tea Street\nHangzhou"


def test_settings(run, db_path, snap):
    rows = {r["key"]: r for r in run.csv("settings", "show")}
    assert rows["payment_terms_days"]["value"] == "30" and rows["tax_inclusive"]["value"] == "false"
    run.ok("settings", "set", "channels", "Retail, online,wholesale")
    assert run.json("settings", "show", "channels")[0]["value"] == "retail,online,wholesale"
    before = snap(db_path)
    for args, message in [(("set", "nope", "1"), "unknown setting 'nope'"),
                          (("set", "payment_terms_days", "thirty"), "whole number of days"),
                          (("set", "tax_inclusive", "maybe"), "true or false"),
                          (("set", "max_line_discount_pct", "120"), "between 0 and 100"),
                          (("set", "currency", "euro"), "three-letter")]:
        r = run("settings", *args)
        assert r.exit_code == 1 and message in r.stderr, (args, r.stderr)
    assert snap(db_path) == before
    run.ok("settings", "unset", "channels")
    assert run.json("settings", "show", "channels")[0]["value"] == "retail,online,phone,partner"


def test_show_formats(run, orders_in_every_state):
    n = orders_in_every_state["closed"]
    table = run.ok("order", "show", n, "--format", "table").stdout
    assert "Order SO-000004" in table and "Lines" in table and "History" in table and "龙井绿茶 250g" in table
    md = run.ok("order", "show", n, "--format", "markdown").stdout
    assert "### Payments" in md
    one = run.csv("order", "show", n)
    assert one[0]["number"] == n and one[0]["total"] == "13.33"
    r = run("order", "show", "SO-999999")
    assert r.exit_code == 1 and "no order 'SO-999999'" in r.stderr


def test_tax_inclusive_documents_say_so(run, db_path):
    setup_catalogue(run)
    run.ok("settings", "set", "tax_inclusive", "true")
    n = run.ok("order", "create", "-c", "1", "--line", "MUG-01:1@11.30", "--note", "<b>fragile</b> | top").stdout.strip()
    md = run.ok("order", "quote", n).stdout
    assert "Prices include tax" in md and "Tax included: 1.30 EUR on 10.00 net" in md
    assert "| **Total** | **11.30 EUR** |" in md
    assert "Notes: \\<b\\>fragile\\</b\\> \\| top" in md  # Markdown-escaped
    html = run.ok("order", "quote", n, "--html").stdout
    assert "&lt;b&gt;fragile&lt;/b&gt;" in html and "<b>fragile" not in html
    assert "Lines (incl. tax)" in html


def test_an_issued_invoice_reprints_after_the_order_is_cancelled(run, orders_in_every_state):
    n = orders_in_every_state["confirmed"]
    run.ok("order", "invoice", n)
    run.ok("order", "cancel", n)
    again = run.ok("order", "invoice", n).stdout
    assert again.startswith("# Invoice INV-000001") and "VOID: order SO-000002 was cancelled" in again
    r = run("order", "invoice", orders_in_every_state["cancelled"])
    assert r.exit_code == 1 and "cannot invoice SO-000005: it is cancelled" in r.stderr
