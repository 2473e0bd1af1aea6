"""``salescrm db``: info, check, backup, path, rebuild-summaries."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from salescrm.cli.common import STATE, FormatOpt, open_db, out, say

app = typer.Typer(no_args_is_help=True)


def _path() -> Path:
    from salescrm import db

    return STATE.db_path or db.default_path()


@app.command("info")
def info(*, fmt: FormatOpt = None) -> None:
    """Path, size, schema version and row counts."""
    from salescrm import db
    from salescrm.output import Col, Section, render_record

    path = _path()
    with open_db(write=False) as conn:
        data = db.info(conn, path)
    counts = [{"table": t, "rows": n} for t, n in data.pop("row_counts").items()]
    cols = [Col("path"), Col("exists", "bool"), Col("size_bytes", "int"),
            Col("schema_version", "int"), Col("program_schema_version", "int"), Col("journal_mode")]
    render_record(data, cols, out(fmt), title="Database",
                  sections=[Section("row_counts", [Col("table"), Col("rows", "int")], counts, title="Rows")])


@app.command("check")
def check(
    *,
    quick: Annotated[bool, typer.Option(
        "--quick", help="SQLite's quick_check instead of integrity_check, and no recomputation of the"
        " report summaries: seconds instead of minutes on millions of orders.")] = False,
    fmt: FormatOpt = None,
) -> None:
    """Integrity, foreign keys and our own consistency rules.  Silent and
    exit 0 when healthy; the problems and exit 1 otherwise."""
    from salescrm import db
    from salescrm.errors import ExitCode
    from salescrm.output import Col, render

    path = _path()
    if not path.exists():
        say(f"no database at {path} yet: nothing to check")
        return
    with open_db(write=False) as conn:
        problems = db.check(conn, quick=quick)
    if problems:
        render([{"problem": p} for p in problems], [Col("problem")], out(fmt))
        raise typer.Exit(ExitCode.REFUSED)


@app.command("backup")
def backup(
    dest: Annotated[Path, typer.Argument(help="File to write the copy to.", dir_okay=False)],
    *,
    force: Annotated[bool, typer.Option("--force", help="Overwrite DEST if it exists.")] = False,
) -> None:
    """A consistent copy made with SQLite's online backup API, safe while
    others write; the copy is created 0600."""
    from salescrm import db
    from salescrm.errors import NotFound

    if not _path().exists():
        raise NotFound(f"no database at {_path()}", "nothing to back up")
    with open_db(write=False) as conn:
        size = db.backup(conn, dest, force=force)
    say(f"backed up {_path()} to {dest} ({size:,} bytes)")


@app.command("rebuild-summaries")
def rebuild_summaries(*, fmt: FormatOpt = None) -> None:
    """Recompute the reports' summary tables from the orders, in one
    transaction.  Never needed in normal use (every salescrm write keeps
    them current); for after 'db check' reports them out of step."""
    from salescrm import db, salesfacts
    from salescrm.errors import NotFound
    from salescrm.output import Col, render

    if not _path().exists():
        raise NotFound(f"no database at {_path()}", "nothing to rebuild")
    with open_db(write=True) as conn:
        with db.write_tx(conn):
            counts = salesfacts.rebuild(conn)
            db.audit(conn, "rebuild", "sales_summaries", "all")
    render([{"table": t, "rows": n} for t, n in counts.items()], [Col("table"), Col("rows", "int")], out(fmt))


@app.command("path")
def path_cmd() -> None:
    """Print the database path in use."""
    print(_path())
