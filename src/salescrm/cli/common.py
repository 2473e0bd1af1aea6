"""What every command module shares: global state, options, the error
boundary (exit codes) and opening the database.  Typer only; Rich, tabulate
and sqlite-utils are never imported here."""

from __future__ import annotations

import enum
import errno
import os
import sqlite3
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from typer import _click
from typer.core import TyperGroup
from typer.exceptions import Abort

from salescrm.errors import ExitCode, SalesError, from_sqlite


@dataclass
class State:
    db_path: Path | None = None
    debug: bool = False
    quiet: bool = False


STATE = State()


class Format(str, enum.Enum):
    table = "table"
    csv = "csv"
    tsv = "tsv"
    json = "json"
    jsonl = "jsonl"
    markdown = "markdown"


FormatOpt = Annotated[
    Format | None,
    typer.Option(
        "--format",
        "-f",
        case_sensitive=False,
        help="Output format: table, csv, tsv, json, jsonl or markdown "
        "(default: table on a terminal, csv when piped).",
        show_default=False,
    ),
]


def out(fmt: Format | None, *, totals: bool = False):
    """Output options for ``salescrm.output.render``."""
    from salescrm.output import Options

    return Options(fmt=fmt.value if fmt else None, quiet=STATE.quiet, totals=totals)


def say(text: str) -> None:
    """A message for people on stderr (silenced by -q)."""
    if not STATE.quiet:
        print(text, file=sys.stderr)


@contextmanager
def open_db(*, write: bool = True) -> Iterator[sqlite3.Connection]:
    """The command's database connection, closed on exit."""
    from salescrm import db

    try:
        from typer._click.globals import get_current_context

        ctx = get_current_context(silent=True)
        if ctx is not None:
            db.current_command = " ".join(ctx.command_path.split()[1:]) or "salescrm"
    except Exception:  # pragma: no cover - defensive
        pass
    db.upgrade_notice = say  # (an upgrade of a large database takes minutes: say so first)
    conn = db.connect(STATE.db_path, write=write)
    try:
        yield conn
    finally:
        conn.close()


def _debug_wanted(args: list[str] | None) -> bool:
    return STATE.debug or os.environ.get("SALESCRM_DEBUG") in ("1", "true", "yes") or (
        args is not None and "--debug" in args
    )


def _fail(code: int, text: str, args: list[str] | None) -> int:
    if _debug_wanted(args):
        traceback.print_exc()
    # one line, whatever the message held
    print("Error: " + " ".join(str(text).split()), file=sys.stderr)
    return int(code)


class _BrokenPipe(Exception):
    """Stdout was closed by the reader (``| head``).  Not an OSError, so
    Typer's own handler (which exits 1) lets it through to ours."""


class SalesGroup(TyperGroup):
    """The root group: runs Typer in non-standalone mode and turns every
    failure into one line on stderr and a documented exit code."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        argv = list(args) if args is not None else sys.argv[1:]
        code = self._run(argv, prog_name, complete_var, **extra)
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _silence_stdout()
        except OSError:
            pass
        if standalone_mode:
            sys.exit(code)
        return code

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise _BrokenPipe() from None

    def _run(self, argv: list[str], prog_name: str | None, complete_var: str | None, **extra: Any) -> int:
        try:
            rv = super().main(args=argv, prog_name=prog_name or "salescrm",
                              complete_var=complete_var, standalone_mode=False, **extra)
            return rv if isinstance(rv, int) and not isinstance(rv, bool) else 0
        except SalesError as exc:
            return _fail(exc.exit_code, str(exc), argv)
        except _click.exceptions.UsageError as exc:
            hint = ""
            if exc.ctx is not None:
                hint = f" (see '{exc.ctx.command_path} --help')"
            return _fail(ExitCode.USAGE, exc.format_message() + hint, argv)
        except _click.exceptions.ClickException as exc:
            return _fail(exc.exit_code, exc.format_message(), argv)
        except (Abort, KeyboardInterrupt):
            return _fail(ExitCode.INTERRUPTED, "interrupted; nothing was changed by the unfinished step", argv)
        except (BrokenPipeError, _BrokenPipe):
            _silence_stdout()
            return 0
        except sqlite3.Error as exc:
            err = from_sqlite(exc)
            if err is not None:
                return _fail(err.exit_code, str(err), argv)
            return _fail(ExitCode.IO_ERR, f"database error: {exc}", argv)
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                _silence_stdout()
                return 0
            where = f" {exc.filename}" if exc.filename else ""
            return _fail(ExitCode.IO_ERR, f"I/O error{where}: {exc.strerror or exc}", argv)
        except MemoryError:
            return _fail(ExitCode.IO_ERR, "out of memory", argv)
        except OverflowError:  # an id or count beyond SQLite's 64-bit integers reached a query
            return _fail(ExitCode.USAGE, "a number given is too large (at most 9223372036854775807)", argv)
        except Exception as exc:  # a bug: still one line unless --debug
            return _fail(
                ExitCode.REFUSED,
                f"internal error ({type(exc).__name__}: {exc}); run with --debug for details",
                argv,
            )


def _silence_stdout() -> None:
    """After EPIPE (``| head``): point stdout at /dev/null so the final flush
    at exit does not raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
