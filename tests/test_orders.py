"""The order logic: parsing, line money, the state machine, stock effects,
business rules, payments, returns, invoices and queries (library level)."""

from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal

import pytest

from salescrm import db, lifecycle, orders, products, stock
from salescrm.errors import BusinessRule, Conflict, IllegalTransition, NotFound, ValidationError
from tests.conftest import snapshot
from tests.orderkit import add_customer, assert_consistent, catalogue, levels, order_row


@pytest.fixture
def conn(db_path):
    c = db.connect(db_path)
    with db.write_tx(c):
        add_customer(c, "王芳", "wang.fang@example.cn")
        catalogue(c)
    yield c
    c.close()


def tx(conn, fn, *args, **kw):
    with db.write_tx(conn):
        return fn(conn, *args, **kw)


def new_order(conn, *lines, **kw):
    kw.setdefault("customer", "wang.fang@example.cn")
    return tx(conn, orders.create, lines=list(lines) or ["GT-250:3", "MUG-01:1@12.00-10%"], **kw)


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize("spec, expected", [
    ("GT-250:3", orders.LineSpec("GT-250", 3)),
    ("gt-250:3", orders.LineSpec("gt-250", 3)),
    ("MUG-01:1@12.00", orders.LineSpec("MUG-01", 1, 1200)),
    ("MUG-01:1@12.00-10%", orders.LineSpec("MUG-01", 1, 1200, Decimal("10"))),
    ("MUG-01:2-1.50", orders.LineSpec("MUG-01", 2, None, None, 150)),
    ("MUG-01:2@0-0%", orders.LineSpec("MUG-01", 2, 0, Decimal("0"))),
    (" A/B.1:10@3-12.5% ", orders.LineSpec("A/B.1", 10, 300, Decimal("12.5"))),
])
def test_parse_line(spec, expected):
    assert orders.parse_line(spec) == expected


@pytest.mark.parametrize("spec, message", [
    ("GT-250", "not a line"),
    ("GT-250:", "no quantity"),
    ("GT-250:0", "must not be zero"),
    ("GT-250:-3", "must be positive"),
    ("GT-250:1.5", "whole number"),
    ("GT-250:three", "not a number"),
    ("GT-250:2@abc", "not a valid amount"),
    ("GT-250:2@-5", "must not be negative"),
    ("GT-250:2@1.234", "not a valid amount"),
    ("GT-250:2@5-120%", "between 0 and 100"),
    ("GT-250:2-x%", "not a valid number"),
    (":2", "not a line"),
    ("GT 250:2", "not a valid SKU"),
])
def test_parse_line_refused(spec, message):
    with pytest.raises(ValidationError, match=message):
        orders.parse_line(spec)


# --------------------------------------------------------------------------- line money


@pytest.mark.parametrize("args, expected", [
    # qty, price, rate, inclusive, pct, amount -> gross, discount, net, tax, total
    ((3, 590, "13", False, None, None), (1770, 0, 1770, 230, 2000)),
    ((1, 1200, "13", False, "10", None), (1200, 120, 1080, 140, 1220)),
    ((3, 333, "0", False, "10", None), (999, 100, 899, 0, 899)),       # 899.1 -> 899
    ((1, 5, "0", False, "50", None), (5, 2, 3, 0, 3)),                 # 2.5 -> 3 (half up)
    ((1, 1000, "7.5", False, None, None), (1000, 0, 1000, 75, 1075)),
    ((1, 1001, "12.5", False, None, None), (1001, 0, 1001, 125, 1126)),  # 125.125 -> 125
    ((2, 1000, "10", False, None, 150), (2000, 150, 1850, 185, 2035)),
    ((1, 1130, "13", True, None, None), (1130, 0, 1000, 130, 1130)),   # inclusive: 1130 / 1.13
    ((1, 1000, "13", True, None, None), (1000, 0, 885, 115, 1000)),    # 884.96 -> 885
    ((1, 0, "13", False, None, None), (0, 0, 0, 0, 0)),
])
def test_line_amounts(args, expected):
    qty, price, rate, inclusive, pct, amount = args
    a = orders.line_amounts(qty, price, tax_rate=Decimal(rate), tax_inclusive=inclusive,
                            discount_pct=Decimal(pct) if pct else None, discount_cents=amount)
    assert (a.gross, a.discount, a.net, a.tax, a.total) == expected


