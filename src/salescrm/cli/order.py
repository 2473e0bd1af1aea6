"""``salescrm order ...``: parsing and rendering only; the work is done in
``salescrm.orders`` (and every state change is decided by
``salescrm.lifecycle``).  Each command's writes are one transaction."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from salescrm.cli.common import FormatOpt, open_db, out, say

app = typer.Typer(no_args_is_help=True)


def _opt(help: str, *names: str, metavar: str | None = None):
    return typer.Option(*names, help=help, show_default=False, metavar=metavar)


OrderArg = Annotated[str, typer.Argument(metavar="ORDER", help="Order number (SO-000123, so-123) or id.",
                                         show_default=False)]
LineHelp = ("A line SKU:QTY[@PRICE][-DISCOUNT], e.g. GT-250:3, MUG-01:1@12.00-10% or MUG-01:2-1.50 "
            "(an amount off the line); repeat for several.  The price defaults to the list price.")
Lines = Annotated[list[str] | None, _opt(LineHelp, "--line", "-l", metavar="SKU:QTY[@PRICE][-DISC]")]
Channel = Annotated[str | None, _opt("Sales channel (see 'settings show channels').", "--channel")]
Salesperson = Annotated[str | None, _opt("Salesperson.", "--salesperson")]
OrderDate = Annotated[str | None, _opt("Order date (YYYY-MM-DD, today, -3d; default today).", "--date",
                                       metavar="DATE")]
Discount = Annotated[str | None, _opt("Order discount: a percent of the lines (5%) or an amount (10.00); "
                                      "0 removes it.", "--discount", metavar="PCT%|AMOUNT")]
Shipping = Annotated[str | None, _opt("Shipping charge, e.g. 6.50 (not taxed).", "--shipping", metavar="AMOUNT")]
Note = Annotated[str | None, _opt("Notes printed on documents.", "--note", "--notes")]
Currency = Annotated[str | None, _opt("Currency (ISO code; default the currency setting).", "--currency")]
Coupon = Annotated[str | None, _opt("A coupon code, as 'promo coupon' enters it; an unknown code refuses the "
                                    "order (nothing is created).", "--coupon", metavar="CODE")]
At = Annotated[str | None, _opt("When (ISO date or date-time; default now).", "--at", metavar="TIME")]


def _money(value: str | None, field: str) -> int | None:
    from salescrm import money

    return None if value is None else money.parse_money(value, field=field)


def _fmt_name(fmt) -> str:
    from salescrm.output import resolve_format

    return resolve_format(fmt.value if fmt else None)


def _plain_keys(d: dict) -> dict:
    """Output keys without the storage suffix: money is written as decimals."""
    return {k.removesuffix("_cents"): v for k, v in d.items()}


def _summary(o: dict) -> str:
    from salescrm import money

    text = f"{o['number']} {o['status']}, total {money.fmt_human(o['net_total_cents'])} {o['currency']}"
    if o["status"] not in ("draft", "cancelled"):
        text += f", paid {money.fmt_human(o['paid_cents'])}, balance {money.fmt_human(o['balance_cents'])}"
    return text


# --------------------------------------------------------------------------- create and edit


@app.command("create")
def create(
    *,
    customer: Annotated[str, typer.Option("--customer", "-c", help="Customer id or e-mail.", metavar="ID|EMAIL",
                                          show_default=False)],
    line: Lines = None,
    channel: Channel = None,
    salesperson: Salesperson = None,
    date: OrderDate = None,
    discount: Discount = None,
    shipping: Shipping = None,
    note: Note = None,
    currency: Currency = None,
    coupon: Coupon = None,
) -> None:
    """Create a draft order; prints its number on stdout."""
    from salescrm import db, orders

    specs = [orders.parse_line(s) for s in line or []]
    ship_cents = _money(shipping, "shipping") or 0
    with open_db() as conn, db.write_tx(conn):
        ref = orders.create(conn, customer=customer, lines=specs, channel=channel, salesperson=salesperson,
                            order_date=date, discount=discount, shipping=ship_cents, notes=note, currency=currency,
                            coupon=coupon)
        o = orders.get(conn, ref.id)
    print(ref.number)
    with_coupon = f", coupon {coupon.strip()}" if coupon and coupon.strip() else ""
    say(f"created {_summary(o)} ({len(specs)} line{'s' if len(specs) != 1 else ''}{with_coupon})")


@app.command("add-line")
def add_line(
    order: OrderArg,
    lines: Annotated[list[str], typer.Argument(metavar="SKU:QTY[@PRICE][-DISC]...", help=LineHelp,
                                               show_default=False)],
) -> None:
    """Add lines to a draft order."""
    from salescrm import db, orders

    specs = [orders.parse_line(s) for s in lines]
    with open_db() as conn, db.write_tx(conn):
        for spec in specs:
            orders.add_line(conn, order, spec)
        o = orders.get(conn, order)
    say(f"added {len(specs)} line{'s' if len(specs) != 1 else ''}: {_summary(o)}")


@app.command("remove-line")
def remove_line(
    order: OrderArg,
    line: Annotated[str, typer.Argument(metavar="LINE|SKU", help="Line number (see 'order show') or SKU.",
                                        show_default=False)],
) -> None:
    """Remove a line from a draft order."""
    from salescrm import db, orders

    with open_db() as conn, db.write_tx(conn):
        n = orders.remove_line(conn, order, line)
        o = orders.get(conn, order)
    say(f"removed line {n}: {_summary(o)}")


@app.command("edit")
def edit(
    order: OrderArg,
    *,
    customer: Annotated[str | None, _opt("Customer id or e-mail.", "--customer", "-c", metavar="ID|EMAIL")] = None,
    channel: Channel = None,
    salesperson: Salesperson = None,
    date: OrderDate = None,
    discount: Discount = None,
    shipping: Shipping = None,
    note: Note = None,
    currency: Currency = None,
) -> None:
    """Change a draft order's header, discount or shipping (lines: add-line, remove-line)."""
    from salescrm import db, orders

    ship_cents = _money(shipping, "shipping")
    with open_db() as conn, db.write_tx(conn):
        changed = orders.edit(conn, order, customer=customer, channel=channel, salesperson=salesperson,
                              order_date=date, discount=discount, shipping=ship_cents, notes=note, currency=currency)
        o = orders.get(conn, order)
    say(f"{'changed ' + ', '.join(changed) if changed else 'nothing changed'}: {_summary(o)}")


