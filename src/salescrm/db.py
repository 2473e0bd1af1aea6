"""Opening the database, transactions, migrations and health checks.

We open connections ourselves (sqlite-utils is never our transaction manager):
autocommit mode at the driver level, and every write runs inside
``write_tx``, which issues ``BEGIN IMMEDIATE`` so that a writer takes the
write lock up front and waits (busy timeout) instead of failing half-way.
"""

from __future__ import annotations

import getpass
import importlib
import os
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from salescrm.errors import Busy, DatabaseRefused, IOFailure, SalesError, from_sqlite

APPLICATION_ID = 0x5343524D  # "SCRM"
#: How long a write waits for another writer's lock before giving up (exit 75).
BUSY_TIMEOUT_MS = 5000
#: How long a write keeps waiting while an *import* holds the lock: an import
#: applies all its rows in one transaction (200k customers: a minute or more),
#: so a write queued behind it waits for it instead of failing after 5 s.
#: ``SALESCRM_IMPORT_WAIT`` (seconds) overrides it.
IMPORT_WAIT_SECONDS = 1800
ENV_VAR = "SALESCRM_DB"

#: Command being run, for the audit trail ("customer add"); set by the CLI.
current_command = "library"

#: Told, before an existing database is upgraded, what is about to happen
#: (the CLI prints it on stderr: an upgrade can take minutes); None: silent.
upgrade_notice: Callable[[str], None] | None = None
#: From this many orders the notice warns that the upgrade may take minutes
#: (m0007 builds its summaries in four to five minutes per million orders).
UPGRADE_SLOW_ORDERS = 100_000

# Extra checks run by ``check``: "module:function" names, each taking a
# connection and returning a list of problem strings (no personal data).
EXTRA_CHECKS: list[str] = ["salescrm.stock:check_ledger", "salescrm.orders:check_totals", "salescrm.orders:check_money_types",
                           "salescrm.salesfacts:check"]
#: The checks ``check(quick=True)`` leaves out: they recompute derived data
#: from every order (minutes on millions of orders).
SLOW_CHECKS = {"salescrm.salesfacts:check"}


def default_path() -> Path:
    """``$SALESCRM_DB`` else the per-user data directory (XDG on Linux)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("salescrm", appauthor=False)) / "salescrm.db"


def now_iso() -> str:
    """The current time as ISO-8601 UTC, to the second."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


# --------------------------------------------------------------------------- migrations


def _migrations() -> list[tuple[str, str]]:
    from salescrm.migrations import MIGRATIONS

    out = []
    for name in MIGRATIONS:
        mod = importlib.import_module(f"salescrm.migrations.{name}")
        out.append((name, mod.SQL))
    return out


def schema_version() -> int:
    """The schema version this program writes: the number of migrations."""
    from salescrm.migrations import MIGRATIONS

    return len(MIGRATIONS)


def split_sql(script: str) -> list[str]:
    """Split a script into statements (triggers included), without executescript,
    which would COMMIT behind our back."""
    statements, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                statements.append(buf.strip())
            buf = ""
    if buf.strip():
        raise ValueError("incomplete SQL statement in migration: " + buf[:60])
    return statements


def _refuse_newer(conn: sqlite3.Connection) -> None:
    target = schema_version()
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > target:
        raise DatabaseRefused(
            f"the database has schema version {version}, newer than this salescrm "
            f"understands ({target})",
            "upgrade salescrm; the file was left untouched",
        )


def _migrate(conn: sqlite3.Connection) -> None:
    migrations = _migrations()
    target = len(migrations)
    _refuse_newer(conn)
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == target:
        return
    with write_tx(conn, audit=False):
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version and version < target and upgrade_notice is not None:
            # (the orders table is m0002's: a database older than that has none to count)
            orders = conn.execute("SELECT count(*) FROM orders").fetchone()[0] if version >= 2 else 0
            upgrade_notice(f"upgrading the database from schema {version} to {target}"
                           + (f" ({orders:,} orders: it can take a few minutes; meanwhile other commands exit 75, busy)"
                              if orders >= UPGRADE_SLOW_ORDERS else "") + " ...")
        for number, (_name, sql) in enumerate(migrations, start=1):
            if number <= version:
                continue
            for statement in split_sql(sql):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            pause_point("migration")  # tests: killed half-way through an upgrade
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")


