"""Promotions through the CLI with hand-computed savings and totals: every
kind, every condition, the precedence rule (exclusive competition, ties,
stacking, the cost cap), what they do to an order, usage, and refusals.

Catalogue (tax 0, so a line's total is qty x price):

=======  ========  =======  =====
SKU      category  price    cost
=======  ========  =======  =====
TEA      tea       10.00    4.00
MUG      ware       5.00    2.00
CUP      ware       3.00    1.00
BOX      gift       8.00    3.00
=======  ========  =======  =====

Ann is a retail customer, Bob a wholesale one.
"""

from __future__ import annotations

import sqlite3

import pytest

from salescrm import db, promotions


def one_line_error(result, code=1):
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr


@pytest.fixture
def shop(run):
    for sku, name, cat, price, cost in (("TEA", "Tea", "tea", "10.00", "4.00"), ("MUG", "Mug", "ware", "5.00", "2.00"),
                                        ("CUP", "Cup", "ware", "3.00", "1.00"), ("BOX", "Gift box", "gift", "8.00",
                                                                                 "3.00")):
        run.ok("product", "add", sku, name, "--category", cat, "--price", price, "--cost", cost)
        run.ok("stock", "receive", sku, "1000")
    run.ok("customer", "add", "Ann", "--email", "ann@example.com", "--segment", "retail")
    run.ok("customer", "add", "Bob", "--email", "bob@example.com", "--segment", "Wholesale")


def promo(run, name, *args):
    r = run.ok("promo", "add", name, *args)
    assert r.stderr.startswith("added promotion ")
    return r


def explain(run, *lines, **opts):
    args = ["promo", "explain"]
    for ln in lines:
        args += ["--line", ln]
    for k, v in opts.items():
        args += [f"--{k}", v]
    return {r["promotion"]: r for r in run.json(*args)}


def applied(rows):
    return {name: (r["saving"], r["free_qty"]) for name, r in rows.items() if r["applied"]}


# --------------------------------------------------------------------------- kinds


def test_percent_off(run, shop):
    promo(run, "TEA10", "--percent", "10%", "--category", "tea")
    rows = explain(run, "TEA:3", "MUG:1")
    assert applied(rows) == {"TEA10": (3.00, None)}
    assert rows["TEA10"]["reason"] == "applied (exclusive)" and rows["TEA10"]["what"] == "10% off tea"
    rows = explain(run, "MUG:2")
    assert applied(rows) == {} and rows["TEA10"]["reason"] == "no qualifying items (needs tea)"


def test_amount_off_over_an_order_threshold(run, shop):
    promo(run, "FIVE", "--amount-off", "5.00", "--min-amount", "50")
    assert applied(explain(run, "TEA:5")) == {"FIVE": (5.00, None)}  # exactly 50.00 reaches it
    under = explain(run, "TEA:4", "CUP:3")  # 49.00
    assert applied(under) == {}
    assert under["FIVE"]["reason"] == "needs 50.00, has 49.00"
    assert under["FIVE"]["hint"] == "spend 1.00 more to unlock FIVE (5.00 off from 50.00)"
    just = explain(run, "TEA:1@49.99")
    assert just["FIVE"]["hint"].startswith("spend 0.01 more")
    assert applied(explain(run, "TEA:1@50.01")) == {"FIVE": (5.00, None)}


def test_amount_off_over_qualifying_lines(run, shop):
    promo(run, "WARE3", "--amount-off", "3.00", "--category", "ware", "--min-amount", "20")
    rows = explain(run, "TEA:10", "MUG:3")  # the order is 115.00 but ware only 15.00
    assert applied(rows) == {} and rows["WARE3"]["hint"] == "spend 5.00 more on ware to unlock WARE3 (3.00 off ware from 20.00)"
    assert applied(explain(run, "TEA:10", "MUG:3", "CUP:2")) == {"WARE3": (3.00, None)}  # 15 + 6 = 21


