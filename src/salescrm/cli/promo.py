"""``salescrm promo ...``: parsing and rendering only; the work is done in
``salescrm.promotions``.  Each command's writes are one transaction."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from salescrm.cli.common import FormatOpt, open_db, out, say

HELP = """Promotions: percent off, amount off, fixed price, buy X get Y free, gifts.

Precedence (one rule): every promotion is evaluated against the order.
Exclusive promotions compete and the one giving the customer the largest
saving wins (ties: the higher priority, then the one created first); the
other exclusive ones are not applied.  Stackable promotions then apply on
top, in priority order (ties: created first), each on what is left to pay
after the ones before it.  A cap keeps every paid line at or above its cost
plus the minimum margin ('promo margin', default 0%) and never below zero;
free and gift lines are outside the cap.

Conditions (all must hold): active, the validity window (by the order
date), the coupon code if the promotion has one ('promo coupon ORDER CODE'),
channel, customer segment, SKUs or categories (the qualifying lines), and
a minimum quantity or amount counted across all qualifying lines (line
totals before promotions), the total and the per-customer usage limit.

Drafts are priced when created or edited: each discount is its own order
adjustment naming the promotion, each free or gift item its own line at
price 0.  Usage is counted when the order is confirmed and released when it
is cancelled.  'promo explain' shows every candidate and why it applied or
not, with "spend N more to unlock ..." hints.
"""

app = typer.Typer(no_args_is_help=True, help=HELP, rich_markup_mode=None)


def _opt(help: str, *names: str, metavar: str | None = None):
    return typer.Option(*names, help=help, show_default=False, metavar=metavar)


PromoArg = Annotated[str, typer.Argument(metavar="PROMO", help="Promotion name (any case) or id.",
                                         show_default=False)]
OrderArg = Annotated[str, typer.Argument(metavar="ORDER", help="Order number (SO-000123) or id.",
                                         show_default=False)]
Percent = Annotated[str | None, _opt("Kind: percent off the qualifying lines, e.g. 10%.", "--percent",
                                     metavar="P%")]
AmountOff = Annotated[str | None, _opt("Kind: an amount off the qualifying lines (once per order), e.g. 5.00; "
                                       "with --min-amount for 'X off over Y'.", "--amount-off", metavar="AMOUNT")]
FixedPrice = Annotated[str | None, _opt("Kind: the qualifying lines at this unit price.", "--fixed-price",
                                        metavar="AMOUNT")]
Buy = Annotated[int | None, _opt("Kind buy X get Y free: for every X qualifying units bought ...", "--buy",
                                 metavar="X")]
Get = Annotated[int | None, _opt("... Y units of the free product are added free.", "--get", metavar="Y")]
FreeSku = Annotated[str | None, _opt("The free product (default: the one --sku).", "--free-sku", metavar="SKU")]
Gift = Annotated[str | None, _opt("Kind: add this gift product (with --min-amount: over a threshold).",
                                  "--gift", metavar="SKU")]
GiftQty = Annotated[int | None, _opt("Units of the gift (default 1).", "--gift-qty", metavar="N")]
Skus = Annotated[list[str] | None, _opt("Qualifying product (repeat); none and no --category: every line.",
                                        "--sku")]
Categories = Annotated[list[str] | None, _opt("Qualifying category (repeat).", "--category")]
Channels = Annotated[list[str] | None, _opt("Only orders of this channel (repeat).", "--channel")]
Segments = Annotated[list[str] | None, _opt("Only customers of this segment (repeat).", "--segment")]
MinQty = Annotated[str | None, _opt("At least N units across the qualifying lines.", "--min-qty", metavar="N")]
MinAmount = Annotated[str | None, _opt("At least this much across the qualifying lines (line totals).",
                                       "--min-amount", metavar="AMOUNT")]
Starts = Annotated[str | None, _opt("First day it applies (by order date).", "--from", metavar="DATE")]
Ends = Annotated[str | None, _opt("Last day it applies.", "--to", metavar="DATE")]
Coupon = Annotated[str | None, _opt("Applies only to orders with this coupon code.", "--coupon")]
Limit = Annotated[str | None, _opt("At most N confirmed orders in total.", "--limit", metavar="N")]
PerCustomer = Annotated[str | None, _opt("At most N confirmed orders per customer.", "--per-customer",
                                         metavar="N")]
Priority = Annotated[int | None, _opt("Priority: higher goes first among stackable ones and wins ties "
                                      "(default 0).", "--priority")]
Description = Annotated[str | None, _opt("A note for people.", "--description")]


def _promo_cols(single: bool = False):
    from salescrm.output import Col

    cols = [Col("id", "int"), Col("name"), Col("kind"), Col("summary", label="what"), Col("state"),
            Col("exclusive", "bool"), Col("priority", "int"), Col("starts_on", "date", "from"),
            Col("ends_on", "date", "to"), Col("coupon"), Col("used", "int"), Col("usage_limit", "int", "limit"),
            Col("per_customer_limit", "int", "per customer")]
    if single:
        cols += [Col("targets"), Col("channels"), Col("segments"), Col("min_qty", "int", "min qty"),
                 Col("min_amount", "money", "min amount"), Col("percent", "percent"),
                 Col("amount", "money"), Col("buy_qty", "int", "buy"), Col("get_qty", "int", "get"),
                 Col("get_sku", label="free/gift SKU"), Col("repeat", "bool"), Col("active", "bool"),
                 Col("description"), Col("ended_at", "datetime", "ended"), Col("created_at", "datetime", "created")]
    return cols


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A unique name, e.g. SPRING10.", show_default=False)],
    *,
    percent: Percent = None,
    amount_off: AmountOff = None,
    fixed_price: FixedPrice = None,
    buy: Buy = None,
    get: Get = None,
    free_sku: FreeSku = None,
    once: Annotated[bool, typer.Option("--once", help="Buy X get Y free only once per order (default: "
                                       "every X).")] = False,
    gift: Gift = None,
    gift_qty: GiftQty = None,
    sku: Skus = None,
    category: Categories = None,
    channel: Channels = None,
    segment: Segments = None,
    min_qty: MinQty = None,
    min_amount: MinAmount = None,
    starts: Starts = None,
    ends: Ends = None,
    coupon: Coupon = None,
    limit: Limit = None,
    per_customer: PerCustomer = None,
    stackable: Annotated[bool, typer.Option("--stackable/--exclusive", help="Stackable promotions apply on "
                                            "top of others; exclusive ones (the default) compete.")] = False,
    priority: Priority = None,
    inactive: Annotated[bool, typer.Option("--inactive", help="Create it switched off.")] = False,
    description: Description = None,
) -> None:
    """Add a promotion; prints its id on stderr."""
    from salescrm import db, promotions

    with open_db() as conn, db.write_tx(conn):
        pid = promotions.add(conn, name=name, description=description, percent=percent, amount_off=amount_off,
                             fixed_price=fixed_price, buy=buy, get=get, free_sku=free_sku, once=once, gift=gift,
                             gift_qty=gift_qty, skus=sku or (), categories=category or (), channels=channel,
                             segments=segment, min_qty=min_qty, min_amount=min_amount, starts=starts, ends=ends,
                             coupon=coupon, usage_limit=limit, per_customer_limit=per_customer,
                             exclusive=not stackable, priority=priority or 0, active=not inactive)
        p = promotions.get(conn, pid)
    say(f"added promotion {pid}: {p['name']}, {p['summary']} ({'exclusive' if p['exclusive'] else 'stackable'})")


@app.command("edit")
def edit(
    promo: PromoArg,
    *,
    name: Annotated[str | None, _opt("New name.", "--name")] = None,
    percent: Percent = None,
    amount_off: AmountOff = None,
    fixed_price: FixedPrice = None,
    buy: Buy = None,
    get: Get = None,
    free_sku: FreeSku = None,
    every: Annotated[bool | None, typer.Option("--every/--once", help="Buy X get Y free: every X, or once.",
                                               show_default=False)] = None,
    gift: Gift = None,
    gift_qty: GiftQty = None,
    sku: Skus = None,
    category: Categories = None,
    channel: Channels = None,
    segment: Segments = None,
    min_qty: MinQty = None,
    min_amount: MinAmount = None,
    starts: Starts = None,
    ends: Ends = None,
    coupon: Coupon = None,
    limit: Limit = None,
    per_customer: PerCustomer = None,
    stackable: Annotated[bool | None, typer.Option("--stackable/--exclusive", help="Stack on top of others, or "
                                                   "compete.", show_default=False)] = None,
    priority: Priority = None,
    active: Annotated[bool | None, typer.Option("--active/--inactive", help="Switch on or off.",
                                                show_default=False)] = None,
    description: Description = None,
) -> None:
    """Change a promotion.  A kind option replaces the kind; --sku/--category
    replace the targets; "" clears an optional condition.  Drafts are
    repriced when next edited (or with 'promo apply ORDER')."""
    from salescrm import db, promotions

    changes: dict[str, Any] = dict(name=name, description=description, channels=channel, segments=segment,
                                   min_qty=min_qty, min_amount=min_amount, starts=starts, ends=ends, coupon=coupon,
                                   usage_limit=limit, per_customer_limit=per_customer,
                                   exclusive=None if stackable is None else not stackable, priority=priority,
                                   active=active, skus=sku, categories=category)
    kind = dict(percent=percent, amount_off=amount_off, fixed_price=fixed_price, buy=buy, get=get,
                free_sku=free_sku, gift=gift, gift_qty=gift_qty)
    if any(v is not None for v in kind.values()):
        changes.update(kind, once=(every is False))
    elif every is not None:
        changes["repeat"] = every
    with open_db() as conn, db.write_tx(conn):
        p = promotions.edit(conn, promo, **changes)
    say(f"updated promotion {p['id']}: {p['name']}, {p['summary']}")


@app.command("list")
def list_(
    *,
    all_: Annotated[bool, typer.Option("--all", help="Also inactive, ended, expired and used-up ones.")] = False,
    fmt: FormatOpt = None,
) -> None:
    """Promotions that are active or scheduled (--all: every one), by priority."""
    from salescrm import promotions
    from salescrm.output import render

    with open_db(write=False) as conn:
        rows = promotions.list_promotions(conn, include_all=all_)
    render(rows, _promo_cols(), out(fmt), empty="no promotions" + ("" if all_ else " active (--all shows every one)"))


@app.command("show")
def show(promo: PromoArg, *, fmt: FormatOpt = None) -> None:
    """A promotion, its conditions and the orders that used it."""
    from salescrm import promotions
    from salescrm.output import Col, Section, render_record

    with open_db(write=False) as conn:
        p = promotions.get(conn, promo)
        p["used"] = promotions.usage_count(conn, p["id"])
        p["state"] = promotions.state(p, p["used"])
        usage = [dict(r) for r in conn.execute(
            "SELECT o.number, o.order_date, o.customer_id, u.saving_cents AS saving, u.used_at, u.released_at"
            " FROM promotion_usage u JOIN orders o ON o.id = u.order_id WHERE u.promotion_id = ? ORDER BY u.id",
            (p["id"],))]
    p["targets"] = ", ".join([*p["skus"], *p["categories"]]) or "every line"
    p["amount"] = p["amount_cents"]
    render_record(p, _promo_cols(single=True), out(fmt), title=f"Promotion {p['id']}: {p['name']}", sections=[
        Section("usage", [Col("number", label="order"), Col("order_date", "date", "date"),
                          Col("customer_id", "int", "customer"), Col("saving", "money"),
                          Col("used_at", "datetime", "counted"), Col("released_at", "datetime", "released")],
                usage, title="Orders", empty="not used yet")])


@app.command("end")
def end(promo: PromoArg) -> None:
    """End a promotion now (confirmed orders keep it)."""
    from salescrm import db, promotions

    with open_db() as conn, db.write_tx(conn):
        p = promotions.end(conn, promo)
    say(f"ended promotion {p['id']}: {p['name']}")


def _render_outcome(outcome, fmt, title: str) -> None:
    from salescrm import money
    from salescrm.output import Col, render

    rows = []
    for c in outcome.candidates:
        rows.append({"promotion": c.name, "kind": c.promo["kind"], "what": c.promo["summary"],
                     "exclusive": c.promo["exclusive"], "priority": c.promo["priority"], "applied": c.applied,
                     "saving": c.saving if c.applied else None, "free_qty": c.free_qty if c.applied and c.free_qty else None,
                     "reason": c.reason, "hint": c.hint})
    lines_total = sum(ln.total for ln in outcome.basket.lines)
    discounts = sum(c.saving for c in outcome.applied if c.promo["kind"] not in ("free_items", "gift"))
    free = sum(c.saving for c in outcome.applied if c.promo["kind"] in ("free_items", "gift"))
    summary = [f"lines {money.fmt_human(lines_total)}, promotion discounts {money.fmt_human(discounts)},"
               f" after discounts {money.fmt_human(lines_total - discounts)}"
               + (f"; free items worth {money.fmt_human(free)}" if free else "")]
    summary += outcome.hints
    render(rows, [Col("promotion"), Col("kind"), Col("what"), Col("exclusive", "bool"), Col("priority", "int"),
                  Col("applied", "bool"), Col("saving", "money"), Col("free_qty", "int", "free"), Col("reason"),
                  Col("hint")], out(fmt), title=title, summary=summary, empty="no promotions defined")


@app.command("explain")
def explain(
    order: Annotated[str | None, typer.Argument(metavar="[ORDER]", help="An order (number or id); or describe "
                                                "one with --line.", show_default=False)] = None,
    *,
    line: Annotated[list[str] | None, _opt("A line SKU:QTY[@PRICE][-DISC] (repeat).", "--line", "-l",
                                           metavar="SKU:QTY")] = None,
    customer: Annotated[str | None, _opt("Customer id or e-mail (segment, per-customer limits).", "--customer",
                                         "-c", metavar="ID|EMAIL")] = None,
    channel: Annotated[str | None, _opt("Sales channel (default the first one).", "--channel")] = None,
    coupon: Coupon = None,
    date: Annotated[str | None, _opt("Order date (default today).", "--date", metavar="DATE")] = None,
    fmt: FormatOpt = None,
) -> None:
    """Every candidate promotion for an order (or for the --line items given),
    with why it applied or not, the saving, and what would unlock more.
    Promotions that ended more than 30 days before the order date are left out."""
    from salescrm import promotions

    with open_db(write=False) as conn:
        if order is not None:
            if line or customer or channel or coupon or date:
                from salescrm.errors import ValidationError

                raise ValidationError("give an ORDER or --line ... options, not both")
            outcome = promotions.explain(conn, order)
            title = f"Promotions for {order.strip()}"
        else:
            outcome = promotions.explain(conn, lines=line or [], customer=customer, channel=channel,
                                         coupon=coupon, day=date)
            title = "Promotions for these lines"
    _render_outcome(outcome, fmt, title)


@app.command("apply")
def apply(order: OrderArg, *, fmt: FormatOpt = None) -> None:
    """Reprice a draft order's promotions now, after promotions were added or changed."""
    from salescrm import db, promotions
    from salescrm.errors import IllegalTransition

    with open_db() as conn, db.write_tx(conn):
        result = promotions.apply_to_order(conn, order)
        if result is None:
            from salescrm import orders

            o = orders.get(conn, order)
            raise IllegalTransition(f"cannot reprice {o['number']}: it is {o['status']}",
                                    "only draft orders are repriced")
    _render_outcome(result, fmt, f"Promotions for {order.strip()}")
    say(f"repriced {order.strip()}: {len(result.applied)} promotion{'s' if len(result.applied) != 1 else ''} applied")


