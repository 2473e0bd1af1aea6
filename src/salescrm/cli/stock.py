"""``salescrm stock ...``: goods in, corrections, levels and the ledger.
The work is done in ``salescrm.stock``."""

from __future__ import annotations

from typing import Annotated

import typer

from salescrm.cli.common import FormatOpt, open_db, out, say

app = typer.Typer(no_args_is_help=True)

SkuArg = Annotated[str, typer.Argument(metavar="SKU", help="Product SKU (any case).", show_default=False)]


def movement_cols():
    from salescrm.output import Col

    return [Col("id", "int"), Col("at", "datetime"), Col("kind"), Col("qty", "int"), Col("order_number", label="order"),
            Col("reason"), Col("on_hand", "int", "on hand after"), Col("reserved", "int", "reserved after"),
            Col("os_user", label="user")]


def _levels(p: dict) -> str:
    return f"on hand {p['on_hand']:,}, reserved {p['reserved']:,}, available {p['available']:,}"


@app.command("receive", context_settings={"ignore_unknown_options": True})  # a clear error for -5
def receive(
    sku: SkuArg,
    qty: Annotated[str, typer.Argument(metavar="QTY", help="Units received (a whole number).", show_default=False)],
    *,
    note: Annotated[str | None, typer.Option("--note", help="e.g. the purchase order.", show_default=False)] = None,
    at: Annotated[str | None, typer.Option("--at", help="When (ISO date or date-time; default now).",
                                           show_default=False)] = None,
) -> None:
    """Goods in: add QTY units to stock on hand."""
    from salescrm import db, stock, validate

    units = stock.parse_qty(qty)
    when = validate.parse_datetime(at, field="--at") if at else None
    with open_db() as conn, db.write_tx(conn):
        p = stock.receive(conn, sku, units, note=note, at=when)
    say(f"received {units:,} x {p['sku']}: {_levels(p)}")


@app.command("adjust", context_settings={"ignore_unknown_options": True})  # QTY may be -3
def adjust(
    sku: SkuArg,
    qty: Annotated[str, typer.Argument(metavar="QTY", help="Signed change, e.g. -2 (breakage) or 5 (found).",
                                       show_default=False)],
    *,
    reason: Annotated[str, typer.Option("--reason", help="Why (required): stock-take, damage, ...",
                                        show_default=False)],
) -> None:
    """Correct stock on hand by QTY (negative to remove); a reason is required."""
    from salescrm import db, stock

    with open_db() as conn, db.write_tx(conn):
        change = stock.parse_qty(qty, allow_negative=True)
        p = stock.adjust(conn, sku, change, reason=reason)
    say(f"adjusted {p['sku']} by {change:+,}: {_levels(p)}")


@app.command("show")
def show(
    sku: SkuArg,
    *,
    limit: Annotated[int, typer.Option("--limit", "-n", min=0, help="At most N movements (0: all).")] = 50,
    fmt: FormatOpt = None,
) -> None:
    """A product's stock movements, newest first, with the levels after each."""
    from salescrm import products, stock
    from salescrm.output import render

    with open_db(write=False) as conn:
        p = products.get(conn, sku)
        rows = list(stock.movements(conn, sku, limit=limit or None))
    render(rows, movement_cols(), out(fmt), title=f"{p['sku']}: {_levels(p)}", empty="no stock movements")


@app.command("list")
def list_(
    *,
    low: Annotated[bool, typer.Option("--low", "--low-stock", help="Only items at or below their reorder level.")] = False,
    category: Annotated[str | None, typer.Option("--category", help="Only this category.", show_default=False)] = None,
    search: Annotated[str | None, typer.Option("--search", "-s", help="Text in the SKU or name.",
                                               show_default=False)] = None,
    fmt: FormatOpt = None,
) -> None:
    """Stock levels of every stocked product, with its value at cost."""
    from salescrm import products
    from salescrm.output import Col, render

    with open_db(write=False) as conn:
        rows = []
        for p in products.list_products(conn, kind="goods", low_stock=low, category=category, search=search):
            p["value"] = p["on_hand"] * p["unit_cost"]
            p["low"] = p["available"] <= p["reorder_level"]
            rows.append(p)
    cols = [Col("sku"), Col("name"), Col("category"), Col("on_hand", "int"), Col("reserved", "int"),
            Col("available", "int"), Col("reorder_level", "int", "reorder at"), Col("low", "bool"),
            Col("value", "money", "value at cost")]
    totals = {"sku": "total", "on_hand": sum(r["on_hand"] for r in rows),
              "reserved": sum(r["reserved"] for r in rows), "available": sum(r["available"] for r in rows),
              "value": sum(r["value"] for r in rows)}
    render(rows, cols, out(fmt), totals=totals, empty="no stocked products")
