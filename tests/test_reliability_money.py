"""Money: INTEGER minor units in STRICT tables with CHECK constraints; a
million amounts sum exactly; rounding is commercial half-up, once per line.

Rounding, as documented: an amount that falls between two cents goes to the
nearer one, and a tie (exactly half a cent) goes away from zero -- 0.125 ->
0.13, 2.675 -> 2.68, 1.005 -> 1.01, -0.125 -> -0.13.  It is applied once per
order line (a line's discount, then its tax); the order total is the exact
sum of the rounded lines, never rounded again.  Binary floating point would
get 2.675 and 1.005 wrong (round(2.675, 2) == 2.67): we never use float.
"""

from __future__ import annotations

import random
import re
import sqlite3
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salescrm import db, money, orders
from salescrm.errors import ValidationError

#: Money columns that may be negative, and why.
SIGNED = {
    ("orders", "adjustment_cents"): "order-level discounts (-) and surcharges (+)",
    ("order_adjustments", "amount_cents"): "sign tied to the kind by a CHECK",
    ("payments", "amount_cents"): "a refund is negative; sign tied to the kind by a CHECK",
    ("sales_collected", "amount"): "the reports' copy of payments (refunds negative); never zero by a CHECK",
}


def _schema(tmp_path) -> sqlite3.Connection:
    return db.connect(tmp_path / "schema.db")


def _checks_of(sql: str) -> list[str]:
    """The text of every CHECK (...) in a CREATE TABLE statement."""
    out, i = [], 0
    while (m := re.compile(r"\bCHECK\s*\(", re.IGNORECASE).search(sql, i)):
        depth, j = 1, m.end()
        while depth and j < len(sql):
            depth += {"(": 1, ")": -1}.get(sql[j], 0)
            j += 1
        out.append(sql[m.end():j - 1])
        i = j
    return out


def test_every_money_column_is_integer_in_a_strict_table_with_a_check(tmp_path):
    conn = _schema(tmp_path)
    cols = db.money_columns(conn)
    assert len(cols) >= 25, "the money column pattern found too few columns"
    problems = []
    for table, col, decl, strict in cols:
        if decl != "INTEGER" or not strict:
            problems.append(f"{table}.{col}: {decl}, strict={strict}")
            continue
        sql = conn.execute("SELECT sql FROM sqlite_schema WHERE name = ?", (table,)).fetchone()[0]
        checks = [c for c in _checks_of(sql) if re.search(rf"\b{col}\b", c)]
        if not checks:
            problems.append(f"{table}.{col}: no CHECK mentions it")
        elif (table, col) not in SIGNED and not any(
                re.search(rf"\b{col}\s*(>=|>)\s*0\b", c) or re.search(rf"\b{col}\s+BETWEEN\s+0\b", c) for c in checks):
            problems.append(f"{table}.{col}: no CHECK keeps it non-negative")
    assert problems == []
    # the signed ones are signed on purpose, and still guarded
    for table, col in SIGNED:
        assert (table, col, "INTEGER", True) in cols


def test_strict_tables_refuse_amounts_that_are_not_integers(tmp_path):
    conn = _schema(tmp_path)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO products (sku, sku_key, name, name_key, list_price, created_at, updated_at)"
                 " VALUES ('A', 'a', 'A', 'a', 100, 'now', 'now')")
    for bad in (12.5, "12.50", b"\x01"):
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("UPDATE products SET list_price = ? WHERE sku = 'A'", (bad,))
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        conn.execute("UPDATE products SET list_price = -1 WHERE sku = 'A'")
    conn.execute("ROLLBACK")


# --------------------------------------------------------------------------- sums


