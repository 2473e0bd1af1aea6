"""The one map from failures to exit codes, shared by every command.

Logic modules raise these exceptions; the CLI turns them into one line on
stderr and the exit code below.  Nothing here imports Typer or Rich.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    REFUSED = 1  # validation, not found, conflict, illegal transition, business rule
    USAGE = 2
    DATA_ERR = 65  # an input file holds invalid data
    NO_INPUT = 66  # an input file is missing or unreadable
    IO_ERR = 74  # disk full, unwritable path
    BUSY = 75  # database locked past the timeout, another import running
    DB_REFUSED = 78  # not a salescrm database, newer schema
    INTERRUPTED = 130


class SalesError(Exception):
    """Base of every failure we report.  ``hint`` says how to fix it."""

    exit_code: ExitCode = ExitCode.REFUSED

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class Refused(SalesError):
    """The request is understood but refused."""


class ValidationError(Refused):
    pass


class NotFound(Refused):
    pass


class Conflict(Refused):
    pass


class IllegalTransition(Refused):
    pass


class BusinessRule(Refused):
    pass


class UsageError(SalesError):
    exit_code = ExitCode.USAGE


class InvalidInput(SalesError):
    exit_code = ExitCode.DATA_ERR


class InputMissing(SalesError):
    exit_code = ExitCode.NO_INPUT


class IOFailure(SalesError):
    exit_code = ExitCode.IO_ERR


class Busy(SalesError):
    exit_code = ExitCode.BUSY


class DatabaseRefused(SalesError):
    exit_code = ExitCode.DB_REFUSED


#: SQLite's extended codes for a failed write (Python 3.11+ names them).
_WRITE_ERRORS = ("SQLITE_IOERR_WRITE", "SQLITE_IOERR_FSYNC", "SQLITE_IOERR_TRUNCATE", "SQLITE_IOERR_SHMSIZE",
                 "SQLITE_IOERR_DIR_FSYNC", "SQLITE_FULL")


def from_sqlite(exc: Exception) -> SalesError | None:
    """Translate a sqlite3 exception into one of ours, or None if unknown."""
    import sqlite3

    text = str(exc).lower()
    if isinstance(exc, sqlite3.OperationalError):
        if "locked" in text or "busy" in text:
            return Busy(
                "the database is busy (another salescrm is writing)",
                "try again in a moment",
            )
        if "readonly" in text or "read-only" in text:
            return IOFailure(
                "the database is read-only", "check the file's permissions or use --db"
            )
        if "disk is full" in text or "full" in text:
            return IOFailure("the disk is full", "free some space and try again")
        if getattr(exc, "sqlite_errorname", "") in _WRITE_ERRORS:  # EFBIG, EIO on write: no "full" in the text
            return IOFailure(
                "cannot write the database: the disk is full, the file too large, or the disk failing",
                "free some space and try again",
            )
        if "disk i/o" in text or "unable to open" in text:
            return IOFailure(
                f"cannot read or write the database: {exc}",
                "check the path and its permissions",
            )
    if isinstance(exc, sqlite3.DatabaseError) and (
        "not a database" in text or "malformed" in text or "encrypted" in text
    ):
        return DatabaseRefused(
            "the file is not a salescrm database (or it is damaged)",
            "point --db at a salescrm database",
        )
    if isinstance(exc, sqlite3.IntegrityError):
        return Conflict(f"the change conflicts with stored data: {exc}")
    return None