@app.command("coupon")
def coupon_(
    order: OrderArg,
    code: Annotated[str, typer.Argument(metavar="CODE", help="The coupon code; \"\" removes it.",
                                        show_default=False)],
) -> None:
    """Enter a coupon code on a draft order (and reprice its promotions)."""
    from salescrm import db, money, promotions

    with open_db() as conn, db.write_tx(conn):
        result = promotions.set_coupon(conn, order, code)
    names = ", ".join(c.name for c in result.applied) if result and result.applied else "none"
    say(f"{'coupon ' + code.strip() if code.strip() else 'coupon removed'} on {order.strip()}; promotions: {names}"
        f" (saving {money.fmt_human(result.saving if result else 0)})")


@app.command("report")
def report(
    *,
    date_from: Annotated[str | None, _opt("Orders dated on or after DATE.", "--from", metavar="DATE")] = None,
    date_to: Annotated[str | None, _opt("Orders dated on or before DATE.", "--to", metavar="DATE")] = None,
    fmt: FormatOpt = None,
) -> None:
    """Effectiveness per promotion: orders that used it (confirmed, not
    cancelled), their revenue (totals after returns) and the discount given
    (free items at list value)."""
    from salescrm import promotions
    from salescrm.output import Col, render

    with open_db(write=False) as conn:
        rows = promotions.effectiveness(conn, date_from=date_from, date_to=date_to)
    totals = {"name": "total", **{k: sum(r[k] for r in rows) for k in ("orders", "revenue", "discount")}}
    render(rows, [Col("name", label="promotion"), Col("kind"), Col("orders", "int"), Col("revenue", "money"),
                  Col("discount", "money"), Col("discount_pct", "percent", "discount % of gross")], out(fmt),
           totals=totals, empty="no promotions")


@app.command("margin")
def margin(
    percent: Annotated[str | None, typer.Argument(metavar="[PERCENT]", help="Set it, e.g. 10%; omit to show it.",
                                                  show_default=False)] = None,
) -> None:
    """Show or set the minimum margin promotions leave on every paid line
    (a margin on the price, like 'product price --margin'; default 0%: cost)."""
    from salescrm import db, products, promotions

    if percent is None:
        with open_db(write=False) as conn:
            print(f"{products.rate_text(promotions.min_margin(conn))}%")
        return
    with open_db() as conn, db.write_tx(conn):
        pct = promotions.set_min_margin(conn, percent)
    say(f"promotions now keep every line at cost + a {products.rate_text(pct)}% margin or more")
