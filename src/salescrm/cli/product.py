"""``salescrm product ...``: parsing and rendering only; the work is done in
``salescrm.products``."""

from __future__ import annotations

from typing import Annotated

import typer

from salescrm.cli.common import FormatOpt, open_db, out, say

app = typer.Typer(no_args_is_help=True)


def _opt(help: str, *names: str, metavar: str | None = None):
    return typer.Option(*names, help=help, show_default=False, metavar=metavar)


SkuArg = Annotated[str, typer.Argument(metavar="SKU", help="Product SKU (any case).", show_default=False)]
Category = Annotated[str | None, _opt("Category, e.g. tea.", "--category")]
Cost = Annotated[str | None, _opt("Unit cost, e.g. 3.20.", "--cost", metavar="AMOUNT")]
Price = Annotated[str | None, _opt("List price per unit, e.g. 5.90 (tax-exclusive or -inclusive as the "
                                   "tax_inclusive setting says).", "--price", metavar="AMOUNT")]
TaxRate = Annotated[str | None, _opt("Tax rate in percent, e.g. 13 or 7.5 (default: the default_tax_rate "
                                     "setting).", "--tax-rate", metavar="PERCENT")]
Kind = Annotated[str | None, _opt("goods (stocked) or service (no stock).", "--kind")]
Unit = Annotated[str | None, _opt("Unit of sale, e.g. pcs, box, h (default pcs).", "--unit")]
Reorder = Annotated[str | None, _opt("Reorder level: --low-stock lists the product when available "
                                     "stock is at or below it.", "--reorder-level", metavar="QTY")]


def cols(fmt_name: str):
    from salescrm.output import Col

    base = [Col("sku"), Col("name"), Col("category"), Col("kind"), Col("unit"),
            Col("unit_cost", "money", "cost"), Col("list_price", "money", "price"),
            Col("tax_rate", "percent", "tax %"), Col("on_hand", "int"), Col("reserved", "int"),
            Col("available", "int"), Col("reorder_level", "int", "reorder at")]
    if fmt_name not in ("table", "markdown"):
        base = [Col("id", "int"), *base, Col("active", "bool"), Col("created_at", "datetime"),
                Col("updated_at", "datetime")]
    return base


def _fmt_name(fmt) -> str:
    from salescrm.output import resolve_format

    return resolve_format(fmt.value if fmt else None)


def _money(value: str | None, field: str) -> int | None:
    from salescrm import money

    return None if value is None else money.parse_money(value, field=field)


def _level(value: str | None) -> int | None:
    from salescrm.errors import ValidationError

    if value is None:
        return None
    v = value.strip()
    if not v.isdigit():
        raise ValidationError(f"reorder level must be a whole number, zero or more, not {value!r}")
    return int(v)


@app.command("add")
def add(
    sku: SkuArg,
    name: Annotated[str, typer.Argument(help="Product name (any script, e.g. 龙井绿茶 250g).", show_default=False)],
    *,
    price: Annotated[str, typer.Option("--price", help="List price per unit, e.g. 5.90.", metavar="AMOUNT",
                                       show_default=False)],
    cost: Cost = None,
    category: Category = None,
    tax_rate: TaxRate = None,
    kind: Annotated[str, typer.Option("--kind", help="goods (stocked) or service (no stock).")] = "goods",
    unit: Unit = None,
    reorder_level: Reorder = None,
) -> None:
    """Add a product to the catalogue."""
    from salescrm import db, products

    with open_db() as conn, db.write_tx(conn):
        products.add(conn, sku=sku, name=name, price=_money(price, "price") or 0, cost=_money(cost, "cost") or 0,
                     category=category, tax_rate=tax_rate, kind=kind, unit=unit,
                     reorder_level=_level(reorder_level) or 0)
    say(f"added product {sku.strip()}")


@app.command("show")
def show(sku: SkuArg, *, movements: Annotated[int, typer.Option("--movements", "-n", min=0,
         help="How many of the latest stock movements to show.")] = 10, fmt: FormatOpt = None) -> None:
    """A product with its stock levels and latest stock movements."""
    from salescrm import products, stock
    from salescrm.output import Section, render_record

    from salescrm.cli.stock import movement_cols

    with open_db(write=False) as conn:
        p = products.get(conn, sku)
        moves = list(stock.movements(conn, sku, limit=movements)) if p["kind"] == "goods" and movements else []
    render_record(p, cols("json"), out(fmt), title=f"{p['sku']}  {p['name']}",
                  sections=[Section("movements", movement_cols(), moves, title="Stock movements (latest first)")])


@app.command("list")
def list_(
    *,
    category: Category = None,
    search: Annotated[str | None, _opt("Text in the SKU or name (any case).", "--search", "-s",
                                       metavar="TEXT")] = None,
    low_stock: Annotated[bool, typer.Option("--low-stock", help="Only goods at or below their reorder level.")] = False,
    kind: Kind = None,
    all_: Annotated[bool, typer.Option("--all", help="Include archived products.")] = False,
    sort: Annotated[str | None, _opt("Sort by sku, name, category, price, cost, on_hand, available, "
                                     "created_at; '-' for descending, commas for several.", "--sort")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=0, help="At most N products (0: all).")] = 0,
    fmt: FormatOpt = None,
) -> None:
    """List products (active ones unless --all)."""
    from salescrm import products
    from salescrm.output import render

    with open_db(write=False) as conn:
        rows = list(products.list_products(conn, category=category, search=search, low_stock=low_stock, kind=kind,
                                           include_archived=all_, sort=sort, limit=limit or None))
    render(rows, cols(_fmt_name(fmt)), out(fmt), empty="no products")


@app.command("edit")
def edit(
    sku: SkuArg,
    *,
    name: Annotated[str | None, _opt("New name.", "--name")] = None,
    new_sku: Annotated[str | None, _opt("New SKU.", "--sku")] = None,
    category: Category = None,
    cost: Cost = None,
    price: Price = None,
    tax_rate: TaxRate = None,
    kind: Kind = None,
    unit: Unit = None,
    reorder_level: Reorder = None,
    active: Annotated[bool | None, typer.Option("--active/--archived", help="Restore or archive.",
                                                show_default=False)] = None,
) -> None:
    """Change a product.  Orders keep the prices they were made with."""
    from salescrm import db, products

    with open_db() as conn, db.write_tx(conn):
        p = products.edit(conn, sku, name=name, sku=new_sku, category=category, cost=_money(cost, "cost"),
                          price=_money(price, "price"), tax_rate=tax_rate, kind=kind, unit=unit,
                          reorder_level=_level(reorder_level), active=active)
    say(f"updated product {p['sku']}")


@app.command("archive")
def archive(sku: SkuArg) -> None:
    """Archive a product: hidden from lists, refused on new orders; its history stays."""
    from salescrm import db, products

    with open_db() as conn, db.write_tx(conn):
        p = products.archive(conn, sku)
    say(f"archived product {p['sku']} (restore with 'product edit {p['sku']} --active')")