# --------------------------------------------------------------------------- the lifecycle


@app.command("confirm")
def confirm(
    order: OrderArg,
    *,
    allow_backorder: Annotated[bool, typer.Option("--allow-backorder",
                                                  help="Confirm even if stock is short (reserve it anyway).")] = False,
    override: Annotated[str | None, _opt("Allow a line discount above the limit or a credit-limit excess, "
                                         "with this reason (recorded).", "--override", metavar="REASON")] = None,
    at: At = None,
) -> None:
    """Confirm a draft: checks the customer's credit limit, the line discount
    limit and archived customers/products, reserves stock (refused on a
    shortage unless --allow-backorder) and sets the due date."""
    from salescrm import db, orders

    with open_db() as conn, db.write_tx(conn):
        r = orders.confirm(conn, order, allow_backorder=allow_backorder, override=override, at=at)
        o = orders.get(conn, order)
    say(f"confirmed {_summary(o)}; reserved {r['reserved']:,} units; due {r['due_date']}")
    if r["backorder"]:
        say("backorder: " + "; ".join(r["backorder"]))


@app.command("ship")
def ship(
    order: OrderArg,
    *,
    line: Annotated[list[str] | None, _opt("Ship only SKU:QTY (repeat); default everything left.", "--line", "-l",
                                           metavar="SKU:QTY")] = None,
    carrier: Annotated[str | None, _opt("Carrier, e.g. DHL.", "--carrier")] = None,
    tracking: Annotated[str | None, _opt("Tracking number.", "--tracking")] = None,
    at: At = None,
) -> None:
    """Record a shipment: everything left to ship, or the given lines."""
    from salescrm import db, orders

    wanted = [orders.parse_ship_line(s) for s in line] if line else None
    with open_db() as conn, db.write_tx(conn):
        r = orders.ship(conn, order, lines=wanted, carrier=carrier, tracking=tracking, at=at)
        o = orders.get(conn, order)
    left = f"; {r['remaining']:,} units still to ship" if r["remaining"] else ""
    say(f"shipment {r['shipment']}: {_summary(o)}{left}")


