"""``salescrm market ...`` (competitors' prices) and ``salescrm product price``
(pricing strategies and price history): parsing and rendering only; the work
is done in ``salescrm.pricing``."""

from __future__ import annotations

from typing import Annotated

import typer

from salescrm.cli.common import FormatOpt, open_db, out, say

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                  help="Competitors' prices: record what others charge, see where our price stands.")


def _opt(help: str, *names: str, metavar: str | None = None):
    return typer.Option(*names, help=help, show_default=False, metavar=metavar)


SkuArg = Annotated[str, typer.Argument(metavar="SKU", help="Product SKU (any case).", show_default=False)]


@app.command("add")
def add(
    sku: SkuArg,
    *,
    source: Annotated[str, typer.Option("--source", "-s", help="Who charges it: a shop, a website, a competitor.",
                                        show_default=False)],
    price: Annotated[str, typer.Option("--price", help="Their price per unit, e.g. 12.90.", metavar="AMOUNT",
                                       show_default=False)],
    at: Annotated[str | None, _opt("When it was seen (default today).", "--at", metavar="DATE")] = None,
) -> None:
    """Record a competitor's price for a product."""
    from salescrm import db, money, pricing

    cents = money.parse_money(price, field="price")
    with open_db() as conn, db.write_tx(conn):
        pricing.add_market_price(conn, sku, source=source, price=cents, at=at)
        s = pricing.market_summary(conn, sku)
    say(f"recorded {source.strip()} at {money.fmt_human(cents)} for {s['sku']}; ours {money.fmt_human(s['ours'])}:"
        f" {s['position']}")


@app.command("show")
def show(sku: SkuArg, *, fmt: FormatOpt = None) -> None:
    """Competitors' current prices (each source's latest), min, median, max,
    our price and our position (rank 1 is the cheapest)."""
    from salescrm import pricing
    from salescrm.output import Col, Section, render_record

    with open_db(write=False) as conn:
        s = pricing.market_summary(conn, sku)
    for r in s["sources"]:
        r["price"] = r.pop("price_cents")
        r["vs_ours"] = r["price"] - s["ours"]
    for r in s["history"]:
        r["price"] = r.pop("price_cents")
    cols = [Col("sku"), Col("name"), Col("ours", "money", "our price"), Col("cost", "money"),
            Col("count", "int", "sources"), Col("min", "money"), Col("median", "money"), Col("max", "money"),
            Col("rank", "int"), Col("position"), Col("vs_median_pct", "percent", "ours vs median")]
    render_record(s, cols, out(fmt), title=f"Market for {s['sku']}  {s['name']}", sections=[
        Section("sources", [Col("source"), Col("price", "money"), Col("vs_ours", "money", "vs ours"),
                            Col("observed_on", "date", "seen")], s["sources"], title="Current prices",
                empty="no market prices recorded"),
        Section("history", [Col("observed_on", "date", "seen"), Col("source"), Col("price", "money"),
                            Col("os_user", label="by")], s["history"], title="Every observation", empty="none"),
    ])


# --------------------------------------------------------------------------- product price


def price(
    sku: SkuArg,
    *,
    cost_plus: Annotated[str | None, _opt("Price = cost x (1 + P%), e.g. 30% (0-1000%).", "--cost-plus",
                                          metavar="P%")] = None,
    margin: Annotated[str | None, _opt("Price = cost / (1 - M%): a margin of M% on the price, e.g. 25%.",
                                       "--margin", metavar="M%")] = None,
    match_market: Annotated[bool, typer.Option("--match-market", help="The lowest current competitor price "
                                               "(see 'market show').")] = False,
    undercut: Annotated[str | None, _opt("With --match-market: that much below it, e.g. 2%.", "--undercut",
                                         metavar="U%")] = None,
    round_to: Annotated[str | None, _opt("End the price in .99, .95, 9.99, ...: rounded up with --cost-plus and "
                                         "--margin (the markup is kept), down with --match-market (never dearer "
                                         "than the market).", "--round-to", metavar="ENDING")] = None,
    allow_below_cost: Annotated[bool, typer.Option("--allow-below-cost", help="Allow a price below the unit "
                                                   "cost.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n", help="Show the proposal; change nothing.")] = False,
    history: Annotated[bool, typer.Option("--history", help="Show every change of the list price.")] = False,
    fmt: FormatOpt = None,
) -> None:
    """Set the list price by a strategy (--cost-plus, --margin or
    --match-market), or show the price history (--history).  A price below
    cost is refused unless --allow-below-cost."""
    from salescrm import db, money, pricing
    from salescrm.errors import ValidationError
    from salescrm.output import Col, render, render_record

    if history:
        if any(v for v in (cost_plus, margin, match_market, undercut, round_to, allow_below_cost, dry_run)):
            raise ValidationError("--history shows the history; give no strategy with it")
        with open_db(write=False) as conn:
            rows = pricing.history(conn, sku)
        for r in rows:
            r["old"], r["new"] = r.pop("old_price"), r.pop("new_price")
        render(rows, [Col("at", "datetime"), Col("os_user", label="by"), Col("old", "money"), Col("new", "money"),
                      Col("change_pct", "percent", "change"), Col("strategy"), Col("detail")],
               out(fmt), empty="no price history")
        return
    strategy = dict(cost_plus=cost_plus, margin=margin, match_market=match_market, undercut=undercut,
                    round_to=round_to, allow_below_cost=allow_below_cost)
    if dry_run:
        with open_db(write=False) as conn:
            prop = pricing.propose(conn, sku, **strategy)
    else:
        with open_db() as conn, db.write_tx(conn):
            prop = pricing.set_price(conn, sku, **strategy)
    cols = [Col("sku"), Col("cost", "money"), Col("old_price", "money", "current price"),
            Col("new_price", "money", "new price"), Col("change", "money"), Col("margin_pct", "percent", "margin"),
            Col("strategy"), Col("detail"), Col("changed", "bool")]
    prop["changed"] = prop["changed"] and not dry_run
    render_record(prop, cols, out(fmt), title=f"Price of {prop['sku']}")
    move = f"{money.fmt_human(prop['old_price'])} -> {money.fmt_human(prop['new_price'])}"
    if dry_run:
        say(f"dry run: {prop['sku']} would go {move} ({prop['strategy']}); nothing changed")
    elif prop["changed"]:
        say(f"{prop['sku']}: {move} ({prop['strategy']})")
    else:
        say(f"{prop['sku']}: already {money.fmt_human(prop['new_price'])}; nothing changed")


def register_price(product_app: typer.Typer) -> None:
    """Add ``price`` to the product group (called from ``salescrm.cli``)."""
    product_app.command("price")(price)