def test_fixed_price_and_the_cost_cap(run, shop):
    promo(run, "MUG4", "--fixed-price", "4.00", "--sku", "MUG")
    assert applied(explain(run, "MUG:3")) == {"MUG4": (3.00, None)}  # 3 x (5.00 - 4.00)
    run.ok("promo", "edit", "MUG4", "--fixed-price", "1.00")
    rows = explain(run, "MUG:3")  # 1.00 is under the 2.00 cost: the line stays at cost, 3 x 3.00 off
    assert applied(rows) == {"MUG4": (9.00, None)}
    assert rows["MUG4"]["reason"] == "applied (exclusive); capped at cost + minimum margin"


def test_buy_15_get_1_per_10_gives_exactly_one(run, shop):
    promo(run, "B10", "--buy", "10", "--get", "1", "--sku", "TEA")
    rows = explain(run, "TEA:15")
    assert applied(rows) == {"B10": (10.00, 1)}
    assert rows["B10"]["what"] == "buy 10 TEA get 1 TEA free (every 10)"
    assert rows["B10"]["hint"] == "add 5 more of TEA to get 1 more TEA free (B10)"
    assert applied(explain(run, "TEA:20")) == {"B10": (20.00, 2)}
    assert applied(explain(run, "TEA:19")) == {"B10": (10.00, 1)}
    nine = explain(run, "TEA:9")
    assert applied(nine) == {} and nine["B10"]["hint"] == "add 1 more of TEA to unlock B10 (buy 10 TEA get 1 TEA free (every 10))"


def test_buy_x_get_y_once_and_another_sku(run, shop):
    promo(run, "ONCE", "--buy", "10", "--get", "2", "--sku", "TEA", "--once")
    assert applied(explain(run, "TEA:35")) == {"ONCE": (20.00, 2)}
    run.ok("promo", "end", "ONCE")
    promo(run, "CUPFREE", "--buy", "2", "--get", "1", "--sku", "TEA", "--free-sku", "CUP")
    assert applied(explain(run, "TEA:5")) == {"CUPFREE": (6.00, 2)}  # 2 sets of 2 -> 2 cups at 3.00


def test_gift_over_a_threshold(run, shop):
    promo(run, "GIFT", "--gift", "BOX", "--min-amount", "100")
    assert applied(explain(run, "TEA:10")) == {"GIFT": (8.00, 1)}
    under = explain(run, "TEA:9", "CUP:3")  # 99.00
    assert applied(under) == {} and under["GIFT"]["hint"] == "spend 1.00 more to unlock GIFT (gift: 1 x BOX from 100.00)"
    run.ok("promo", "edit", "GIFT", "--gift", "BOX", "--gift-qty", "2")
    assert applied(explain(run, "TEA:10")) == {"GIFT": (16.00, 2)}


# --------------------------------------------------------------------------- conditions


def test_skus_and_categories(run, shop):
    promo(run, "MIX", "--percent", "50%", "--sku", "TEA", "--category", "ware")
    rows = explain(run, "TEA:1", "MUG:1", "CUP:1", "BOX:1")  # 50% of 10 + 5 + 3; the box does not qualify
    assert applied(rows) == {"MIX": (9.00, None)}


def test_channels(run, shop):
    promo(run, "WEB", "--percent", "10%", "--channel", "online")
    rows = explain(run, "TEA:1", channel="retail")
    assert rows["WEB"]["reason"] == "only for channel online (this is retail)" and rows["WEB"]["hint"] is None
    assert applied(explain(run, "TEA:1", channel="online")) == {"WEB": (1.00, None)}


def test_segments(run, shop):
    promo(run, "WHOLE", "--percent", "10%", "--segment", "wholesale")
    assert explain(run, "TEA:1", customer="ann@example.com")["WHOLE"]["reason"] == \
        "only for segment wholesale (customer: retail)"
    assert explain(run, "TEA:1")["WHOLE"]["reason"] == "only for segment wholesale (customer: no customer given)"
    assert applied(explain(run, "TEA:1", customer="bob@example.com")) == {"WHOLE": (1.00, None)}