def _check_ours(conn: sqlite3.Connection) -> None:
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    if app_id == APPLICATION_ID:
        return
    if app_id == 0:
        tables = conn.execute(
            "SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'"
        ).fetchone()[0]
        if tables == 0:
            return  # an empty file: ours to initialise
    raise DatabaseRefused(
        "the file is an SQLite database but not a salescrm one; it was left untouched",
        "point --db at a salescrm database or a new file",
    )


# --------------------------------------------------------------------------- opening


def _configure(conn: sqlite3.Connection) -> None:
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA trusted_schema = OFF")
    conn.execute("PRAGMA secure_delete = ON")


def _create_file(path: Path) -> None:
    try:
        _private_dirs(path.parent)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            os.close(fd)
        except FileExistsError:  # another process made it first
            pass
    except OSError as exc:  # a parent that is a file, no permission, ...
        raise IOFailure(
            f"cannot create the database at {path}: {exc.strerror}",
            "choose a writable place with --db or SALESCRM_DB",
        ) from None


def _private_dirs(folder: Path) -> None:
    """``mkdir -p`` where every folder we create is 0700 whatever the umask
    (``Path.mkdir(parents=True)`` makes the parents with the umask's mode)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(d, 0o700)


def connect(path: Path | str | None = None, *, write: bool = True) -> sqlite3.Connection:
    """Open (and if needed create and migrate) the database.

    ``write=False`` never creates a file: a missing database reads as an
    empty one (an in-memory database with the current schema).
    """
    path = Path(path) if path is not None else default_path()
    if str(path) == ":memory:" or (not write and not path.exists()):
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        _configure(conn)
        _migrate(conn)
        return conn
    if path.is_dir():
        raise IOFailure(f"{path} is a directory, not a database file", "give a file path to --db")
    if not path.exists():
        _create_file(path)
    conn = None
    try:
        conn = sqlite3.connect(
            str(path),
            isolation_level=None,
            timeout=BUSY_TIMEOUT_MS / 1000,
            check_same_thread=False,
        )
        _configure(conn)
        _check_ours(conn)
        _refuse_newer(conn)  # before switching the journal mode: a refused file stays byte for byte
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        if mode.lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        _migrate(conn)
    except BaseException as exc:
        if conn is not None:
            conn.close()
        if not isinstance(exc, sqlite3.Error):
            raise
        err = from_sqlite(exc)
        if err is None:
            raise
        raise err from None
    return conn


# --------------------------------------------------------------------------- transactions


@contextmanager
def write_tx(conn: sqlite3.Connection, *, audit: bool = True) -> Iterator[sqlite3.Connection]:
    """One write transaction: ``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on
    any exception (KeyboardInterrupt included)."""
    if conn.in_transaction:
        raise RuntimeError("write_tx does not nest")
    _begin_immediate(conn)
    try:
        yield conn
        _refresh_summaries(conn)
        pause_point("before-commit")
        conn.execute("COMMIT")
    except BaseException as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error) and not isinstance(exc, SalesError):
            err = from_sqlite(exc)
            if err is not None:
                raise err from exc
        raise


def _refresh_summaries(conn: sqlite3.Connection) -> None:
    """Bring the reports' summary tables up to date with what this
    transaction changed (``salescrm.salesfacts``; one cheap query when
    nothing did)."""
    from salescrm import salesfacts

    salesfacts.refresh_if_marked(conn)


def _begin_immediate(conn: sqlite3.Connection) -> None:
    """``BEGIN IMMEDIATE``, waiting up to the busy timeout for another
    writer, and for as long as a running import holds the lock (up to
    ``IMPORT_WAIT_SECONDS``): then ``Busy`` (exit 75)."""
    deadline: float | None = None
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            err = from_sqlite(exc) or exc
            if not isinstance(err, Busy) or not import_running(conn):
                raise err from None
            import time

            if deadline is None:
                wait = float(os.environ.get("SALESCRM_IMPORT_WAIT", IMPORT_WAIT_SECONDS))
                deadline = time.monotonic() + wait
            elif time.monotonic() > deadline:
                raise Busy("an import has held the database for too long",
                           "try again when it has finished") from None


def import_running(conn: sqlite3.Connection) -> bool:
    """Whether an import holds the lock file beside this database (see
    ``importer.import_lock``: ``<database>.import-lock``, flock'ed)."""
    import fcntl

    row = conn.execute("SELECT file FROM pragma_database_list WHERE name = 'main'").fetchone()
    if not row or not row[0]:
        return False
    lock = Path(row[0] + ".import-lock")
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # also drops our shared lock
    return False


def checkpoint(conn: sqlite3.Connection) -> bool:
    """Copy the WAL into the database file and truncate the WAL to zero
    bytes (``wal_checkpoint(TRUNCATE)``; waits for readers up to the busy
    timeout).  False if another connection kept it from completing."""
    if conn.in_transaction:
        raise RuntimeError("checkpoint runs outside a transaction")
    busy, _log, _done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return busy == 0


def audit(conn: sqlite3.Connection, action: str, entity: str, entity_id: object) -> None:
    """Append one row to the audit trail (no personal data: ids only)."""
    conn.execute(
        "INSERT INTO audit (at, os_user, command, action, entity, entity_id)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (now_iso(), os_user(), current_command, action, entity, str(entity_id)),
    )


def pause_point(name: str) -> None:
    """Test-only hook: with ``SALESCRM_TEST_PAUSE=name`` the process writes a
    marker file and sleeps here, so a test can kill it at a known point."""
    wanted = os.environ.get("SALESCRM_TEST_PAUSE")
    if not wanted or wanted != name:
        return
    import time

    marker = os.environ.get("SALESCRM_TEST_PAUSE_FILE")
    if marker:
        Path(marker).write_text(name)
    time.sleep(float(os.environ.get("SALESCRM_TEST_PAUSE_SECONDS", "30")))


def get_setting(conn: sqlite3.Connection, key: str, default: str | None = None) -> str | None:
    row = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
    return row[0] if row else default


def set_setting(conn: sqlite3.Connection, key: str, value: str) -> None:
    """Set a setting; call inside ``write_tx``."""
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?, ?)"
        " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