@app.command("deliver")
def deliver(order: OrderArg, *, at: At = None) -> None:
    """Mark the order's shipments delivered (closes it if it is fully paid)."""
    from salescrm import db, orders

    with open_db() as conn, db.write_tx(conn):
        orders.deliver(conn, order, at=at)
        o = orders.get(conn, order)
    say(f"delivered: {_summary(o)}")


@app.command("cancel")
def cancel(order: OrderArg, *, reason: Annotated[str | None, _opt("Why (recorded).", "--reason")] = None) -> None:
    """Cancel a draft or confirmed order (nothing shipped yet); releases its reservations."""
    from salescrm import db, orders

    with open_db() as conn, db.write_tx(conn):
        r = orders.cancel(conn, order, reason=reason)
    say(f"cancelled {r['number']}; released {r['released']:,} units")


@app.command("return")
def return_(
    order: OrderArg,
    *,
    line: Annotated[list[str], typer.Option("--line", "-l", help="Returned SKU:QTY (repeat for several).",
                                            metavar="SKU:QTY", show_default=False)],
    refund: Annotated[bool, typer.Option("--refund", help="Record the refund of what was paid beyond the new "
                                         "total (needed when the customer has overpaid after the return).")] = False,
    method: Annotated[str | None, _opt("Refund method (default: that of the last payment).", "--method")] = None,
    reason: Annotated[str | None, _opt("Why it came back.", "--reason")] = None,
    at: At = None,
) -> None:
    """Take back shipped units: restocks goods and credits the order."""
    from salescrm import db, money, orders

    wanted = [orders.parse_ship_line(s) for s in line]
    with open_db() as conn, db.write_tx(conn):
        r = orders.return_items(conn, order, lines=wanted, refund=refund, method=method, reason=reason, at=at)
        o = orders.get(conn, order)
    refunded = f", refunded {money.fmt_human(r['refunded'])}" if r["refunded"] else ""
    say(f"return {r['return']}: credited {money.fmt_human(r['credited'])}{refunded}; {_summary(o)}")


@app.command("pay")
def pay(
    order: OrderArg,
    *,
    amount: Annotated[str, typer.Option("--amount", "-a", help="Amount paid, e.g. 10.00.", metavar="AMOUNT",
                                        show_default=False)],
    method: Annotated[str, typer.Option("--method", "-m", help="cash, card, transfer, ... (see 'settings show "
                                        "payment_methods').", show_default=False)],
    at: At = None,
    ref: Annotated[str | None, _opt("Reference, e.g. the bank transaction.", "--ref", "--reference")] = None,
) -> None:
    """Record a payment; more than the balance is refused."""
    from salescrm import db, money, orders

    cents = money.parse_money(amount, field="amount")
    with open_db() as conn, db.write_tx(conn):
        r = orders.pay(conn, order, amount=cents, method=method, at=at, reference=ref)
        o = orders.get(conn, order)
    say(f"payment {r['payment']} of {money.fmt_human(cents)}: {_summary(o)} ({o['payment_status']})")


