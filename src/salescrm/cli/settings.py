"""``salescrm settings ...``: the seller's details for documents and the
business settings (payment terms, tax mode, discount limit, channels)."""

from __future__ import annotations

from typing import Annotated

import typer

from salescrm.cli.common import FormatOpt, open_db, out, say

app = typer.Typer(no_args_is_help=True)

KeyArg = Annotated[str, typer.Argument(metavar="KEY", help="Setting name, e.g. seller.name or payment_terms_days.",
                                       show_default=False)]


@app.command("show")
def show(key: Annotated[str | None, typer.Argument(metavar="[KEY]", help="Only this setting.",
                                                   show_default=False)] = None,
         *, fmt: FormatOpt = None) -> None:
    """Every setting with its value, default and meaning."""
    from salescrm import settings
    from salescrm.output import Col, render

    with open_db(write=False) as conn:
        rows = settings.all_settings(conn)
        if key is not None:
            settings.get_text(conn, key)  # refuses an unknown key
            rows = [r for r in rows if r["key"] == key]
    render(rows, [Col("key"), Col("value"), Col("default"), Col("is_default", "bool", "default?"), Col("help")],
           out(fmt))


@app.command("set")
def set_(key: KeyArg, value: Annotated[str, typer.Argument(metavar="VALUE", help="The new value.",
                                                           show_default=False)]) -> None:
    """Change a setting, e.g. 'settings set seller.name "Tea & Co"' or
    'settings set channels retail,online,phone,partner,wholesale'."""
    from salescrm import db, settings

    with open_db() as conn, db.write_tx(conn):
        stored = settings.set(conn, key, value)
    say(f"{key} = {stored}")


@app.command("unset")
def unset(key: KeyArg) -> None:
    """Put a setting back to its default."""
    from salescrm import db, settings

    with open_db() as conn, db.write_tx(conn):
        settings.unset(conn, key)
        value = settings.get_text(conn, key)
    say(f"{key} = {value} (default)")