# --------------------------------------------------------------------------- info, check, backup


def info(conn: sqlite3.Connection, path: Path) -> dict:
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'table'"
            " AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]
    counts = {}
    for t in tables:
        # names come from sqlite_schema, not from the user; quoted all the same
        counts[t] = conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
    exists = path.exists()
    return {
        "path": str(path),
        "exists": exists,
        "size_bytes": path.stat().st_size if exists else 0,
        "schema_version": conn.execute("PRAGMA user_version").fetchone()[0],
        "program_schema_version": schema_version(),
        "journal_mode": conn.execute("PRAGMA journal_mode").fetchone()[0],
        "row_counts": counts,
    }


#: Columns holding money (integer cents), by name, in any table.
MONEY_COLUMN = re.compile(r"(_cents|price|cost|amount|credit_limit|budget)$")


def money_columns(conn: sqlite3.Connection) -> list[tuple[str, str, str, bool]]:
    """``(table, column, declared type, table is STRICT)`` of every money column."""
    out = []
    for name, strict in conn.execute(
        "SELECT name, strict FROM pragma_table_list WHERE schema = 'main' AND type = 'table'"
        " AND name NOT LIKE 'sqlite_%' ORDER BY name"
    ):
        for col in conn.execute("SELECT name, type FROM pragma_table_info(?)", (name,)):
            if MONEY_COLUMN.search(col[0]):
                out.append((name, col[0], col[1].upper(), bool(strict)))
    return out