def test_line_discount_larger_than_line_refused():
    with pytest.raises(ValidationError, match="more than the line"):
        orders.line_amounts(1, 100, tax_rate=Decimal(0), discount_cents=101)


# --------------------------------------------------------------------------- the state machine


def test_lifecycle_table():
    assert lifecycle.allowed_actions("draft") == ["edit", "confirm", "quote", "cancel"]
    assert lifecycle.allowed_actions("closed") == ["return", "quote", "invoice"]
    assert lifecycle.allowed_actions("cancelled") == []
    with pytest.raises(IllegalTransition) as err:
        lifecycle.require("shipped", "cancel", number="SO-000009")
    msg = str(err.value)
    assert "cannot cancel SO-000009: it is shipped" in msg
    assert "allowed from shipped: deliver, pay, return, quote, invoice" in msg
    assert "order return" in msg  # the hint
    with pytest.raises(IllegalTransition, match="nothing \\(it is final\\)"):
        lifecycle.require("cancelled", "pay")
    assert lifecycle.settle("delivered", paid_in_full=True) == "closed"
    assert lifecycle.settle("shipped", paid_in_full=True) == "shipped"
    assert lifecycle.after_ship("confirmed", fully_shipped=False) == "partially_shipped"
    assert lifecycle.after_deliver("partially_shipped", all_delivered=True, paid_in_full=True) == "partially_shipped"
    assert lifecycle.payment_status(0, 0) == "paid"
    assert lifecycle.payment_status(5, 0) == "unpaid"
    assert lifecycle.payment_status(5, 1) == "partial"


def _order_in(conn, state: str) -> str:
    """An order brought to ``state`` through the public API."""
    ref = new_order(conn, "GT-250:2", "MUG-01:1")
    n = ref.number
    if state == "draft":
        return n
    if state == "cancelled":
        tx(conn, orders.cancel, n)
        return n
    tx(conn, orders.confirm, n)
    if state == "confirmed":
        return n
    if state == "partially_shipped":
        tx(conn, orders.ship, n, lines=[("GT-250", 1)])
        return n
    tx(conn, orders.ship, n)
    if state == "shipped":
        return n
    if state == "delivered":
        tx(conn, orders.deliver, n)
        return n
    tx(conn, orders.pay, n, amount=order_row(conn, n)["total_cents"], method="card")
    tx(conn, orders.deliver, n)
    assert order_row(conn, n)["status"] == "closed"
    return n


ACTIONS = {
    "edit": lambda c, n: orders.edit(c, n, notes="x"),
    "add_line": lambda c, n: orders.add_line(c, n, "GT-250:1"),
    "remove_line": lambda c, n: orders.remove_line(c, n, 1),
    "confirm": lambda c, n: orders.confirm(c, n),
    "ship": lambda c, n: orders.ship(c, n),
    "deliver": lambda c, n: orders.deliver(c, n),
    "cancel": lambda c, n: orders.cancel(c, n),
    "return": lambda c, n: orders.return_items(c, n, lines=[("GT-250", 1)], refund=True),
    "pay": lambda c, n: orders.pay(c, n, amount=1, method="cash"),
}
LEGAL = {
    "draft": {"edit", "add_line", "remove_line", "confirm", "cancel"},
    "confirmed": {"ship", "cancel", "pay"},
    "partially_shipped": {"ship", "deliver", "return", "pay"},
    "shipped": {"deliver", "return", "pay"},
    "delivered": {"return", "pay"},
    "closed": {"return"},
    "cancelled": set(),
}


@pytest.mark.parametrize("state", list(LEGAL))
def test_every_illegal_transition_refused_and_changes_nothing(conn, db_path, state):
    n = _order_in(conn, state)
    assert order_row(conn, n)["status"] == state
    for action, fn in ACTIONS.items():
        if action in LEGAL[state]:
            continue
        before = snapshot(db_path)
        with pytest.raises(IllegalTransition) as err:
            tx(conn, fn, n)
        assert f"it is {state}" in str(err.value) and "allowed from" in str(err.value)
        assert snapshot(db_path) == before, action


@pytest.mark.parametrize("state", list(LEGAL))
def test_every_legal_move_is_accepted(conn, state):
    for action in sorted(LEGAL[state]):
        n = _order_in(conn, state)
        tx(conn, ACTIONS[action], n)
        assert_consistent(conn)


