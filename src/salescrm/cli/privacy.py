"""``salescrm customer forget`` and ``salescrm customer export``: the right
to erasure and the right of access.  Parsing and rendering only; the work is
done in ``salescrm.privacy``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from salescrm.cli.common import open_db, say

CustomerArg = Annotated[str, typer.Argument(metavar="ID|EMAIL", help="Customer id or e-mail address.",
                                            show_default=False)]


def forget(
    customer: CustomerArg,
    *,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask; required when not on a terminal.")] = False,
) -> None:
    """Erase a customer's personal data (right to erasure): name, company,
    e-mail, phone, address, city, notes, tags, interaction and task texts,
    rating comments, order notes, tracking numbers, return reasons, and the
    customer's identifiers wherever they appear in its records.  Orders and
    money stay, under the name "forgotten customer #ID"; the audit trail
    records the erasure (the id only).  Cannot be undone."""
    from salescrm import customers, db, privacy
    from salescrm.errors import UsageError

    with open_db() as conn:
        cid = customers.resolve(conn, customer)
        if not yes:
            if not _interactive():
                raise UsageError(f"forgetting customer {cid} cannot be undone", "add --yes to confirm")
            if not typer.confirm(f"Erase the personal data of customer {cid}? This cannot be undone"):
                say("nothing changed")
                return
        with db.write_tx(conn):
            result = privacy.forget(conn, customers.resolve(conn, customer))
        if result["status"] == "already forgotten":
            say(f"customer {cid} was already forgotten")
            return
        clean = privacy.purge(conn)
    erased = ", ".join(t.replace("_", " ") for t in result["erased"] if t != "customers")
    say(f"forgot customer {cid}: now '{privacy.label(cid)}'" + (f"; erased texts in {erased}" if erased else ""))
    if not clean:
        say("note: another program is reading the database; the erased values leave its write-ahead log "
            "at the next checkpoint (when the last salescrm using it exits)")


def _interactive() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def export(
    customer: CustomerArg,
    *,
    output: Annotated[str | None, typer.Option(
        "--output", "-o", show_default=False,
        help="File to write (created 0600, appears only when complete); '-' or none: stdout.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the output file if it exists.")] = False,
) -> None:
    """Everything stored about one customer as JSON (subject access request):
    the profile, tags, interactions, ratings, tasks, orders with their lines,
    payments, shipments, returns and history, and the audit entries."""
    import json

    from salescrm import customers, privacy

    with open_db(write=False) as conn:
        data = privacy.export(conn, customers.resolve(conn, customer))
    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    if output and output != "-":
        _write_private(Path(output), text, force=force)
        say(f"exported customer {data['customer_id']} to {output}")
    else:
        sys.stdout.write(text)


def _write_private(path: Path, text: str, *, force: bool) -> None:
    """Atomically, 0600 whatever the umask, never over a file without --force."""
    import os

    from salescrm.errors import Conflict, IOFailure
    from salescrm.validate import file_to_write

    path, tmp = file_to_write(path)
    if path.exists() and not force:
        raise Conflict(f"{path} exists", "use --force to overwrite it")
    try:
        fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
        with open(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        from salescrm import db

        db.pause_point("export-before-rename")  # tests: killed with the file written but not in place
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise IOFailure(f"cannot write {path}: {exc.strerror or exc}") from None


def register(customer_app: typer.Typer) -> None:
    """Add ``forget`` and ``export`` to the ``customer`` group."""
    customer_app.command("forget")(forget)
    customer_app.command("export")(export)
