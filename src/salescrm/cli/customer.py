"""``salescrm customer`` and ``salescrm agenda`` (being written)."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)


def register_agenda(root: typer.Typer) -> None:
    pass
