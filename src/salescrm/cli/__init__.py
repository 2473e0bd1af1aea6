"""The command line: parsing and rendering only; the work is done by the
plain modules in ``salescrm``.  Heavy modules (Rich tables, tabulate,
sqlite-utils) are imported inside the commands that need them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from salescrm import __version__
from salescrm.cli import auditcmd, customer, dbcmd, demo
from salescrm.cli import order as ordercli
from salescrm.cli import product as productcli
from salescrm.cli import settings as settingscli
from salescrm.cli import stock as stockcli
from salescrm.cli import io as iocli
from salescrm.cli import market as marketcli
from salescrm.cli import plan as plancli
from salescrm.cli import promo as promocli
from salescrm.cli import privacy as privacycli
from salescrm.cli import report as reportcli
from salescrm.cli.common import STATE, SalesGroup

HELP = """salescrm: a terminal CRM for sales work over one local SQLite file.

The database is --db PATH, else $SALESCRM_DB, else salescrm.db in your user
data directory.  Every listing takes --format table|csv|tsv|json|jsonl|markdown
(a table on a terminal, CSV when piped).

Exit codes: 0 ok; 1 refused (validation, not found, conflict, illegal
transition, business rule); 2 usage; 65 invalid data in an input file;
66 input file missing; 74 I/O error; 75 busy, try again; 78 database refused
(not a salescrm database, newer schema); 130 interrupted.
"""

app = typer.Typer(
    cls=SalesGroup,
    name="salescrm",
    help=HELP,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"salescrm {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    db: Annotated[
        Path | None,
        typer.Option("--db", help="Database file (default: $SALESCRM_DB, else the user data directory).",
                     show_default=False, dir_okay=False),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No messages on stderr, only errors.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show a traceback on errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    STATE.db_path = db
    STATE.quiet = quiet
    STATE.debug = debug
    if ctx.invoked_subcommand is None:
        reportcli.dashboard()


app.add_typer(customer.app, name="customer", help="Customers: profiles, contacts, tags, interactions, ratings, clean-up, sampling.")
app.add_typer(dbcmd.app, name="db", help="The database file: info, check, backup.")
app.add_typer(productcli.app, name="product", help="Products: the catalogue of goods and services.")
app.add_typer(stockcli.app, name="stock", help="Stock: goods in, corrections, levels and the movement ledger.")
app.add_typer(ordercli.app, name="order", help="Orders: create, confirm, ship, deliver, pay, return; quotes and invoices.")
app.add_typer(settingscli.app, name="settings", help="Settings: seller details, payment terms, tax mode, discount limit, channels.")
app.command("demo", help="Build a demo database with realistic data and show what salescrm can do.")(demo.demo)
customer.register_agenda(app)
privacycli.register(customer.app)
app.command("audit", help="The append-only audit trail of every write (ids only, no personal data).")(auditcmd.audit)
app.add_typer(iocli.import_app, name="import", help="Import customers, products, orders or payments from CSV, TSV, JSON or JSON lines: all or nothing, idempotent.")
app.add_typer(iocli.export_app, name="export", help="Export customers, products, orders, order lines or payments as CSV, TSV, JSON or JSON lines.")
app.add_typer(iocli.hook_app, name="hook", help="Commands run after changes commit (order.paid, import.finished, ...).")
marketcli.register_price(productcli.app)
app.add_typer(plancli.app, name="plan", short_help="Sales plans: targets, attainment, run-rate, budget.")
app.add_typer(marketcli.app, name="market", short_help="Competitors' prices and where ours stands.")
app.add_typer(promocli.app, name="promo", short_help="Promotions, their precedence, explain and effectiveness.")
app.add_typer(reportcli.app, name="report", help=reportcli.REPORT_HELP, short_help="Reports: sales, customers, orders, inventory, plans, stats, forecast, reorder, next customers.")
app.command("dashboard", help="Today on one screen: revenue this month (vs plan), open orders, overdue receivables, low stock, top customers, 12 months of revenue.")(reportcli.dashboard)


def main() -> None:
    import sys

    from salescrm.cli.lazy import pruned

    typer.main.get_command(pruned(app, sys.argv[1:])).main(prog_name="salescrm")