def test_minimum_quantity_across_qualifying_lines(run, shop):
    promo(run, "WARE5", "--percent", "10%", "--category", "ware", "--min-qty", "5")
    assert applied(explain(run, "MUG:3", "CUP:2")) == {"WARE5": (2.10, None)}  # 10% of 15 + 6
    four = explain(run, "MUG:2", "CUP:2", "TEA:5")
    assert four["WARE5"]["reason"] == "needs 5 units of ware, has 4"
    assert four["WARE5"]["hint"] == "add 1 more unit of ware to unlock WARE5 (10% off ware from 5 units)"


def test_validity_window(run, shop):
    promo(run, "MARCH", "--percent", "10%", "--from", "2026-03-01", "--to", "2026-03-31")
    assert explain(run, "TEA:1", date="2026-02-28")["MARCH"]["reason"] == "not started: starts on 2026-03-01"
    assert applied(explain(run, "TEA:1", date="2026-03-01")) == {"MARCH": (1.00, None)}
    assert applied(explain(run, "TEA:1", date="2026-03-31")) == {"MARCH": (1.00, None)}
    assert explain(run, "TEA:1", date="2026-04-01")["MARCH"]["reason"] == "expired on 2026-03-31"


def test_long_expired_promotions_are_no_longer_candidates(run, shop):
    promo(run, "OLD", "--percent", "10%", "--to", "2026-01-31")
    assert "OLD" in explain(run, "TEA:1", date="2026-03-02")  # 30 days after its end: still listed
    assert "OLD" not in explain(run, "TEA:1", date="2026-03-03")
    assert [r["name"] for r in run.json("promo", "list", "--all")] == ["OLD"]


def test_future_and_expired_by_today(run, shop):
    promo(run, "PAST", "--percent", "10%", "--to", "-1d")
    promo(run, "FUTURE", "--percent", "10%", "--from", "+1d")
    promo(run, "NOW", "--percent", "5%", "--from", "today", "--to", "today")
    rows = explain(run, "TEA:1")
    assert rows["PAST"]["reason"].startswith("expired on") and rows["FUTURE"]["reason"].startswith("not started")
    assert applied(rows) == {"NOW": (0.50, None)}
    assert {r["name"]: r["state"] for r in run.json("promo", "list", "--all")} == {
        "PAST": "expired", "FUTURE": "scheduled", "NOW": "active"}
    assert [r["name"] for r in run.json("promo", "list")] == ["FUTURE", "NOW"]


def test_coupon(run, shop):
    promo(run, "SAVE5", "--amount-off", "5", "--coupon", "SAVE5")
    assert explain(run, "TEA:1")["SAVE5"]["reason"] == "needs its coupon code"
    assert explain(run, "TEA:1", coupon="WRONG")["SAVE5"]["reason"] == "needs its coupon code (another was given)"
    assert applied(explain(run, "TEA:1", coupon="save5")) == {"SAVE5": (5.00, None)}


def test_active_flag_and_end(run, shop):
    promo(run, "OFF", "--percent", "10%", "--inactive")
    promo(run, "ON", "--percent", "5%")
    assert explain(run, "TEA:1")["OFF"]["reason"] == "inactive"
    run.ok("promo", "edit", "OFF", "--active")
    run.ok("promo", "end", "ON")
    rows = explain(run, "TEA:1")
    assert applied(rows) == {"OFF": (1.00, None)} and rows["ON"]["reason"].startswith("ended on ")
    assert "already ended" in one_line_error(run("promo", "end", "ON"))
    assert run.json("promo", "show", "ON")["state"] == "ended"


# --------------------------------------------------------------------------- precedence


