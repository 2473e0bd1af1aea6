"""``salescrm demo``: build the demo database and tour what it shows."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from salescrm.cli.common import STATE, say

#: The commands the tour runs, in order (grows as the product grows).
TOUR = [
    ["customer", "list", "--sort", "name", "--limit", "8"],
    ["customer", "show", "wang.fang@example.cn"],
    ["agenda", "--days", "14"],
    ["customer", "dupes"],
    ["product", "list"],
    ["stock", "list", "--low"],
    ["order", "list", "--status", "draft,confirmed,partially_shipped,shipped", "--limit", "10"],
    ["order", "list", "--overdue", "--limit", "10"],
    ["report", "sales", "--by", "category"],
    ["report", "orders"],
    ["dashboard"],
]


def default_demo_path() -> Path:
    import tempfile

    return Path(tempfile.gettempdir()) / "salescrm-demo" / "demo.db"


def demo(
    *,
    seed: Annotated[int, typer.Option(help="Random seed for the generated data.")] = 7,
    tour: Annotated[bool, typer.Option("--tour/--no-tour", help="Run a few commands on the demo data.")] = True,
) -> None:
    """Build a demo database with realistic data (CJK names included) and show
    what salescrm can do.  It goes to --db if given, else to
    $TMPDIR/salescrm-demo/demo.db, rebuilt on every run."""
    from salescrm import db
    from salescrm import demo as demo_data
    from salescrm.errors import Conflict

    path = STATE.db_path or default_demo_path()
    if STATE.db_path is not None and path.exists():
        with _connect(path) as conn:
            if conn.execute("SELECT count(*) FROM customers").fetchone()[0]:
                raise Conflict(f"{path} already holds data", "the demo only fills a new or empty database")
    elif path.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    with _connect(path) as conn, db.write_tx(conn):
        counts = demo_data.build(conn, seed=seed)
    say(f"demo database: {path}")
    say("  " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()))
    say(f"explore it with:  export SALESCRM_DB={path}")
    if not tour:
        return
    from salescrm.cli import app

    command = typer.main.get_command(app)
    for args in TOUR:
        full = ["--db", str(path), *args]
        print(f"\n$ salescrm {' '.join(args)}", flush=True)
        command.main(full, prog_name="salescrm", standalone_mode=False)
    STATE.db_path = None if path == default_demo_path() else path


def _connect(path: Path):
    from contextlib import closing

    from salescrm import db

    return closing(db.connect(path))
