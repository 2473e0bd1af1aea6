"""Money properties (hypothesis): random lines, prices, discounts, payments
and returns never lose or gain a cent between lines, totals and reports."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from math import floor

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from salescrm import db, money, orders, products, stock
from salescrm.errors import BusinessRule, IllegalTransition
from tests.orderkit import add_customer

RATES = st.sampled_from(["0", "5", "6", "7.5", "9", "13", "16", "19", "20", "21", "25", "8.875"])
PCTS = st.decimals(min_value=0, max_value=100, places=2, allow_nan=False, allow_infinity=False)


def half_up(x: Fraction) -> int:
    """Commercial rounding of a non-negative exact fraction: an independent path."""
    assert x >= 0
    return floor(x + Fraction(1, 2))


# --------------------------------------------------------------------------- one line


@given(qty=st.integers(1, 10_000), price=st.integers(0, 10_000_000), rate=RATES,
       inclusive=st.booleans(), pct=st.none() | PCTS)
def test_line_amounts_match_exact_arithmetic(qty, price, rate, inclusive, pct):
    a = orders.line_amounts(qty, price, tax_rate=Decimal(rate), tax_inclusive=inclusive, discount_pct=pct)
    r = Fraction(rate)
    gross = qty * price
    amount = half_up(Fraction(gross) * (100 - Fraction(pct)) / 100) if pct is not None else gross
    if inclusive:
        net = half_up(Fraction(amount) * 100 / (100 + r))
        expected = (gross, gross - amount, net, amount - net, amount)
    else:
        tax = half_up(Fraction(amount) * r / 100)
        expected = (gross, gross - amount, amount, tax, amount + tax)
    assert (a.gross, a.discount, a.net, a.tax, a.total) == expected
    assert a.gross - a.discount == (a.total if inclusive else a.net)
    assert a.net + a.tax == a.total
    assert min(a.gross, a.discount, a.net, a.tax, a.total) >= 0 and a.discount <= a.gross


@given(qty=st.integers(1, 1000), price=st.integers(0, 1_000_000), rate=RATES, data=st.data())
def test_amount_discount_is_exact(qty, price, rate, data):
    disc = data.draw(st.integers(0, qty * price))
    a = orders.line_amounts(qty, price, tax_rate=Decimal(rate), discount_cents=disc)
    assert a.discount == disc and a.net == qty * price - disc


# --------------------------------------------------------------------------- parsing and rounding


@given(st.integers(-10**15, 10**15))
def test_fmt_and_parse_round_trip(cents):
    assert money.parse_money(money.fmt(cents), allow_negative=True) == cents


@given(st.lists(st.integers(-10**9, 10**9), max_size=2000))
def test_sums_of_amounts_are_exact(amounts):
    assert sum(money.parse_money(money.fmt(c), allow_negative=True) for c in amounts) == sum(amounts)
    assert money.parse_money(money.fmt(sum(amounts)), allow_negative=True) == sum(amounts)


@pytest.mark.parametrize("amount, cents", [
    ("0.125", 13), ("2.675", 268), ("1.005", 101), ("2.665", 267), ("0.005", 1), ("0.0049", 0),
    ("-0.125", -13), ("-2.675", -268), ("-1.005", -101), ("1234.5", 123450),
])
def test_half_up_edge_cases(amount, cents):
    assert money.to_cents(Decimal(amount)) == cents


@given(cents=st.integers(0, 10**9), pct=PCTS)
def test_apportion_is_monotonic_and_complete(cents, pct):
    qty = 7
    shares = [orders.apportion(cents, k, qty) for k in range(qty + 1)]
    assert shares[0] == 0 and shares[-1] == cents
    assert all(b >= a for a, b in zip(shares, shares[1:]))


# --------------------------------------------------------------------------- whole orders in the database


line_st = st.tuples(
    st.integers(0, 3),                                    # which product
    st.integers(1, 40),                                   # qty
    st.none() | st.integers(0, 200_000),                  # unit price (None: list price)
    st.none() | PCTS | st.integers(0, 5_000),             # discount: percent (Decimal) or amount (int cents)
)
order_st = st.fixed_dictionaries({
    "prices": st.lists(st.integers(0, 100_000), min_size=4, max_size=4),
    "rates": st.lists(RATES, min_size=4, max_size=4),
    "inclusive": st.booleans(),
    "lines": st.lists(line_st, min_size=1, max_size=8),
    "shipping": st.integers(0, 5_000),
    "discount": st.none() | PCTS.map(lambda p: f"{p}%") | st.integers(0, 3_000).map(money.fmt),
    "splits": st.lists(st.integers(1, 100), min_size=1, max_size=5),
    "seed": st.randoms(use_true_random=False),
})


def _fresh(example):
    conn = db.connect(":memory:")
    with db.write_tx(conn):
        from salescrm import settings as s

        s.set(conn, "tax_inclusive", "true" if example["inclusive"] else "false")
        s.set(conn, "max_line_discount_pct", "100")
        add_customer(conn, "王芳", "wang@example.cn")
        for i, (price, rate) in enumerate(zip(example["prices"], example["rates"])):
            products.add(conn, sku=f"P-{i}", name=f"商品 {i}", price=price, tax_rate=rate)
            stock.receive(conn, f"P-{i}", 10_000)
    return conn


def _specs(example, conn):
    specs = []
    for idx, qty, price, disc in example["lines"]:
        gross = qty * (price if price is not None else products.get(conn, f"P-{idx}")["list_price"])
        pct = disc if isinstance(disc, Decimal) else None
        amount = min(disc, gross) if isinstance(disc, int) else None
        specs.append(orders.LineSpec(f"P-{idx}", qty, price, pct, amount))
    return specs


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(example=order_st)
def test_random_orders_add_up_through_payments_and_returns(example):
    conn = _fresh(example)
    rnd = example["seed"]
    try:
        with db.write_tx(conn):
            try:
                ref = orders.create(conn, customer=1, lines=_specs(example, conn), shipping=example["shipping"],
                                    discount=example["discount"])
            except Exception as exc:  # only an order discount above the lines' value may be refused
                assume("more than the lines' total" not in str(exc))
                raise
        o = dict(conn.execute("SELECT * FROM orders WHERE id = ?", (ref.id,)).fetchone())
        lines = orders.lines(conn, ref.id)
        adj = orders.adjustments(conn, ref.id)
        # the parts add up to the total, to the cent
        assert o["subtotal_cents"] == sum(ln["net_cents"] for ln in lines)
        assert o["tax_cents"] == sum(ln["tax_cents"] for ln in lines)
        assert o["gross_cents"] - o["discount_cents"] == sum(
            ln["total_cents"] if example["inclusive"] else ln["net_cents"] for ln in lines)
        assert o["total_cents"] == (sum(ln["total_cents"] for ln in lines) + o["shipping_cents"]
                                    + sum(a["amount_cents"] for a in adj))
        total = o["total_cents"]
        with db.write_tx(conn):
            orders.confirm(conn, ref.id)
            orders.ship(conn, ref.id)
            orders.deliver(conn, ref.id)
        # payments in random parts add up exactly; one cent more is refused
        weights = example["splits"]
        parts = [total * w // sum(weights) for w in weights]
        parts[-1] += total - sum(parts)
        for i, part in enumerate(parts):
            if i == len(parts) - 1 and part:  # one cent more than the balance is refused
                with pytest.raises(BusinessRule, match="overpayment refused"):
                    with db.write_tx(conn):
                        orders.pay(conn, ref.id, amount=part + 1, method="cash")
            if part:
                with db.write_tx(conn):
                    orders.pay(conn, ref.id, amount=part, method="cash")
        with pytest.raises(IllegalTransition, match="it is closed"):  # delivered and paid: closed
            with db.write_tx(conn):
                orders.pay(conn, ref.id, amount=1, method="cash")
        got = orders.get(conn, ref.id)
        assert got["paid_cents"] == total and got["balance_cents"] == 0 and got["status"] == "closed"
        # reports agree with the orders
        summary = orders.customer_summary(conn, 1)
        assert summary["revenue"] == total and summary["open_balance"] == 0
        listed = list(orders.list_orders(conn))
        assert sum(r["total_cents"] for r in listed) == total
        # return every unit, one at a time in random order, refunding as we go
        units = [(ln["sku"], 1) for ln in lines for _ in range(ln["qty"])]
        rnd.shuffle(units)
        credited = refunded = 0
        for unit in units[:60]:
            with db.write_tx(conn):
                r = orders.return_items(conn, ref.id, lines=[unit], refund=True)
            credited += r["credited"]
            refunded += r["refunded"]
            row = conn.execute("SELECT * FROM orders WHERE id = ?", (ref.id,)).fetchone()
            assert row["returned_cents"] == credited
            assert row["paid_cents"] == total - refunded
            assert 0 <= row["paid_cents"] <= row["total_cents"] - row["returned_cents"]
        if len(units) <= 60:
            # everything back: exactly the lines and order adjustments, shipping kept
            assert credited == total - o["shipping_cents"]
            assert refunded == credited
            assert orders.customer_summary(conn, 1)["revenue"] == o["shipping_cents"]
        assert db.check(conn) == []
    finally:
        conn.close()


@settings(max_examples=40, deadline=None)
@given(amounts=st.lists(st.integers(1, 50_000), min_size=1, max_size=12), rate=RATES)
def test_list_totals_equal_the_sum_of_orders(amounts, rate):
    conn = db.connect(":memory:")
    try:
        with db.write_tx(conn):
            add_customer(conn, "A", "a@example.com")
            products.add(conn, sku="X", name="x", price=1, tax_rate=rate)
            stock.receive(conn, "X", 10**6)
            for amount in amounts:
                ref = orders.create(conn, customer=1, lines=[orders.LineSpec("X", 1, amount)])
                orders.confirm(conn, ref.id)
        rows = list(orders.list_orders(conn))
        expected = sum(
            orders.line_amounts(1, a, tax_rate=Decimal(rate)).total for a in amounts)
        assert sum(r["total_cents"] for r in rows) == expected
        assert orders.customer_summary(conn, 1)["revenue"] == expected
        assert orders.customer_summary(conn, 1)["open_balance"] == expected
    finally:
        conn.close()