@app.command("refund")
def refund(
    order: OrderArg,
    *,
    amount: Annotated[str, typer.Option("--amount", "-a", help="Amount given back, e.g. 10.00.", metavar="AMOUNT",
                                        show_default=False)],
    method: Annotated[str | None, _opt("Method (default: that of the last payment).", "--method", "-m")] = None,
    at: At = None,
    ref: Annotated[str | None, _opt("Reference.", "--ref", "--reference")] = None,
) -> None:
    """Give money back on an open order (e.g. before cancelling it); for
    returned goods use 'order return --refund'."""
    from salescrm import db, money, orders

    cents = money.parse_money(amount, field="amount")
    with open_db() as conn, db.write_tx(conn):
        r = orders.refund(conn, order, amount=cents, method=method, at=at, reference=ref)
        o = orders.get(conn, order)
    say(f"refund {r['payment']} of {money.fmt_human(cents)}: {_summary(o)}")


# --------------------------------------------------------------------------- reading


def line_cols(fmt_name: str = "json"):
    from salescrm.output import Col

    if fmt_name == "table":
        return [Col("line_no", "int", "#"), Col("sku"), Col("description"), Col("qty", "int"),
                Col("unit_price", "money", "price"), Col("discount", "money", "discount"),
                Col("tax_rate", "percent", "tax %"), Col("total", "money", "total"),
                Col("shipped_qty", "int", "shipped"), Col("returned_qty", "int", "returned")]
    return [Col("line_no", "int", "#"), Col("sku"), Col("description"), Col("qty", "int"),
            Col("unit_price", "money", "price"), Col("discount_pct", "percent", "disc %"),
            Col("discount", "money", "discount"), Col("net", "money", "net"),
            Col("tax_rate", "percent", "tax %"), Col("tax", "money", "tax"),
            Col("total", "money", "total"), Col("shipped_qty", "int", "shipped"),
            Col("returned_qty", "int", "returned")]


def event_cols():
    from salescrm.output import Col

    return [Col("at", "datetime"), Col("os_user", label="user"), Col("kind"), Col("from_status", label="from"),
            Col("to_status", label="to"), Col("detail")]


@app.command("show")
def show(order: OrderArg, *, fmt: FormatOpt = None) -> None:
    """Header, lines, totals, payments, shipments, returns and history."""
    from salescrm import orders
    from salescrm.output import Col, Section, render_record

    with open_db(write=False) as conn:
        o = orders.get(conn, order)
        ls = orders.lines(conn, o["id"])
        adj = orders.adjustments(conn, o["id"])
        pays = orders.payments(conn, o["id"])
        ships = orders.shipments(conn, o["id"])
        rets = orders.returns(conn, o["id"])
        hist = orders.history(conn, o["id"])
    o["prices"] = "incl. tax" if o["tax_inclusive"] else "excl. tax"
    o["total_after_returns"] = o["net_total_cents"]
    o = _plain_keys(o)
    ls, adj, pays, rets = ([_plain_keys(r) for r in rows] for rows in (ls, adj, pays, rets))
    cols = [Col("number"), Col("status"), Col("customer_id", "int", "customer id"), Col("customer"),
            Col("channel"), Col("salesperson"), Col("order_date", "date", "date"), Col("currency"),
            Col("prices"), Col("gross", "money", "gross"), Col("discount", "money", "line discounts"),
            Col("subtotal", "money", "subtotal (net)"), Col("tax", "money", "tax"),
            Col("adjustment", "money", "order adjustments"), Col("shipping", "money", "shipping"),
            Col("total", "money", "total"), Col("returned", "money", "returned"),
            Col("total_after_returns", "money", "total after returns"), Col("paid", "money", "paid"),
            Col("balance", "money", "balance"), Col("payment_status", label="payment"),
            Col("due_date", "date", "due"), Col("overdue", "bool"), Col("invoice_number", label="invoice"),
            Col("confirmed_at", "datetime", "confirmed"), Col("shipped_at", "datetime", "shipped"),
            Col("delivered_at", "datetime", "delivered"), Col("closed_at", "datetime", "closed"),
            Col("cancelled_at", "datetime", "cancelled"), Col("notes")]
    sections = [
        Section("lines", line_cols(_fmt_name(fmt)), ls, title="Lines", empty="no lines yet"),
        Section("adjustments", [Col("kind"), Col("description"), Col("amount", "money", "amount")], adj,
                title="Order adjustments"),
        Section("payments", [Col("id", "int"), Col("paid_at", "datetime", "at"), Col("kind"),
                             Col("amount", "money", "amount"), Col("method"), Col("reference")], pays,
                title="Payments"),
        Section("shipments", [Col("id", "int"), Col("shipped_at", "datetime", "shipped"), Col("lines"),
                              Col("carrier"), Col("tracking"), Col("delivered_at", "datetime", "delivered")], ships,
                title="Shipments"),
        Section("returns", [Col("id", "int"), Col("returned_at", "datetime", "at"), Col("lines"),
                            Col("amount", "money", "credited"), Col("reason")], rets, title="Returns"),
        Section("history", event_cols(), hist, title="History"),
    ]
    render_record(o, cols, out(fmt), title=f"Order {o['number']}", sections=sections)


