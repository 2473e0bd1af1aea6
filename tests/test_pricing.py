"""Pricing strategies, price history and market prices, through the CLI,
with prices computed by hand."""

from __future__ import annotations

import pytest

from salescrm import db, pricing
from salescrm.errors import ValidationError


def one_line_error(result, code=1):
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr


@pytest.fixture
def tea(run):
    run.ok("product", "add", "TEA", "Green tea", "--price", "10.00", "--cost", "4.00", "--category", "tea")
    return "TEA"


@pytest.fixture
def market(run, tea):
    run.ok("market", "add", "TEA", "--source", "Shop A", "--price", "7.00", "--at", "2026-01-01")
    run.ok("market", "add", "TEA", "--source", "Shop A", "--price", "9.50", "--at", "2026-02-01")  # A's latest
    run.ok("market", "add", "TEA", "--source", "Shop B", "--price", "12.00", "--at", "2026-02-03")
    run.ok("market", "add", "tea", "--source", "Web C", "--price", "8.80", "--at", "2026-02-02")
    return tea


def price_of(run, sku="TEA"):
    return run.json("product", "show", sku)["list_price"]


# --------------------------------------------------------------------------- arithmetic


@pytest.mark.parametrize("cents, ending, expected", [
    (520, ".99", 499), (550, ".99", 599), (549, ".99", 599),  # a tie goes up
    (2350, "9.99", 1999), (2600, "9.99", 2999), (100, ".95", 95), (40, ".99", 99), (1234, "0.99", 1199),
    (1260, "5", 1500), (1234, ".5", 1250),
])
def test_round_to_ending(cents, ending, expected):
    assert pricing.round_to_ending(cents, ending) == expected


def test_round_up_down_and_floor():
    assert pricing.round_to_ending(862, ".99", mode="down") == 799
    assert pricing.round_to_ending(899, ".99", mode="down") == 899
    assert pricing.round_to_ending(520, ".99", mode="up") == 599
    assert pricing.round_to_ending(499, ".99", mode="up") == 499
    assert pricing.round_to_ending(805, ".99", mode="down", at_least=800) == 899
    assert pricing.round_to_ending(520, ".99", at_least=500) == 599


@pytest.mark.parametrize("ending", ["abc", ".999", "", "-1", "."])
def test_bad_endings(ending):
    with pytest.raises(ValidationError):
        pricing.parse_ending(ending)


def test_median():
    assert pricing.median([]) is None
    assert pricing.median([5]) == 5
    assert pricing.median([100, 301]) == 201  # 200.5 rounds half up
    assert pricing.median([9, 1, 5, 7]) == 6


# --------------------------------------------------------------------------- strategies


def test_cost_plus(run, tea):
    r = run.ok("product", "price", "TEA", "--cost-plus", "30%")
    assert r.stderr.endswith("TEA: 10.00 -> 5.20 (cost-plus 30%)\n")
    assert price_of(run) == 5.20
    run.ok("product", "price", "TEA", "--cost-plus", "150")  # a markup may pass 100%
    assert price_of(run) == 10.00


def test_cost_plus_rounds_half_up(run):
    run.ok("product", "add", "X", "X", "--price", "1", "--cost", "3.33")
    run.ok("product", "price", "X", "--cost-plus", "50%")  # 4.995 -> 5.00
    assert price_of(run, "X") == 5.00


def test_margin(run, tea):
    out = run.json("product", "price", "TEA", "--margin", "25%")  # 4.00 / 0.75 = 5.333
    assert (out["new_price"], out["old_price"], out["margin_pct"], out["strategy"]) == (5.33, 10.00, 25.0,
                                                                                          "margin 25%")
    run.ok("product", "price", "TEA", "--margin", "25%", "--round-to", ".99")
    assert price_of(run) == 5.99  # rounded up: the 25% margin asked for is kept


