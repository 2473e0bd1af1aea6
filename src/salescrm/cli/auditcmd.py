"""``salescrm audit``: the append-only trail of every write."""

from __future__ import annotations

from typing import Annotated

import typer

from salescrm.cli.common import FormatOpt, open_db, out


def audit(
    *,
    entity: Annotated[str | None, typer.Option(help="Only this kind of record: customer, order, product, ...")] = None,
    entity_id: Annotated[str | None, typer.Option("--id", help="Only this record id.")] = None,
    since: Annotated[str | None, typer.Option(help="From this date (YYYY-MM-DD, today, -7d).")] = None,
    user: Annotated[str | None, typer.Option(help="Only this OS user.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many entries (0: all).", min=0)] = 100,
    fmt: FormatOpt = None,
) -> None:
    """The audit trail, newest first: time, OS user, command, action, record.
    It holds ids only, never personal data, and cannot be edited."""
    from salescrm import auditlog
    from salescrm.output import Col, render

    cols = [Col("id", "int"), Col("at", "datetime"), Col("os_user"), Col("command"), Col("action"),
            Col("entity"), Col("entity_id")]
    with open_db(write=False) as conn:
        render(auditlog.entries(conn, entity=entity, entity_id=entity_id, since=since, user=user,
                                limit=limit or None), cols, out(fmt), empty="no audit entries")