def test_exclusive_promotions_compete_for_the_largest_saving(run, shop):
    promo(run, "PCT", "--percent", "10%")
    promo(run, "FLAT", "--amount-off", "5.00")
    small = explain(run, "TEA:3")  # 10% = 3.00 < 5.00
    assert applied(small) == {"FLAT": (5.00, None)}
    assert small["FLAT"]["reason"] == "applied: the exclusive promotion with the largest saving"
    assert small["PCT"]["reason"] == "not applied: exclusive, saves 3.00, less than FLAT (5.00)"
    assert applied(explain(run, "TEA:10")) == {"PCT": (10.00, None)}  # 10% = 10.00 > 5.00
    assert list(small)[0] == "FLAT"  # the applied one is listed first


def test_ties_go_to_priority_then_creation(run, shop):
    promo(run, "FIRST", "--percent", "10%")
    promo(run, "SECOND", "--amount-off", "5.00")
    rows = explain(run, "TEA:5")  # both save 5.00: created first wins
    assert applied(rows) == {"FIRST": (5.00, None)}
    assert rows["SECOND"]["reason"] == "not applied: exclusive, same saving and priority as FIRST, created later"
    run.ok("promo", "edit", "SECOND", "--priority", "1")
    rows = explain(run, "TEA:5")
    assert applied(rows) == {"SECOND": (5.00, None)}
    assert rows["FIRST"]["reason"] == "not applied: exclusive, same saving as SECOND, lower priority"


def test_stackable_apply_on_top_in_priority_order(run, shop):
    promo(run, "EX", "--amount-off", "5.00")
    promo(run, "LOW", "--percent", "20%", "--stackable", "--priority", "1")
    promo(run, "HIGH", "--percent", "10%", "--stackable", "--priority", "2")
    rows = explain(run, "TEA:10")
    # 100.00 - 5.00 = 95.00; HIGH 10% of 95.00 = 9.50 -> 85.50; LOW 20% of 85.50 = 17.10 -> 68.40
    assert applied(rows) == {"EX": (5.00, None), "HIGH": (9.50, None), "LOW": (17.10, None)}
    assert list(rows) == ["EX", "HIGH", "LOW"]
    assert rows["HIGH"]["reason"] == "applied on top (stackable)"
    r = run.ok("promo", "explain", "--line", "TEA:10", "--format", "table")
    assert "promotion discounts 31.60, after discounts 68.40" in r.stdout


def test_cap_keeps_lines_at_cost_plus_margin_and_never_below_zero(run, shop):
    promo(run, "HALF", "--percent", "50%", "--stackable", "--priority", "2")
    promo(run, "MORE", "--percent", "50%", "--stackable", "--priority", "1")
    rows = explain(run, "TEA:10")  # cost 40.00: HALF 50.00, MORE wants 25.00 but only 10.00 is left above cost
    assert applied(rows) == {"HALF": (50.00, None), "MORE": (10.00, None)}
    assert rows["MORE"]["reason"].endswith("capped at cost + minimum margin")
    assert run.ok("promo", "margin").stdout == "0%\n"
    run.ok("promo", "margin", "20%")  # floor 40.00 / 0.80 = 50.00
    rows = explain(run, "TEA:10")
    assert applied(rows) == {"HALF": (50.00, None)}
    assert rows["MORE"]["reason"].startswith("not applied: no saving left")
    run.ok("promo", "margin", "0")
    run.ok("product", "edit", "CUP", "--cost", "0")
    promo(run, "ALL", "--percent", "100%", "--sku", "CUP", "--stackable", "--priority", "3")
    rows = explain(run, "CUP:2")  # free of cost: 100% off leaves 0.00, never less
    assert applied(rows) == {"ALL": (6.00, None)}
    assert rows["HALF"]["reason"].startswith("not applied: no saving left")


def test_amount_off_spreads_what_a_capped_line_cannot_take(run, shop):
    promo(run, "TWENTY", "--amount-off", "20.00", "--category", "ware")
    # MUG 5.00 (room 3.00) and CUP 15.00 (room 10.00): 20.00 cannot fit, 13.00 can
    rows = explain(run, "MUG:1", "CUP:5")
    assert applied(rows) == {"TWENTY": (13.00, None)}


# --------------------------------------------------------------------------- orders