# --------------------------------------------------------------------------- stock effects


def test_confirm_reserves_ship_moves_cancel_releases(conn):
    n = new_order(conn, "GT-250:3", "MUG-01:2", "SVC:1").number
    assert levels(conn, "GT-250") == (100, 0, 100)
    r = tx(conn, orders.confirm, n)
    assert r["reserved"] == 5
    assert levels(conn, "GT-250") == (100, 3, 97) and levels(conn, "MUG-01") == (5, 2, 3)
    tx(conn, orders.ship, n, lines=[("gt-250", 2)], carrier="SF", tracking="SF123")
    assert levels(conn, "GT-250") == (98, 1, 97)
    assert order_row(conn, n)["status"] == "partially_shipped"
    tx(conn, orders.ship, n)
    assert levels(conn, "GT-250") == (97, 0, 97) and levels(conn, "MUG-01") == (3, 0, 3)
    assert order_row(conn, n)["status"] == "shipped"
    # a confirmed order cancelled releases its reservation
    m = new_order(conn, "MUG-01:3").number
    tx(conn, orders.confirm, m)
    assert levels(conn, "MUG-01") == (3, 3, 0)
    tx(conn, orders.cancel, m, reason="customer changed their mind")
    assert levels(conn, "MUG-01") == (3, 0, 3)
    assert_consistent(conn)


def test_shortage_refused_with_list_unless_backorder(conn, db_path):
    n = new_order(conn, "MUG-01:7", "GT-250:101").number
    before = snapshot(db_path)
    with pytest.raises(BusinessRule) as err:
        tx(conn, orders.confirm, n)
    assert "MUG-01 (need 7, available 5)" in str(err.value)
    assert "GT-250 (need 101, available 100)" in str(err.value)
    assert "--allow-backorder" in str(err.value)
    assert snapshot(db_path) == before
    r = tx(conn, orders.confirm, n, allow_backorder=True)
    assert r["backorder"] and levels(conn, "MUG-01") == (5, 7, -2)
    # cannot ship what is not on hand
    with pytest.raises(BusinessRule, match="not enough on hand"):
        tx(conn, orders.ship, n)
    tx(conn, orders.ship, n, lines=[("MUG-01", 5)])
    assert levels(conn, "MUG-01") == (0, 2, -2)
    tx(conn, stock.receive, "MUG-01", 2)
    tx(conn, stock.receive, "GT-250", 1)
    tx(conn, orders.ship, n)
    assert order_row(conn, n)["status"] == "shipped"
    assert_consistent(conn)


def test_ship_more_than_ordered_or_unknown_sku_refused(conn):
    n = new_order(conn, "GT-250:3").number
    tx(conn, orders.confirm, n)
    with pytest.raises(BusinessRule, match="only 3 left to ship"):
        tx(conn, orders.ship, n, lines=[("GT-250", 4)])
    with pytest.raises(NotFound, match="no line for MUG-01"):
        tx(conn, orders.ship, n, lines=[("MUG-01", 1)])
    tx(conn, orders.ship, n)
    with pytest.raises(IllegalTransition):
        tx(conn, orders.ship, n)