@app.command("list")
def list_(
    *,
    status: Annotated[str | None, _opt("Only these states, comma-separated: draft, confirmed, partially_shipped, "
                                       "shipped, delivered, closed, cancelled; or open / booked.", "--status",
                                       metavar="STATUS[,...]")] = None,
    customer: Annotated[str | None, _opt("Only this customer (id or e-mail).", "--customer", "-c",
                                         metavar="ID|EMAIL")] = None,
    channel: Annotated[str | None, _opt("Only these channels (comma-separated).", "--channel")] = None,
    salesperson: Salesperson = None,
    date_from: Annotated[str | None, _opt("Ordered on or after DATE.", "--from", metavar="DATE")] = None,
    date_to: Annotated[str | None, _opt("Ordered on or before DATE.", "--to", metavar="DATE")] = None,
    unpaid: Annotated[bool, typer.Option("--unpaid", help="Only booked orders with a balance to pay.")] = False,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only unpaid orders past their due date.")] = False,
    search: Annotated[str | None, _opt("Text in the order number.", "--search", "-s", metavar="TEXT")] = None,
    sort: Annotated[str | None, _opt("Sort by date, number, status, customer, channel, salesperson, total, paid, "
                                     "balance, due; '-' for descending (default -date).", "--sort")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=0, help="At most N orders (0: all).")] = 100,
    totals: Annotated[bool, typer.Option("--totals", help="Add the totals row in csv/tsv/json output too.")] = False,
    fmt: FormatOpt = None,
) -> None:
    """List orders, newest first, with a totals row under the table."""
    from salescrm import orders
    from salescrm.output import Col, render

    filters = dict(status=status, customer=customer, channel=channel, salesperson=salesperson,
                   date_from=date_from, date_to=date_to, unpaid=unpaid, overdue=overdue, search=search)
    with open_db(write=False) as conn:
        rows = list(orders.list_orders(conn, **filters, sort=sort, limit=(limit + 1) if limit else None))
        more = bool(limit) and len(rows) > limit
        if more:
            rows = rows[:limit]
        matching = orders.count_orders(conn, **filters) if more and _fmt_name(fmt) == "table" else None
    rows = [_plain_keys(r) for r in rows]
    if _fmt_name(fmt) in ("table", "markdown"):
        for r in rows:  # one word for people: the payment state, or "overdue"
            r["payment"] = "overdue" if r["overdue"] else r["payment_status"]
        cols = [Col("number"), Col("order_date", "date", "date"), Col("status"), Col("customer"), Col("channel"),
                Col("total", "money"), Col("balance", "money"), Col("payment"), Col("due_date", "date", "due")]
    else:
        cols = [Col("id", "int"), Col("number"), Col("order_date", "date"), Col("status"), Col("customer_id", "int"),
                Col("customer"), Col("channel"), Col("salesperson"), Col("currency"), Col("total", "money"),
                Col("returned", "money"), Col("paid", "money"), Col("balance", "money"), Col("payment_status"), Col("due_date", "date"),
                Col("overdue", "bool")]
    total_row = {"number": "total", **{k: sum(r[k] for r in rows) for k in ("total", "returned", "paid", "balance")}}
    summary = []
    if more:
        summary.append(f"showing {len(rows):,} of {matching:,} matching orders; --limit 0 shows all"
                       if matching is not None else f"showing the first {len(rows):,}; --limit 0 shows all")
    render(rows, cols, out(fmt, totals=totals), totals=total_row, summary=summary, empty="no orders")
    if more and _fmt_name(fmt) != "table":
        say(f"showing the first {len(rows):,} orders; --limit 0 shows all")