def order_show(run, number):
    return run.json("order", "show", number)


def create(run, *lines, customer="ann@example.com", **opts):
    args = ["order", "create", "--customer", customer]
    for ln in lines:
        args += ["--line", ln]
    for k, v in opts.items():
        args += [f"--{k}", v]
    return run.ok(*args).stdout.strip()  # order create prices the promotions


def test_order_gets_an_adjustment_and_a_free_line_naming_the_promotions(run, shop):
    promo(run, "B10", "--buy", "10", "--get", "1", "--sku", "TEA")
    promo(run, "TEA10", "--percent", "10%", "--category", "tea", "--stackable")
    n = create(run, "TEA:15", "MUG:2")
    o = order_show(run, n)
    assert [(ln["sku"], ln["qty"], ln["unit_price"], ln["description"]) for ln in o["lines"]] == [
        ("TEA", 15, 10.00, "Tea"), ("MUG", 2, 5.00, "Mug"), ("TEA", 1, 0.00, "Tea (free, promotion B10)")]
    assert [(a["description"], a["amount"]) for a in o["adjustments"]] == [("Promotion TEA10: 10% off tea", -15.00)]
    assert o["total"] == 150.00 + 10.00 - 15.00  # 145.00
    promos = {r["promotion"]: r for r in run.json("promo", "explain", n)}
    assert applied(promos) == {"B10": (10.00, 1), "TEA10": (15.00, None)}


def test_repricing_is_idempotent_and_follows_changes(run, shop, db_path, snap):
    promo(run, "B10", "--buy", "10", "--get", "1", "--sku", "TEA")
    promo(run, "FIVE", "--amount-off", "5.00", "--min-amount", "100", "--stackable")
    n = create(run, "TEA:10")
    before = snap(db_path)
    run.ok("promo", "apply", n)
    after = snap(db_path)
    assert {t: v for t, v in after.items() if t != "audit"} == {t: v for t, v in before.items() if t != "audit"}
    assert order_show(run, n)["total"] == 95.00  # 100 - 5, one tea free
    run.ok("order", "add-line", n, "MUG:2")
    run.ok("order", "remove-line", n, "1")  # the paid tea goes: the free one and the 5.00 off go too
    run.ok("promo", "apply", n)
    o = order_show(run, n)
    assert [ln["sku"] for ln in o["lines"]] == ["MUG"] and o["adjustments"] == [] and o["total"] == 10.00
    history = [e["detail"] for e in run.json("order", "history", n) if e["kind"] == "promotion"]
    assert history[-1] == "removed line 2: TEA x 1; removed Promotion FIVE: 5.00 off from 100.00"
    run.ok("order", "add-line", n, "TEA:20")
    run.ok("promo", "apply", n)
    o = order_show(run, n)
    assert [(ln["sku"], ln["qty"]) for ln in o["lines"]] == [("MUG", 2), ("TEA", 20), ("TEA", 2)]
    assert [ln["line_no"] for ln in o["lines"]] == [3, 4, 5]
    assert o["total"] == 210.00 - 5.00


def test_coupon_on_an_order(run, shop):
    promo(run, "SAVE5", "--amount-off", "5", "--coupon", "SAVE5")
    n = create(run, "TEA:2")
    assert order_show(run, n)["total"] == 20.00
    r = run.ok("promo", "coupon", n, "save5")
    assert "promotions: SAVE5 (saving 5.00)" in r.stderr
    assert order_show(run, n)["total"] == 15.00
    assert "no promotion has the coupon NOPE" in one_line_error(run("promo", "coupon", n, "NOPE"))
    run.ok("promo", "coupon", n, "")
    assert order_show(run, n)["total"] == 20.00


def _confirm(run, conn_path, number):
    run.ok("order", "confirm", number)


def _cancel(run, conn_path, number):
    run.ok("order", "cancel", number)