def test_second_concurrent_confirm_cannot_oversell(tmp_path):
    path = tmp_path / "race.db"
    c1 = db.connect(path)
    with db.write_tx(c1):
        add_customer(c1, "A", "a@example.com")
        catalogue(c1)
    a = tx(c1, orders.create, customer=1, lines=["MUG-01:5"]).number
    b = tx(c1, orders.create, customer=1, lines=["MUG-01:5"]).number
    results = []

    def worker(number):
        c = db.connect(path)
        try:
            tx(c, orders.confirm, number)
            results.append("ok")
        except BusinessRule:
            results.append("short")
        finally:
            c.close()

    threads = [threading.Thread(target=worker, args=(x,)) for x in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["ok", "short"]
    assert levels(c1, "MUG-01") == (5, 5, 0)


# --------------------------------------------------------------------------- business rules


def test_credit_limit(conn, db_path):
    with db.write_tx(conn):
        cid = add_customer(conn, "Anna", "anna@example.de", credit_limit=5000)
    first = new_order(conn, "MUG-01:3", customer=cid).number  # 36.00 + 13% = 40.68
    tx(conn, orders.confirm, first)
    second = new_order(conn, "GT-250:2", customer=cid).number  # 11.80 + 1.53 = 13.33: 54.01 > 50.00
    before = snapshot(db_path)
    with pytest.raises(BusinessRule, match="open 40.68 \\+ this order 13.33 = 54.01 exceeds the credit limit 50.00"):
        tx(conn, orders.confirm, second)
    assert snapshot(db_path) == before
    tx(conn, orders.pay, first, amount=1000, method="cash")
    tx(conn, orders.confirm, second)  # 30.68 + 13.33 = 44.01 fits
    third = new_order(conn, "GT-250:2", customer=cid).number
    tx(conn, orders.confirm, third, override="approved by Li")
    assert "credit limit" in orders.history(conn, third)[-1]["detail"]


def test_max_line_discount_needs_override_with_reason(conn, db_path):
    n = new_order(conn, "GT-250:1-40%", "MUG-01:1-5.00").number  # 40% and 41.7%
    before = snapshot(db_path)
    with pytest.raises(BusinessRule, match="above the 30% limit on .*GT-250 \\(40.0%\\), MUG-01 \\(41.7%\\)"):
        tx(conn, orders.confirm, n)
    with pytest.raises(ValidationError, match="needs a reason"):
        tx(conn, orders.confirm, n, override="  ")
    assert snapshot(db_path) == before
    tx(conn, orders.confirm, n, override="clearance sale")
    detail = orders.history(conn, n)[-1]["detail"]
    assert "override (clearance sale)" in detail and "GT-250" in detail


def test_archived_customer_and_product_refused(conn):
    n = new_order(conn, "GT-250:1").number
    with db.write_tx(conn):
        products.archive(conn, "GT-250")
    with pytest.raises(BusinessRule, match="archived products: GT-250"):
        tx(conn, orders.confirm, n)
    with pytest.raises(BusinessRule, match="archived"):
        new_order(conn, "GT-250:1")
    with db.write_tx(conn):
        gone = add_customer(conn, "Old", "old@example.com", archived=True)
    with pytest.raises(BusinessRule, match="archived: no new orders"):
        new_order(conn, "MUG-01:1", customer=gone)


def test_channel_and_customer_lookup(conn):
    with pytest.raises(ValidationError, match="unknown channel 'fax'"):
        new_order(conn, channel="fax")
    with pytest.raises(NotFound, match="no customer"):
        new_order(conn, customer="nobody@example.com")
    ref = new_order(conn, customer=" WANG.FANG@example.cn ", channel="Phone")
    assert order_row(conn, ref.number)["channel"] == "phone"
    assert orders.find_order(conn, "so-1")["number"] == ref.number
    assert orders.find_order(conn, str(ref.id))["number"] == ref.number


# --------------------------------------------------------------------------- edit, totals


def test_draft_edit_lines_discount_shipping(conn):
    n = new_order(conn, "GT-250:2", shipping=650, discount="10%").number
    o = order_row(conn, n)
    # lines 11.80 net + 1.53 tax = 13.33; discount -1.33; shipping 6.50
    assert (o["subtotal_cents"], o["tax_cents"], o["adjustment_cents"], o["total_cents"]) == (1180, 153, -133, 1850)
    tx(conn, orders.add_line, n, "MUG-01:1")
    assert order_row(conn, n)["total_cents"] == 1333 + 1356 - 269 + 650
    tx(conn, orders.remove_line, n, "GT-250")
    tx(conn, orders.edit, n, discount="2.00", shipping=0, channel="online", order_date="2026-01-15")
    o = order_row(conn, n)
    assert (o["total_cents"], o["channel"], o["order_date"]) == (1156, "online", "2026-01-15")
    with pytest.raises(ValidationError, match="more than the lines' total"):
        tx(conn, orders.edit, n, discount="20.00")
    tx(conn, orders.edit, n, discount="0")
    assert order_row(conn, n)["adjustment_cents"] == 0
    kinds = [e["kind"] for e in orders.history(conn, n)]
    assert kinds.count("line") == 3 and "edit" in kinds
    assert_consistent(conn)


def test_tax_inclusive_mode_is_captured_per_order(conn):
    from salescrm import settings

    with db.write_tx(conn):
        settings.set(conn, "tax_inclusive", "yes")
    n = new_order(conn, "MUG-01:1@11.30").number
    o = order_row(conn, n)
    assert (o["tax_inclusive"], o["subtotal_cents"], o["tax_cents"], o["total_cents"]) == (1, 1000, 130, 1130)
    with db.write_tx(conn):
        settings.set(conn, "tax_inclusive", "no")
    tx(conn, orders.add_line, n, "MUG-01:1@11.30")  # still inclusive: the order's own mode
    assert order_row(conn, n)["total_cents"] == 2260


# --------------------------------------------------------------------------- payments


def test_payments_overpayment_and_close(conn, db_path):
    n = new_order(conn).number  # 32.20
    with pytest.raises(IllegalTransition, match="confirm the order first"):
        tx(conn, orders.pay, n, amount=100, method="card")
    tx(conn, orders.confirm, n)
    r = tx(conn, orders.pay, n, amount=1000, method="Card", reference="TX-1")
    assert (r["balance"], r["payment_status"]) == (2220, "partial")
    before = snapshot(db_path)
    with pytest.raises(BusinessRule, match="overpayment refused: SO-000001 has 22.20 left to pay, not 22.21"):
        tx(conn, orders.pay, n, amount=2221, method="card")
    with pytest.raises(ValidationError, match="unknown payment method"):
        tx(conn, orders.pay, n, amount=100, method="bitcoin")
    with pytest.raises(ValidationError, match="more than zero"):
        tx(conn, orders.pay, n, amount=0, method="cash")
    assert snapshot(db_path) == before
    tx(conn, orders.ship, n)
    tx(conn, orders.deliver, n)
    assert order_row(conn, n)["status"] == "delivered"
    r = tx(conn, orders.pay, n, amount=2220, method="transfer")
    assert r["status"] == "closed" and r["payment_status"] == "paid"
    with pytest.raises(IllegalTransition, match="fully paid"):
        tx(conn, orders.pay, n, amount=1, method="cash")
    assert_consistent(conn)


def test_two_concurrent_payers_cannot_overpay(tmp_path):
    path = tmp_path / "pay.db"
    c1 = db.connect(path)
    with db.write_tx(c1):
        add_customer(c1, "A", "a@example.com")
        catalogue(c1)
    n = tx(c1, orders.create, customer=1, lines=["GT-250:10"]).number
    tx(c1, orders.confirm, n)
    total = order_row(c1, n)["total_cents"]
    barrier = threading.Barrier(4)
    results = []

    def payer():
        c = db.connect(path)
        try:
            barrier.wait()
            tx(c, orders.pay, n, amount=total, method="cash")
            results.append("paid")
        except BusinessRule:
            results.append("refused")
        finally:
            c.close()

    threads = [threading.Thread(target=payer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["paid", "refused", "refused", "refused"]
    assert order_row(c1, n)["paid_cents"] == total


def test_overpayment_blocked_by_the_schema_too(conn):
    n = new_order(conn).number
    tx(conn, orders.confirm, n)
    with pytest.raises(Conflict, match="CHECK constraint"):
        with db.write_tx(conn):
            conn.execute("UPDATE orders SET paid_cents = total_cents + 1 WHERE number = ?", (n,))


def test_refund_then_cancel(conn):
    n = new_order(conn).number
    tx(conn, orders.confirm, n)
    tx(conn, orders.pay, n, amount=500, method="card")
    with pytest.raises(BusinessRule, match="has 5.00 paid"):
        tx(conn, orders.cancel, n)
    with pytest.raises(BusinessRule, match="cannot refund 6.00"):
        tx(conn, orders.refund, n, amount=600)
    tx(conn, orders.refund, n, amount=500)
    tx(conn, orders.cancel, n)
    pays = orders.payments(conn, n)
    assert [(p["kind"], p["amount_cents"], p["method"]) for p in pays] == [("payment", 500, "card"),
                                                                            ("refund", -500, "card")]
    assert levels(conn, "GT-250") == (100, 0, 100)
    assert_consistent(conn)


def test_due_date_and_overdue(conn):
    with db.write_tx(conn):
        cid = add_customer(conn, "Net 10", "n10@example.com", terms=10)
    a = new_order(conn, order_date="2026-01-01").number
    b = new_order(conn, customer=cid, order_date="2026-01-01").number
    tx(conn, orders.confirm, a)
    tx(conn, orders.confirm, b)
    assert order_row(conn, a)["due_date"] == "2026-01-31"
    assert order_row(conn, b)["due_date"] == "2026-01-11"
    day = date(2026, 1, 20)
    assert [o["number"] for o in orders.list_orders(conn, overdue=True, today=day)] == [b]
    assert orders.get(conn, b, today=day)["overdue"] is True
    tx(conn, orders.pay, b, amount=order_row(conn, b)["total_cents"], method="cash")
    assert list(orders.list_orders(conn, overdue=True, today=day)) == []


# --------------------------------------------------------------------------- returns


def test_return_restocks_credits_and_refunds(conn, db_path):
    n = new_order(conn, "GT-250:3", "MUG-01:1@12.00-10%").number  # 20.00 + 12.20 = 32.20
    tx(conn, orders.confirm, n)
    with pytest.raises(IllegalTransition, match="it is confirmed"):
        tx(conn, orders.return_items, n, lines=[("GT-250", 1)])
    tx(conn, orders.ship, n)
    tx(conn, orders.pay, n, amount=3220, method="card")
    before = snapshot(db_path)
    with pytest.raises(BusinessRule, match="add --refund to record the refund of 6.67"):
        tx(conn, orders.return_items, n, lines=[("GT-250", 1)])
    with pytest.raises(BusinessRule, match="only 3 shipped and not yet returned"):
        tx(conn, orders.return_items, n, lines=[("GT-250", 4)], refund=True)
    assert snapshot(db_path) == before
    r = tx(conn, orders.return_items, n, lines=[("GT-250", 1)], refund=True, reason="damaged")
    assert (r["credited"], r["refunded"]) == (667, 667)  # a third of 20.00, rounded half-up
    assert levels(conn, "GT-250") == (98, 0, 98)
    r = tx(conn, orders.return_items, n, lines=[("GT-250", 2)], refund=True)
    assert r["credited"] == 1333  # the rest of the line: 20.00 in all, not a cent more or less
    o = order_row(conn, n)
    assert (o["returned_cents"], o["paid_cents"]) == (2000, 1220)
    assert orders.customer_summary(conn, 1)["revenue"] == 1220
    assert [p["amount_cents"] for p in orders.payments(conn, n)] == [3220, -667, -1333]
    assert_consistent(conn)


def test_return_shares_order_discount_and_never_exceeds_total(conn):
    n = new_order(conn, "GT-250:3", "MUG-01:3", discount="10%", shipping=500).number
    tx(conn, orders.confirm, n)
    tx(conn, orders.ship, n)
    o = order_row(conn, n)
    credited = 0
    for sku in ("GT-250", "MUG-01", "GT-250", "MUG-01", "GT-250", "MUG-01"):
        credited += tx(conn, orders.return_items, n, lines=[(sku, 1)])["credited"]
    # everything back: the lines' value less the discount, shipping kept
    assert credited == o["total_cents"] - o["shipping_cents"]
    assert order_row(conn, n)["returned_cents"] == credited
    assert_consistent(conn)


def test_unpaid_return_reduces_balance_and_can_settle(conn):
    n = new_order(conn, "GT-250:3").number  # 20.00
    tx(conn, orders.confirm, n)
    tx(conn, orders.ship, n)
    tx(conn, orders.deliver, n)
    tx(conn, orders.pay, n, amount=1333, method="cash")
    assert order_row(conn, n)["status"] == "delivered"
    r = tx(conn, orders.return_items, n, lines=[("GT-250", 1)])
    assert r["refunded"] == 0 and r["status"] == "closed"  # 13.33 paid of 13.33 now due


# --------------------------------------------------------------------------- invoices, events


def test_invoice_gap_free_and_issued_once(conn):
    a = new_order(conn).number
    b = new_order(conn).number
    with pytest.raises(IllegalTransition, match="cannot invoice"):
        tx(conn, orders.issue_invoice, a)
    tx(conn, orders.confirm, a)
    tx(conn, orders.confirm, b)
    ia = tx(conn, orders.issue_invoice, b)
    ib = tx(conn, orders.issue_invoice, a)
    again = tx(conn, orders.issue_invoice, b)
    assert (ia["number"], ib["number"], again["number"], again["new"]) == ("INV-000001", "INV-000002",
                                                                           "INV-000001", False)
    with pytest.raises(Conflict, match="gap-free"):
        with db.write_tx(conn):
            conn.execute("INSERT INTO invoices (seq, number, order_id, issued_at, total_cents, tax_cents, os_user)"
                         " VALUES (5, 'X', 3, '2026-01-01', 0, 0, 'x')")
    with pytest.raises(Conflict, match="cannot be deleted"):
        with db.write_tx(conn):
            conn.execute("DELETE FROM invoices")


def test_events_and_ledger_are_append_only(conn):
    n = new_order(conn).number
    tx(conn, orders.confirm, n)
    tx(conn, orders.pay, n, amount=100, method="cash")
    for sql, msg in [("UPDATE order_events SET detail = 'x'", "append-only"),
                     ("DELETE FROM order_events", "append-only"),
                     ("UPDATE stock_movements SET qty = 1", "append-only"),
                     ("DELETE FROM payments", "append-only")]:
        with pytest.raises(Conflict, match=msg):
            with db.write_tx(conn):
                conn.execute(sql)
    events = orders.history(conn, n)
    assert [e["kind"] for e in events] == ["create", "line", "line", "confirm", "pay"]
    assert events[3]["from_status"] == "draft" and events[3]["to_status"] == "confirmed"
    assert all(e["os_user"] == db.os_user() for e in events)


def test_write_functions_need_a_transaction(conn):
    with pytest.raises(AssertionError, match="write_tx"):
        orders.create(conn, customer=1, lines=["GT-250:1"])


# --------------------------------------------------------------------------- queries


def test_list_filters_sort_and_summary(conn):
    with db.write_tx(conn):
        anna = add_customer(conn, "Anna", "anna@example.de")
    a = new_order(conn, "GT-250:1", channel="online", salesperson="li", order_date="2026-01-05").number
    b = new_order(conn, "MUG-01:1", channel="retail", salesperson="chen", order_date="2026-02-05").number
    c = new_order(conn, "GT-250:5", customer=anna, channel="online", order_date="2026-03-05").number
    d = new_order(conn, "GT-250:1", order_date="2026-03-06").number
    for x in (a, b, c):
        tx(conn, orders.confirm, x)
    tx(conn, orders.cancel, d)
    tx(conn, orders.pay, b, amount=order_row(conn, b)["total_cents"], method="cash")

    def nums(**kw):
        return [o["number"] for o in orders.list_orders(conn, **kw)]

    assert nums() == [d, c, b, a]
    assert nums(status="confirmed") == [c, b, a]
    assert nums(status="cancelled,draft") == [d]
    assert nums(customer="anna@example.de") == [c]
    assert nums(channel="online") == [c, a]
    assert nums(salesperson="LI") == [a]
    assert nums(date_from="2026-02-01", date_to="2026-03-05") == [c, b]
    assert nums(unpaid=True) == [c, a]
    assert nums(sort="total") == [a, d, b, c]
    assert nums(sort="-number", limit=2) == [d, c]
    assert orders.count_orders(conn, status="open") == 3
    with pytest.raises(ValidationError, match="cannot sort by 'drop'"):
        nums(sort="drop")
    with pytest.raises(ValidationError, match="unknown status"):
        nums(status="shipped; DROP TABLE orders")
    s = orders.customer_summary(conn, 1)
    assert set(s) == {"order_count", "revenue", "open_balance", "last_order_date"}
    assert s["order_count"] == 2 and s["last_order_date"] == "2026-02-05"  # the cancelled one does not count
    assert s["revenue"] == order_row(conn, a)["total_cents"] + order_row(conn, b)["total_cents"]
    assert s["open_balance"] == order_row(conn, a)["total_cents"]
    assert orders.customer_summary(conn, anna)["order_count"] == 1


def test_db_check_finds_tampering(conn):
    n = new_order(conn).number
    tx(conn, orders.confirm, n)
    assert db.check(conn) == []
    with db.write_tx(conn):
        conn.execute("UPDATE products SET on_hand = on_hand + 1 WHERE sku = 'GT-250'")
        conn.execute("UPDATE orders SET tax_cents = tax_cents + 1, total_cents = total_cents + 1")
    problems = db.check(conn)
    assert any("stock: product 1 (GT-250) shows on hand 101" in p and "ledger says 100" in p for p in problems)
    assert any(f"order {n}: stored totals differ from its lines" in p for p in problems)
