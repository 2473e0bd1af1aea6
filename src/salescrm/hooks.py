"""Automation hooks: user commands run after a change commits.

A hook is a shell command registered for an event.  ``fire`` runs every
enabled hook of the event with the event as JSON on its standard input,
*after* the transaction that made the change has committed: a hook that
fails (non-zero exit, time-out, missing program) is reported on stderr and
never rolls back or blocks the change.

Other modules call it from their CLI once ``db.write_tx`` has exited::

    with db.write_tx(conn):
        order = lifecycle.confirm(conn, number)
    hooks.fire(conn, "order.confirmed", {"order_no": order.number, ...})

No Typer, no Rich here.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from salescrm import db
from salescrm.errors import NotFound, ValidationError

EVENTS = (
    "order.confirmed",
    "order.shipped",
    "order.paid",
    "order.cancelled",
    "customer.created",
    "import.finished",
)
TIMEOUT_ENV = "SALESCRM_HOOK_TIMEOUT"
DEFAULT_TIMEOUT = 30.0
MAX_COMMAND = 4000


@dataclass
class Hook:
    id: int
    event: str
    command: str
    enabled: bool
    created_at: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "event": self.event, "command": self.command,
                "enabled": self.enabled, "created_at": self.created_at}


@dataclass
class Result:
    hook_id: int
    event: str
    ok: bool
    exit_code: int | None  # None: did not run or timed out
    detail: str  # "exit 0", "exit 3", "timed out after 30s", "cannot run: ..."


def _row(r: sqlite3.Row) -> Hook:
    return Hook(r["id"], r["event"], r["command"], bool(r["enabled"]), r["created_at"])


def check_event(event: str) -> str:
    e = (event or "").strip().lower()
    if e not in EVENTS:
        raise ValidationError(f"unknown event {event!r}", "choose one of " + ", ".join(EVENTS))
    return e


# --------------------------------------------------------------------------- management


def add(conn: sqlite3.Connection, event: str, command: str) -> Hook:
    """Register ``command`` for ``event``; call inside ``write_tx``."""
    event = check_event(event)
    command = (command or "").strip()
    if not command:
        raise ValidationError("the hook command must not be empty")
    if len(command) > MAX_COMMAND:
        raise ValidationError(f"the hook command is longer than {MAX_COMMAND} characters")
    if "\x00" in command:
        raise ValidationError("the hook command contains a NUL byte")
    cur = conn.execute(
        "INSERT INTO hooks (event, command, enabled, created_at, os_user) VALUES (?, ?, 1, ?, ?)",
        (event, command, db.now_iso(), db.os_user()),
    )
    hook_id = int(cur.lastrowid)
    db.audit(conn, "add", "hook", hook_id)
    return get(conn, hook_id)


def get(conn: sqlite3.Connection, hook_id: int) -> Hook:
    r = conn.execute("SELECT * FROM hooks WHERE id = ?", (hook_id,)).fetchone()
    if r is None:
        raise NotFound(f"no hook with id {hook_id}", "see 'salescrm hook list'")
    return _row(r)


def list_hooks(conn: sqlite3.Connection, event: str | None = None) -> list[Hook]:
    if event:
        rows = conn.execute("SELECT * FROM hooks WHERE event = ? ORDER BY id", (check_event(event),))
    else:
        rows = conn.execute("SELECT * FROM hooks ORDER BY event, id")
    return [_row(r) for r in rows]


def set_enabled(conn: sqlite3.Connection, hook_id: int, enabled: bool) -> Hook:
    """Enable or disable a hook; call inside ``write_tx``."""
    get(conn, hook_id)
    conn.execute("UPDATE hooks SET enabled = ? WHERE id = ?", (1 if enabled else 0, hook_id))
    db.audit(conn, "enable" if enabled else "disable", "hook", hook_id)
    return get(conn, hook_id)


def remove(conn: sqlite3.Connection, hook_id: int) -> None:
    """Delete a hook; call inside ``write_tx``."""
    get(conn, hook_id)
    conn.execute("DELETE FROM hooks WHERE id = ?", (hook_id,))
    db.audit(conn, "remove", "hook", hook_id)


# --------------------------------------------------------------------------- firing


def _stderr_report(result: Result) -> None:
    if not result.ok:
        print(f"warning: hook {result.hook_id} ({result.event}) failed: {result.detail}; "
              "the change itself was saved", file=sys.stderr)


def _timeout() -> float:
    try:
        return max(0.1, float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT)))
    except ValueError:
        return DEFAULT_TIMEOUT


def envelope(event: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The JSON a hook reads on stdin."""
    return {"event": event, "at": db.now_iso(), "data": payload}