def test_match_market(run, market):
    out = run.json("product", "price", "TEA", "--match-market", "--dry-run")
    assert out["new_price"] == 8.80 and out["changed"] is False
    assert "lowest of 3 sources: Web C 8.80 on 2026-02-02" in out["detail"]
    assert price_of(run) == 10.00
    out = run.json("product", "price", "TEA", "--match-market", "--undercut", "2%")  # 8.80 x 0.98 = 8.624
    assert out["new_price"] == 8.62 and out["strategy"] == "match-market -2%"
    run.ok("product", "price", "TEA", "--match-market", "--undercut", "2%", "--round-to", ".99")
    assert price_of(run) == 7.99  # never above the market: the highest .99 price under 8.62


def test_never_below_cost_unless_allowed(run, market, snap, db_path):
    run.ok("product", "edit", "TEA", "--cost", "9.00")
    before = snap(db_path)
    r = run("product", "price", "TEA", "--match-market")
    assert "match-market gives 8.80 for TEA, below its cost 9.00" in one_line_error(r)
    assert "--allow-below-cost" in r.stderr
    r = run("product", "price", "TEA", "--match-market", "--dry-run")
    assert "below its cost" in one_line_error(r)
    assert snap(db_path) == before
    out = run.json("product", "price", "TEA", "--match-market", "--allow-below-cost")
    assert out["new_price"] == 8.80 and "below cost (allowed)" in out["detail"]


def test_rounding_never_goes_below_cost(run, market):
    run.ok("product", "edit", "TEA", "--cost", "8.00")
    out = run.json("product", "price", "TEA", "--match-market", "--round-to", ".99")  # 7.99 < 8.00 -> 8.99
    assert out["new_price"] == 8.99


def test_dry_run_changes_nothing(run, tea, snap, db_path):
    before = snap(db_path)
    r = run.ok("product", "price", "TEA", "--cost-plus", "30%", "--dry-run")
    assert "dry run: TEA would go 10.00 -> 5.20 (cost-plus 30%); nothing changed" in r.stderr
    assert snap(db_path) == before


def test_unchanged_price_writes_nothing(run, tea, snap, db_path):
    run.ok("product", "price", "TEA", "--cost-plus", "150%")
    before = snap(db_path)
    r = run.ok("product", "price", "TEA", "--cost-plus", "150%")
    assert "already 10.00; nothing changed" in r.stderr
    assert snap(db_path) == before


def test_history(run, tea):
    run.ok("product", "price", "TEA", "--cost-plus", "30%", "--round-to", ".99")
    run.ok("product", "edit", "TEA", "--price", "6.50")
    run.ok("product", "edit", "TEA", "--name", "Green tea 250g")  # not a price change
    rows = run.json("product", "price", "TEA", "--history")
    user = db.os_user()
    assert [(r["old"], r["new"], r["os_user"]) for r in rows] == [(None, 10.00, user), (10.00, 5.99, user),
                                                                   (5.99, 6.50, user)]
    assert [r["strategy"] for r in rows] == ["initial (product add)", "cost-plus 30%, rounded to .99",
                                             "manual (product edit)"]
    assert rows[1]["change_pct"] == -40.1 and rows[1]["detail"] == "cost 4.00; before rounding 5.20"
    assert "cost-plus 30%" in run.ok("product", "price", "TEA", "--history", "--format", "table").stdout
    r = run("product", "price", "TEA", "--history", "--cost-plus", "10%")
    assert "give no strategy" in one_line_error(r)


def test_price_history_is_audited(run, tea, db_path):
    import sqlite3

    run.ok("product", "price", "TEA", "--margin", "20%")
    conn = sqlite3.connect(db_path)
    actions = [r[0] for r in conn.execute("SELECT action FROM audit WHERE entity = 'product' ORDER BY id")]
    conn.close()
    assert actions == ["create", "update", "reprice"]