@app.command("history")
def history(order: OrderArg, *, fmt: FormatOpt = None) -> None:
    """Every change of the order: state, lines, payments, shipments, returns."""
    from salescrm import orders

    from salescrm.output import render

    with open_db(write=False) as conn:
        o = orders.get(conn, order)
        rows = orders.history(conn, o["id"])
    render(rows, event_cols(), out(fmt), title=f"History of {o['number']}", empty="no events")


# --------------------------------------------------------------------------- documents

Output = Annotated[Path | None, typer.Option("--output", "-o", help="Write to FILE (created 0600) instead of stdout.",
                                             dir_okay=False, show_default=False, metavar="FILE")]
Html = Annotated[bool, typer.Option("--html", help="HTML instead of Markdown.")]
Force = Annotated[bool, typer.Option("--force", help="Overwrite FILE if it exists.")]


def _emit(text: str, output: Path | None, force: bool, what: str) -> None:
    from salescrm import documents

    if output is None or str(output) == "-":
        print(text, end="")
        return
    documents.write(text, output, force=force)
    say(f"wrote {what} to {output}")


@app.command("quote")
def quote(order: OrderArg, *, output: Output = None, html: Html = False, force: Force = False) -> None:
    """A printable quote (Markdown, or HTML with --html): lines, discounts,
    tax, totals, validity and payment terms, the seller's details."""
    from salescrm import documents, orders

    with open_db(write=False) as conn:
        o = orders.get(conn, order)
        doc = documents.build(conn, o["id"], "quote")
    text = documents.html_document(doc) if html else documents.markdown(doc)
    _emit(text, output, force, f"quote {o['number']}")


@app.command("invoice")
def invoice(
    order: OrderArg,
    *,
    output: Output = None,
    html: Html = False,
    force: Force = False,
    date: Annotated[str | None, _opt("Issue date when issuing it now (default today).", "--date",
                                     metavar="DATE")] = None,
) -> None:
    """Issue the order's invoice (once; its number comes from a gap-free
    sequence) and print it; asking again prints the same invoice."""
    from salescrm import db, documents, orders

    to_file = output is not None and str(output) != "-"
    if to_file and output.exists() and not force:
        from salescrm.errors import Conflict

        raise Conflict(f"{output} exists", "use --force to overwrite it")
    with open_db() as conn, db.write_tx(conn):
        inv = orders.issue_invoice(conn, order, at=date)
        doc = documents.build(conn, inv["order_id"], "invoice", invoice=inv)
        text = documents.html_document(doc) if html else documents.markdown(doc)
        if to_file:  # inside the transaction: a failed write leaves the invoice unissued
            _emit(text, output, force, f"invoice {inv['number']}")
    if inv["new"]:
        say(f"issued invoice {inv['number']} for {doc.order_number}")
    if not to_file:
        _emit(text, None, force, f"invoice {inv['number']}")