def check_money(conn: sqlite3.Connection) -> list[str]:
    """Money is INTEGER cents in STRICT tables, and every stored value is an
    integer (``typeof``): a REAL or TEXT amount means someone wrote past our
    schema (another tool, a damaged or hand-edited file)."""
    problems = []
    for table, col, decl, strict in money_columns(conn):
        if decl != "INTEGER" or not strict:
            problems.append(f"money: {table}.{col} is declared {decl or 'untyped'}"
                            f"{'' if strict else ' in a table that is not STRICT'}")
        q_table, q_col = '"' + table.replace('"', '""') + '"', '"' + col.replace('"', '""') + '"'
        n = conn.execute(  # names from the schema, never from input
            f"SELECT count(*) FROM {q_table} WHERE {q_col} IS NOT NULL AND typeof({q_col}) <> 'integer'"
        ).fetchone()[0]
        if n:
            problems.append(f"money: {table}.{col} holds {n} value{'s' if n != 1 else ''} that are not integer cents")
    return problems


def check(conn: sqlite3.Connection, *, quick: bool = False) -> list[str]:
    """Every problem found, as text without personal data; empty when healthy.

    A damaged file can make a check's own query fail; that is reported as a
    problem too (never as a crash), and the other checks still run.
    ``quick``: SQLite's ``quick_check`` (the file's structure, not that each
    index matches its table) and none of the ``SLOW_CHECKS``."""
    problems: list[str] = []

    def guarded(name: str, fn) -> None:
        try:
            problems.extend(fn())
        except sqlite3.DatabaseError as exc:
            problems.append(f"{name}: could not run ({exc})")

    def integrity() -> list[str]:
        rows = conn.execute("PRAGMA quick_check" if quick else "PRAGMA integrity_check").fetchall()
        if [r[0] for r in rows] == ["ok"]:
            return []
        lines = [line.strip() for r in rows for line in str(r[0]).splitlines()]
        return [f"integrity: {line}" for line in lines if line and not line.startswith("***")]

    def foreign_keys() -> list[str]:
        return [f"foreign key: {r[0]} row {r[1]} points at a missing {r[2]}"
                for r in conn.execute("PRAGMA foreign_key_check")]

    guarded("integrity", integrity)
    guarded("foreign keys", foreign_keys)
    guarded("money", lambda: check_money(conn))
    for name in EXTRA_CHECKS:
        if quick and name in SLOW_CHECKS:
            continue
        module, func = name.split(":")
        guarded(name, lambda: getattr(importlib.import_module(module), func)(conn))
    return list(dict.fromkeys(problems))  # the same problem found twice is listed once


def backup(conn: sqlite3.Connection, dest: Path, *, force: bool = False) -> int:
    """Copy the database with SQLite's online backup API (consistent while
    others write) to ``dest``, created 0600; returns its size in bytes."""
    from salescrm.errors import Conflict

    from salescrm.validate import file_to_write

    dest, tmp = file_to_write(dest, option="the backup file")
    if dest.exists() and not force:
        raise Conflict(f"{dest} exists", "use --force to overwrite it")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
        os.close(fd)
        target = sqlite3.connect(str(tmp))
        try:
            conn.backup(target)
            target.execute("PRAGMA journal_mode = DELETE")
        finally:
            target.close()
        os.chmod(tmp, 0o600)
        os.replace(tmp, dest)
    except OSError as exc:
        _remove_with_journals(tmp)
        raise IOFailure(f"cannot write the backup {dest}: {exc.strerror}") from None
    except sqlite3.Error as exc:
        _remove_with_journals(tmp)
        err = from_sqlite(exc)
        if isinstance(err, IOFailure):  # the copy could not be written (disk full, ...), not our database
            raise IOFailure(f"cannot write the backup {dest}: {exc}", "check the space and permissions there") from None
        raise (err or IOFailure(f"backup failed: {exc}")) from None
    return dest.stat().st_size


def _remove_with_journals(path: Path) -> None:
    """A failed copy leaves no file behind, nor its rollback journal."""
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