def test_usage_limits_counted_on_confirm_released_on_cancel(run, shop, db_path):
    promo(run, "ONE", "--amount-off", "2.00", "--limit", "1")
    promo(run, "PER", "--percent", "10%", "--per-customer", "1", "--stackable")
    n1 = create(run, "TEA:5")
    # ONE (exclusive) first: 50.00 - 2.00 = 48.00; PER stacks: 10% of 48.00
    assert applied({r["promotion"]: r for r in run.json("promo", "explain", n1)}) == {
        "ONE": (2.00, None), "PER": (4.80, None)}
    _confirm(run, db_path, n1)
    rows = explain(run, "TEA:5", customer="ann@example.com")
    assert rows["ONE"]["reason"] == "usage limit reached (1 of 1 used)"
    assert rows["PER"]["reason"] == "used 1 time by this customer (limit 1)"
    assert applied(explain(run, "TEA:5", customer="bob@example.com")) == {"PER": (5.00, None)}
    shown = run.json("promo", "show", "ONE")
    assert shown["used"] == 1 and shown["state"] == "used up" and shown["usage"][0]["number"] == n1
    _cancel(run, db_path, n1)
    assert applied(explain(run, "TEA:5", customer="ann@example.com")) == {"ONE": (2.00, None), "PER": (4.80, None)}
    assert run.json("promo", "show", "ONE")["usage"][0]["released_at"] is not None


def test_a_limit_reached_after_pricing_refuses_confirm(db_path, run, shop, snap):
    promo(run, "ONE", "--amount-off", "2.00", "--limit", "1")
    n1 = create(run, "TEA:5")
    n2 = create(run, "TEA:5", customer="bob@example.com")
    assert order_show(run, n2)["total"] == 48.00
    _confirm(run, db_path, n1)
    before = snap(db_path)
    r = run("order", "confirm", n2)
    assert f"promotion ONE reached its usage limit (1 of 1 used) after {n2} was priced" in one_line_error(r)
    assert f"reprice it with 'salescrm promo apply {n2}', then confirm" in r.stderr
    assert snap(db_path) == before
    run.ok("promo", "apply", n2)
    assert order_show(run, n2)["total"] == 50.00
    _confirm(run, db_path, n2)
    assert run.json("promo", "show", "ONE")["used"] == 1


def test_order_create_and_edits_price_promotions(run, shop, db_path, snap):
    promo(run, "FIVE", "--amount-off", "5.00", "--min-amount", "50")
    promo(run, "WEB", "--percent", "10%", "--channel", "online", "--stackable")
    n = create(run, "TEA:5")
    assert order_show(run, n)["total"] == 45.00
    before = snap(db_path)
    run.ok("promo", "apply", n)  # already priced: nothing changes but the audit trail
    assert {t: v for t, v in snap(db_path).items() if t != "audit"} == \
        {t: v for t, v in before.items() if t != "audit"}
    run.ok("order", "edit", n, "--channel", "online")  # 50 - 5 = 45; 10% of 45 = 4.50
    assert order_show(run, n)["total"] == 40.50
    run.ok("order", "add-line", n, "MUG:2")  # 60 - 5 = 55; 5.50
    assert order_show(run, n)["total"] == 49.50
    run.ok("order", "remove-line", n, "TEA")  # 10.00 left: under 50, FIVE goes; 10% of 10 = 1.00
    o = order_show(run, n)
    assert o["total"] == 9.00 and [a["description"] for a in o["adjustments"]] == ["Promotion WEB: 10% off"]
    run.ok("order", "edit", n, "--discount", "1.00")  # a manual discount stays beside the promotions
    o = order_show(run, n)
    assert sorted(a["amount"] for a in o["adjustments"]) == [-1.00, -1.00] and o["total"] == 8.00
    kinds = [e["kind"] for e in run.json("order", "history", n)]
    assert kinds.count("promotion") >= 4