@pytest.mark.parametrize("args, message", [
    (["--margin", "100%"], "margin must be below 100%"),
    (["--margin", "120%"], "margin must be between 0 and 100"),
    (["--cost-plus", "1001%"], "cost-plus must be between 0 and 1000%"),
    (["--cost-plus", "-5%"], "cost-plus"),
    (["--cost-plus", "abc"], "not a valid number"),
    (["--cost-plus", "10%", "--margin", "5%"], "choose one strategy, not --cost-plus and --margin"),
    ([], "choose one strategy"),
    (["--cost-plus", "10%", "--undercut", "2%"], "--undercut goes with --match-market"),
    (["--match-market"], "no market prices recorded for TEA"),
    (["--cost-plus", "10%", "--round-to", "x.99"], "not a price ending"),
])
def test_bad_strategies_refused(run, tea, snap, db_path, args, message):
    before = snap(db_path)
    assert message in one_line_error(run("product", "price", "TEA", *args))
    assert snap(db_path) == before


def test_unknown_sku_and_missing_cost(run, snap, db_path):
    run.ok("product", "add", "FREE", "No cost", "--price", "1.00")
    before = snap(db_path)
    assert "no product with SKU 'NOPE'" in one_line_error(run("product", "price", "NOPE", "--cost-plus", "10%"))
    assert "FREE has no unit cost" in one_line_error(run("product", "price", "FREE", "--margin", "10%"))
    assert "no product with SKU 'NOPE'" in one_line_error(run("market", "add", "NOPE", "--source", "A",
                                                              "--price", "1"))
    assert snap(db_path) == before


# --------------------------------------------------------------------------- market


def test_market_show(run, market):
    s = run.json("market", "show", "TEA")
    assert (s["ours"], s["min"], s["median"], s["max"], s["count"]) == (10.00, 8.80, 9.50, 12.00, 3)
    assert s["rank"] == 3 and s["position"] == "rank 3 of 4: 2 cheaper, 1 dearer"
    assert s["vs_median_pct"] == 5.3  # (10.00 - 9.50) / 9.50
    assert [(x["source"], x["price"], x["vs_ours"]) for x in s["sources"]] == [
        ("Web C", 8.80, -1.20), ("Shop A", 9.50, -0.50), ("Shop B", 12.00, 2.00)]
    assert len(s["history"]) == 4
    run.ok("product", "edit", "TEA", "--price", "8.00")
    assert run.json("market", "show", "TEA")["position"] == "cheapest: below all 3 competitors"
    run.ok("product", "edit", "TEA", "--price", "13.00")
    assert run.json("market", "show", "TEA")["position"] == "dearest: above all 3 competitors"
    text = run.ok("market", "show", "TEA", "--format", "table").stdout
    assert "Current prices" in text and "Web C" in text


def test_market_show_without_prices(run, tea):
    s = run.json("market", "show", "TEA")
    assert s["count"] == 0 and s["min"] is None and s["position"] == "no market prices recorded"


def test_market_add_message_and_same_source_any_case(run, market):
    r = run.ok("market", "add", "TEA", "--source", "shop b", "--price", "9.00", "--at", "2026-03-01")
    assert r.stderr == "recorded shop b at 9.00 for TEA; ours 10.00: dearest: above all 3 competitors\n"
    s = run.json("market", "show", "TEA")
    assert s["count"] == 3 and s["max"] == 9.50 and s["min"] == 8.80


@pytest.mark.parametrize("args, message", [
    (["--source", "A", "--price", "-1.00"], "must not be negative"),
    (["--source", "A", "--price", "abc"], "not a valid amount"),
    (["--source", "", "--price", "1.00"], "source must not be empty"),
    (["--source", "A", "--price", "1.00", "--at", "2026-02-30"], "--at is not a date"),
])
def test_market_add_refusals(run, tea, snap, db_path, args, message):
    before = snap(db_path)
    assert message in one_line_error(run("market", "add", "TEA", *args))
    assert snap(db_path) == before