def run_hook(hook: Hook, message: dict[str, Any], *, db_path: str | None = None,
             timeout: float | None = None) -> Result:
    """Run one hook with ``message`` as JSON on stdin.  Its stdout goes to our
    stderr (our stdout is for data); it cannot change anything of ours."""
    data = (json.dumps(message, ensure_ascii=False, default=str) + "\n").encode("utf-8")
    env = dict(os.environ)
    env["SALESCRM_EVENT"] = hook.event
    env["SALESCRM_HOOK_ID"] = str(hook.id)
    if db_path:
        env["SALESCRM_DB"] = db_path
    limit = timeout if timeout is not None else _timeout()
    try:
        proc = subprocess.run(hook.command, shell=True, input=data, env=env,
                              stdout=sys.stderr.fileno() if _has_fileno(sys.stderr) else subprocess.DEVNULL,
                              stderr=None if _has_fileno(sys.stderr) else subprocess.DEVNULL,
                              timeout=limit, check=False)
    except subprocess.TimeoutExpired:
        return Result(hook.id, hook.event, False, None, f"timed out after {limit:g}s")
    except OSError as exc:
        return Result(hook.id, hook.event, False, None, f"cannot run: {exc.strerror or exc}")
    code = proc.returncode
    if code < 0:
        return Result(hook.id, hook.event, False, code, f"killed by signal {-code}")
    return Result(hook.id, hook.event, code == 0, code, f"exit {code}")


def _has_fileno(stream: Any) -> bool:
    try:
        stream.fileno()
        return True
    except (AttributeError, ValueError, OSError):
        return False


def _db_path(conn: sqlite3.Connection) -> str | None:
    try:
        for r in conn.execute("PRAGMA database_list"):
            if r[1] == "main":
                return r[2] or None
    except sqlite3.Error:
        return None
    return None


def fire(conn_or_path: sqlite3.Connection | str | Path | None, event: str, payload: dict[str, Any],
         *, report: Callable[[Result], None] | None = _stderr_report) -> list[Result]:
    """Run the enabled hooks of ``event`` after a commit.  Never raises for a
    failing hook: each failure is passed to ``report`` (stderr by default)
    and returned.  Call it only when no transaction is open."""
    event = check_event(event)
    own = not isinstance(conn_or_path, sqlite3.Connection)
    if own:
        path = Path(conn_or_path) if conn_or_path is not None else db.default_path()
        if not path.exists():
            return []
        conn = db.connect(path, write=False)
    else:
        conn = conn_or_path  # type: ignore[assignment]
        if conn.in_transaction:
            raise RuntimeError("hooks.fire runs after the transaction commits, not inside it")
    try:
        try:
            hooks = [h for h in list_hooks(conn, event) if h.enabled]
        except sqlite3.OperationalError:  # no hooks table (older schema): nothing to run
            return []
        if not hooks:
            return []
        path_text = _db_path(conn)
    finally:
        if own:
            conn.close()
    message = envelope(event, payload)
    results = []
    for hook in hooks:
        result = run_hook(hook, message, db_path=path_text)
        if report is not None:
            report(result)
        results.append(result)
    return results


def test_payload(event: str) -> dict[str, Any]:
    """A sample event for ``hook test``: marked as a test."""
    samples: dict[str, dict[str, Any]] = {
        "order.confirmed": {"order_no": "SO-000000", "customer_id": 0},
        "order.shipped": {"order_no": "SO-000000", "customer_id": 0},
        "order.paid": {"order_no": "SO-000000", "customer_id": 0, "amount": "0.00"},
        "order.cancelled": {"order_no": "SO-000000", "customer_id": 0},
        "customer.created": {"customer_id": 0},
        "import.finished": {"run_id": 0, "entity": "customers", "status": "committed",
                            "inserted": 0, "updated": 0, "unchanged": 0, "rejected": 0},
    }
    data = dict(samples.get(event, {}))
    data["test"] = True
    return data