def test_removing_the_qualifying_line_drops_its_discount(run, shop):
    promo(run, "FIVE", "--amount-off", "5.00")
    n = create(run, "TEA:1")
    assert order_show(run, n)["total"] == 5.00
    run.ok("order", "add-line", n, "CUP:1")
    run.ok("order", "remove-line", n, "1")  # 3.00 left: the 5.00 off shrinks to what the cap allows
    o = order_show(run, n)
    assert o["total"] == 1.00 and o["adjustments"][0]["amount"] == -2.00  # cup cost 1.00
    run.ok("order", "remove-line", n, "CUP")
    o = order_show(run, n)
    assert o["lines"] == [] and o["adjustments"] == [] and o["total"] == 0


def test_free_lines_ship_and_reserve_stock(run, shop):
    promo(run, "B10", "--buy", "10", "--get", "1", "--sku", "TEA")
    n = create(run, "TEA:15")
    run.ok("order", "confirm", n)
    assert run.json("product", "show", "TEA")["reserved"] == 16
    run.ok("order", "ship", n)
    assert run.json("product", "show", "TEA")["on_hand"] == 1000 - 16
    o = order_show(run, n)
    assert o["total"] == 150.00 and o["status"] == "shipped"


def test_report_effectiveness(run, shop, db_path):
    promo(run, "TEA10", "--percent", "10%", "--category", "tea")
    promo(run, "B2", "--buy", "2", "--get", "1", "--sku", "MUG", "--stackable")
    n1 = create(run, "TEA:10")  # 100 - 10 = 90
    n2 = create(run, "TEA:5", "MUG:2")  # 50 - 5 + 10 = 55, one mug free (5.00)
    n3 = create(run, "TEA:1")  # cancelled
    for n in (n1, n2, n3):
        _confirm(run, db_path, n)
    _cancel(run, db_path, n3)
    rows = {r["name"]: r for r in run.json("promo", "report")}
    assert (rows["TEA10"]["orders"], rows["TEA10"]["revenue"], rows["TEA10"]["discount"]) == (2, 145.00, 15.00)
    assert (rows["B2"]["orders"], rows["B2"]["revenue"], rows["B2"]["discount"]) == (1, 55.00, 5.00)
    assert rows["TEA10"]["discount_pct"] == 9.4  # 15 / (145 + 15)
    csv_rows = run.csv("promo", "report")
    assert csv_rows[0]["name"] == "TEA10"


# --------------------------------------------------------------------------- list, show, edit


def test_list_show_edit(run, shop):
    promo(run, "A", "--percent", "10%", "--sku", "TEA", "--sku", "MUG", "--channel", "online,phone",
          "--segment", "Retail", "--coupon", "Hello-1", "--limit", "5", "--per-customer", "2", "--priority", "3",
          "--description", "Spring")
    s = run.json("promo", "show", "a")
    assert (s["kind"], s["percent"], s["targets"], s["channels"], s["segments"], s["coupon"]) == (
        "percent", 10, "MUG, TEA", "online,phone", "retail", "Hello-1")
    assert (s["usage_limit"], s["per_customer_limit"], s["priority"], s["exclusive"]) == (5, 2, 3, True)
    run.ok("promo", "edit", "A", "--name", "B", "--amount-off", "2.50", "--sku", "", "--channel", "",
           "--coupon", "", "--stackable", "--min-amount", "10")
    s = run.json("promo", "show", "B")
    assert (s["kind"], s["amount"], s["targets"], s["channels"], s["coupon"], s["exclusive"]) == (
        "amount", 2.50, "every line", None, None, False)
    assert s["summary"] == "2.50 off from 10.00"
    assert [r["name"] for r in run.json("promo", "list")] == ["B"]
    assert "B" in run.ok("promo", "list", "--format", "table").stdout


