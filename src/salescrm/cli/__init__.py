"""The command line: parsing and rendering only; the work is done by the
plain modules in ``salescrm``.  Heavy modules (Rich tables, tabulate,
sqlite-utils) are imported inside the commands that need them, and each
group's module only when that group is run (``salescrm.cli.lazy``): the
tables below hold what root help lists."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from salescrm import __version__
from salescrm.cli.common import STATE, SalesGroup
from salescrm.cli.lazy import LazyCommand, LazyGroup, LazyTyper, pruned

HELP = """salescrm: a terminal CRM for sales work over one local SQLite file.

The database is --db PATH, else $SALESCRM_DB, else salescrm.db in your user
data directory.  Every listing takes --format table|csv|tsv|json|jsonl|markdown
(a table on a terminal, CSV when piped).

Exit codes: 0 ok; 1 refused (validation, not found, conflict, illegal
transition, business rule); 2 usage; 65 invalid data in an input file;
66 input file missing; 74 I/O error; 75 busy, try again; 78 database refused
(not a salescrm database, newer schema); 130 interrupted.
"""

#: Root commands, in help order: name, module, function, one-line help.
COMMANDS = [
    LazyCommand("demo", "salescrm.cli.demo", "demo",
                "Build a demo database with realistic data and show what salescrm can do."),
    LazyCommand("audit", "salescrm.cli.auditcmd", "audit",
                "The append-only audit trail of every write (ids only, no personal data)."),
    LazyCommand("dashboard", "salescrm.cli.report", "dashboard",
                "Today on one screen: revenue this month (vs plan), open orders, overdue receivables, "
                "low stock, top customers, 12 months of revenue."),
]

#: Command groups, in help order: name, module (its ``app`` unless named),
#: one-line help.
GROUPS = [
    LazyGroup("customer", "salescrm.cli.customer",
              help="Customers: profiles, contacts, tags, interactions, ratings, clean-up, sampling.",
              extend=(("salescrm.cli.privacy", "register"),)),  # customer forget, customer export
    LazyGroup("db", "salescrm.cli.dbcmd", help="The database file: info, check, backup."),
    LazyGroup("product", "salescrm.cli.product", help="Products: the catalogue of goods and services.",
              extend=(("salescrm.cli.market", "register_price"),)),  # product price
    LazyGroup("stock", "salescrm.cli.stock",
              help="Stock: goods in, corrections, levels and the movement ledger."),
    LazyGroup("order", "salescrm.cli.order",
              help="Orders: create, confirm, ship, deliver, pay, return; quotes and invoices."),
    LazyGroup("settings", "salescrm.cli.settings",
              help="Settings: seller details, payment terms, tax mode, discount limit, channels."),
    LazyGroup("agenda", "salescrm.cli.customer", "agenda_app",
              help="Follow-up tasks due or overdue, oldest first; 'agenda done TASK' marks one done."),
    LazyGroup("import", "salescrm.cli.io", "import_app",
              help="Import customers, products, orders or payments from CSV, TSV, JSON or JSON lines: "
                   "all or nothing, idempotent."),
    LazyGroup("export", "salescrm.cli.io", "export_app",
              help="Export customers, products, orders, order lines or payments as CSV, TSV, JSON or "
                   "JSON lines."),
    LazyGroup("hook", "salescrm.cli.io", "hook_app",
              help="Commands run after changes commit (order.paid, import.finished, ...)."),
    LazyGroup("plan", "salescrm.cli.plan", short_help="Sales plans: targets, attainment, run-rate, budget."),
    LazyGroup("market", "salescrm.cli.market", short_help="Competitors' prices and where ours stands."),
    LazyGroup("promo", "salescrm.cli.promo",
              short_help="Promotions, their precedence, explain and effectiveness."),
    LazyGroup("report", "salescrm.cli.report", help_attr="REPORT_HELP",
              short_help="Reports: sales, customers, orders, inventory, plans, stats, forecast, reorder, "
                         "next customers."),
]

app = LazyTyper(
    groups=GROUPS,
    commands=COMMANDS,
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
        from salescrm.cli.report import dashboard

        dashboard()


def main() -> None:
    import sys

    typer.main.get_command(pruned(app, sys.argv[1:])).main(prog_name="salescrm")