def _amounts(seed: int, n: int) -> list[str]:
    """Amounts as people type them: cents to ten millions, some with one
    decimal or none."""
    rng = random.Random(seed)
    bits = rng.getrandbits
    cents = [bits(k) % 10_000_000_000 for k in ((7, 17, 33) * (n // 3 + 1))[:n]]
    out = [f"{c // 100}.{c % 100:02d}" for c in cents]
    for i in range(0, n, 10):  # "12" and "12.5" as well as "12.50"
        c = cents[i]
        out[i] = str(c // 100) if c % 100 == 0 else (f"{c // 100}.{c % 100 // 10}" if c % 10 == 0 else out[i])
    return out


@pytest.mark.slow
@settings(max_examples=1, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_a_million_amounts_sum_exactly(seed):
    texts = _amounts(seed, 1_000_000)
    cents = [money.parse_money(t) for t in texts]
    exact = sum(Decimal(t) for t in texts)
    total = sum(cents)
    assert Decimal(total) / 100 == exact
    assert money.fmt(total) == f"{exact:.2f}"
    # SQLite sums INTEGER columns exactly too (64-bit, no float on the way)
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (c INTEGER NOT NULL) STRICT")
    conn.executemany("INSERT INTO t VALUES (?)", ((c,) for c in cents))
    assert conn.execute("SELECT sum(c), typeof(sum(c)) FROM t").fetchone() == (total, "integer")
    conn.close()


def test_the_float_traps_we_avoid():
    assert sum([0.1] * 10) != 1.0
    assert sum(money.parse_money("0.10") for _ in range(10)) == 100
    assert round(2.675, 2) == 2.67 and round(1.005, 2) == 1.0
    assert money.to_cents(Decimal("2.675")) == 268 and money.to_cents(Decimal("1.005")) == 101


@given(st.lists(st.integers(-10**13, 10**13), max_size=200))
def test_sums_of_random_amounts_are_exact_and_round_trip(amounts):
    texts = [money.fmt(c) for c in amounts]
    assert sum(money.parse_money(t, allow_negative=True) for t in texts) == sum(amounts)
    assert Decimal(sum(amounts)) / 100 == sum((Decimal(t) for t in texts), Decimal(0))
    for c in amounts:
        assert money.parse_money(money.fmt(c), allow_negative=True) == c
    assert money.parse_money(money.fmt(sum(amounts)), allow_negative=True) == sum(amounts)


# --------------------------------------------------------------------------- rounding


HALF_UP = [
    # amount in currency units -> cents
    ("0.125", 13), ("2.675", 268), ("1.005", 101), ("0.005", 1), ("0.004", 0), ("0.0049999", 0),
    ("1.115", 112), ("1.125", 113), ("10.235", 1024), ("999999.995", 100000000),
    ("-0.125", -13), ("-2.675", -268), ("-1.005", -101), ("-0.005", -1), ("-0.004", 0),
    ("0", 0), ("0.01", 1), ("-0.01", -1),
]


@pytest.mark.parametrize("amount,cents", HALF_UP)
def test_half_up_rounding_table(amount, cents):
    assert money.to_cents(Decimal(amount)) == cents
    assert money.round_cents(Decimal(amount) * 100) == cents


@pytest.mark.parametrize("text", ["0.125", "2.675", "1.005", "1e2", "NaN", "1,50", "€5", "-0"])
def test_typed_amounts_with_more_than_two_decimals_are_refused_not_rounded(text):
    if text == "-0":
        assert money.parse_money(text) == 0
        return
    with pytest.raises(ValidationError):
        money.parse_money(text)


LINES = [
    # qty, unit price (cents), tax %, discount %, -> (net, tax, total)
    (1, 250, "5", None, (250, 13, 263)),        # tax 12.5 cents -> 13
    (1, 5350, "5", None, (5350, 268, 5618)),    # tax 267.5 -> 268 (the 2.675 case)
    (1, 2010, "5", None, (2010, 101, 2111)),    # tax 100.5 -> 101 (the 1.005 case)
    (3, 333, "0", "10", (899, 0, 899)),         # 999 less 10% = 899.1 -> 899
    (1, 25, "0", "50", (13, 0, 13)),            # 12.5 -> 13
    (1, 1, "50", None, (1, 1, 2)),              # half a cent of tax -> 1 cent
    (7, 143, "13", "7.5", (926, 120, 1046)),    # 1001 less 7.5% = 925.925 -> 926; 13% = 120.38 -> 120
]


@pytest.mark.parametrize("qty,price,rate,pct,expected", LINES)
def test_per_line_rounding_table(qty, price, rate, pct, expected):
    a = orders.line_amounts(qty, price, tax_rate=Decimal(rate),
                            discount_pct=Decimal(pct) if pct is not None else None)
    assert (a.net, a.tax, a.total) == expected


def test_rounding_happens_per_line_not_on_the_order():
    """Two lines with half a cent of tax each: 1 + 1 cents of tax, not a
    rounded 1 cent over the order (each line stands on its own invoice row)."""
    one = orders.line_amounts(1, 1, tax_rate=Decimal("50"))
    assert one.tax == 1
    assert one.tax + one.tax == 2 != money.round_cents(Decimal(1 + 1) * Decimal("0.5"))


def test_rounding_rule_on_a_real_order(tmp_path):
    from tests.test_reliability_kit import seeded

    path = tmp_path / "crm.db"
    seeded(path)
    conn = db.connect(path)
    with db.write_tx(conn):
        conn.execute("UPDATE products SET tax_rate = '5' WHERE sku = 'MUG-01'")
        ref = orders.create(conn, customer="c1@example.com", lines=["MUG-01:1@2.50", "MUG-01:1@53.50",
                                                                      "MUG-01:1@20.10"])
    o = conn.execute("SELECT subtotal_cents, tax_cents, total_cents FROM orders WHERE id = ?", (ref.id,)).fetchone()
    lines = conn.execute("SELECT tax_cents FROM order_lines WHERE order_id = ? ORDER BY line_no",
                         (ref.id,)).fetchall()
    conn.close()
    assert [r[0] for r in lines] == [13, 268, 101]
    assert tuple(o) == (250 + 5350 + 2010, 13 + 268 + 101, 7610 + 382)