def test_help_states_the_precedence_rule(run):
    text = run.ok("promo", "--help").stdout
    assert "largest" in text and "saving wins" in text and "priority" in text and "cost" in text


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("args, message", [
    (["--percent", "150%"], "percent off must be between 0 and 100"),
    (["--percent", "0"], "percent off must be more than zero"),
    (["--fixed-price", "-1.00"], "must not be negative"),
    (["--amount-off", "0"], "amount off must be more than zero"),
    (["--percent", "10%", "--sku", "NOPE"], "no product with SKU 'NOPE'"),
    (["--percent", "10%", "--category", "coffee"], "no product has the category 'coffee'"),
    (["--gift", "NOPE"], "no product with SKU 'NOPE'"),
    (["--buy", "10", "--get", "1"], "name the free product with --free-sku"),
    (["--buy", "10", "--sku", "TEA"], "needs both --buy X and --get Y"),
    (["--percent", "10%", "--amount-off", "5"], "give one kind, not --percent and --amount-off"),
    ([], "a promotion is one kind"),
    (["--percent", "10%", "--from", "2026-03-01", "--to", "2026-02-01"], "ends (2026-02-01) before it starts"),
    (["--percent", "10%", "--to", "2026-02-30"], "--to is not a date"),
    (["--percent", "10%", "--channel", "tv"], "unknown channel 'tv'"),
    (["--percent", "10%", "--limit", "0"], "usage limit must be more than zero"),
    (["--percent", "10%", "--min-amount", "-5"], "must not be negative"),
    (["--percent", "10%", "--coupon", "has space"], "a coupon code is letters"),
])
def test_bad_promotions_refused_with_no_change(run, shop, db_path, snap, args, message):
    before = snap(db_path)
    assert message in one_line_error(run("promo", "add", "BAD", *args))
    assert snap(db_path) == before


def test_duplicates_and_unknowns_refused(run, shop, db_path, snap):
    promo(run, "A", "--percent", "10%", "--coupon", "C1")
    before = snap(db_path)
    assert "already exists" in one_line_error(run("promo", "add", "a", "--percent", "5%"))
    assert "the coupon c1 belongs to another promotion" in one_line_error(
        run("promo", "add", "B", "--percent", "5%", "--coupon", "c1"))
    assert "no promotion 'Z'" in one_line_error(run("promo", "show", "Z"))
    assert "percent off must be between" in one_line_error(run("promo", "edit", "A", "--percent", "101"))
    assert "no product with SKU 'NOPE'" in one_line_error(run("promo", "explain", "--line", "NOPE:1"))
    assert "give an order or at least one --line" in one_line_error(run("promo", "explain"))
    assert "no order 'SO-999'" in one_line_error(run("promo", "explain", "SO-999"))
    assert "--every/--once go with buy X get Y" in one_line_error(run("promo", "edit", "A", "--once"))
    assert snap(db_path) == before


def test_apply_refuses_a_confirmed_order(run, shop, db_path):
    n = create(run, "TEA:1")
    run.ok("order", "confirm", n)
    assert "only draft orders are repriced" in one_line_error(run("promo", "apply", n))


def test_library_writers_need_a_transaction_and_audit(db_path, run, shop):
    conn = db.connect(db_path)
    try:
        with pytest.raises(AssertionError):
            promotions.add(conn, name="X", percent="5")
        with db.write_tx(conn):
            pid = promotions.add(conn, name="X", percent="5")
            promotions.edit(conn, pid, priority=2)
            promotions.end(conn, pid)
        rows = [tuple(r) for r in conn.execute(
            "SELECT action FROM audit WHERE entity = 'promotion' ORDER BY id")]
        assert rows == [("create",), ("update",), ("end",)]
        assert isinstance(conn, sqlite3.Connection)
    finally:
        conn.close()


def test_order_quote_lists_every_candidate_promotion(run, shop):
    promo(run, "TEA10", "--percent", "10%", "--category", "tea")
    promo(run, "FIVE", "--amount-off", "5.00", "--min-amount", "50")
    number = run.ok("order", "create", "--customer", "ann@example.com", "--line", "TEA:2").stdout.strip()
    quote = run.ok("order", "quote", number).stdout
    assert "## Promotions" in quote
    assert "TEA10: applied" in quote and "FIVE: not applied" in quote
    html = run.ok("order", "quote", number, "--html").stdout
    assert "<h2>Promotions</h2>" in html and "TEA10" in html
