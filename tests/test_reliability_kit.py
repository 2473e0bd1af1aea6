"""Shared helpers of the reliability tests (test_reliability_*.py): real
subprocesses killed at named pause points, a seeded database, state
comparison, and privilege dropping for root.  The few tests here check the
helpers themselves."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from salescrm import customers, db, orders, products, stock
from tests.conftest import snapshot

#: Personal data planted in the seed: tests look for these bytes and strings.
SECRET_EMAIL = "zelda.quarrington@leak-test.example"
SECRET_NAME = "Zelda Quarrington"
SECRET_PHONE = "+44 20 7946 0958"
SECRET_ADDRESS = "17 Hidden Mews"

EXIT_CODES = {0, 1, 2, 65, 66, 74, 75, 78, 130}


# --------------------------------------------------------------------------- processes


def cli_env(db_path: Path | None = None, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("SALESCRM_TEST_PAUSE", None)
    env.pop("SALESCRM_DEBUG", None)
    env["NO_COLOR"] = "1"
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1] / "src") + os.pathsep + env.get("PYTHONPATH", "")
    if db_path is not None:
        env["SALESCRM_DB"] = str(db_path)
    env.update(extra)
    return env


def cli(*args: str, db_path: Path | None = None, env: dict | None = None, input: str | None = None,
        timeout: float = 120, preexec_fn: Callable[[], None] | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m salescrm ARGS`` in a real process."""
    full = cli_env(db_path, **(env or {}))
    return subprocess.run([sys.executable, "-m", "salescrm", *map(str, args)], capture_output=True, text=True,
                          env=full, input=input, timeout=timeout, preexec_fn=preexec_fn, cwd=cwd)


def start(*args: str, db_path: Path | None = None, env: dict | None = None,
          preexec_fn: Callable[[], None] | None = None) -> subprocess.Popen:
    full = cli_env(db_path, **(env or {}))
    return subprocess.Popen([sys.executable, "-m", "salescrm", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=full, preexec_fn=preexec_fn)


def wait_for(predicate: Callable[[], bool], timeout: float = 60, what: str = "condition",
             proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"process ended (exit {proc.returncode}) before {what}: {err[-2000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def paused(*args: str, point: str, db_path: Path, tmp: Path, seconds: float = 60,
           env: dict | None = None) -> subprocess.Popen:
    """Start the CLI and return once it sleeps at pause point ``point``."""
    marker = tmp / f"paused-{point}-{time.monotonic_ns()}"
    extra = {"SALESCRM_TEST_PAUSE": point, "SALESCRM_TEST_PAUSE_FILE": str(marker),
             "SALESCRM_TEST_PAUSE_SECONDS": str(seconds), **(env or {})}
    proc = start(*args, db_path=db_path, env=extra)
    wait_for(marker.exists, what=f"pause point {point!r}", proc=proc)
    return proc


def kill_at(*args: str, point: str, db_path: Path, tmp: Path, env: dict | None = None) -> None:
    """Run the CLI, SIGKILL it at ``point`` (it holds whatever it holds there)."""
    proc = paused(*args, point=point, db_path=db_path, tmp=tmp, env=env)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


class FastRun:
    """Like conftest's ``run`` (CliRunner in this process), but the Click
    command tree is built once: Typer rebuilds it on every invoke, which
    costs more than most commands.  ``catch_exceptions`` stays on: a test
    looks at ``result.exception`` itself."""

    def __init__(self) -> None:
        from typer.testing import CliRunner

        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None, catch_exceptions: bool = True):
        from salescrm.cli import app

        return self.runner.invoke(app, [str(a) for a in args], input=input, catch_exceptions=catch_exceptions)


_COMMANDS: dict[int, object] = {}


def _cached_command(app):
    import typer

    if id(app) not in _COMMANDS:
        _COMMANDS[id(app)] = typer.main.get_command(app)
    return _COMMANDS[id(app)]


@pytest.fixture
def frun(monkeypatch) -> FastRun:
    import typer.testing

    monkeypatch.setattr(typer.testing, "_get_command", _cached_command)
    return FastRun()


def command_tree():
    """``[(path, click command)]`` of every leaf command."""
    from salescrm.cli import app

    root = _cached_command(app)
    out = []

    def walk(cmd, path):
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in sorted(subs.items()):
                walk(sub, [*path, name])
        if not subs or getattr(cmd, "invoke_without_command", False) and path:
            out.append((tuple(path), cmd))

    walk(root, [])
    return out


# --------------------------------------------------------------------------- database state


def counts(db_path: Path) -> dict[str, int]:
    conn = sqlite3.connect(db_path)
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_schema WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        conn.close()


def problems(db_path: Path) -> list[str]:
    """``db check`` through the library (the CLI's own check is tested apart)."""
    conn = db.connect(db_path, write=False)
    try:
        return db.check(conn)
    finally:
        conn.close()


def schema_and_version(db_path: Path) -> tuple[int, list[tuple]]:
    conn = sqlite3.connect(db_path)
    try:
        return (conn.execute("PRAGMA user_version").fetchone()[0],
                sorted(map(tuple, conn.execute("SELECT type, name, sql FROM sqlite_schema"))))
    finally:
        conn.close()


def file_bytes(db_path: Path) -> bytes:
    """The database file and its -wal and -shm, as they are on disk."""
    out = b""
    for suffix in ("", "-wal", "-shm", "-journal"):
        p = Path(str(db_path) + suffix)
        if p.exists():
            out += p.read_bytes()
    return out


def files(db_path: Path) -> dict[str, bytes]:
    return {suffix: Path(str(db_path) + suffix).read_bytes()
            for suffix in ("", "-wal", "-shm", "-journal") if Path(str(db_path) + suffix).exists()}


# --------------------------------------------------------------------------- a seeded database


def seed(path: Path, *, customers_n: int = 30) -> dict:
    """A database with personal data in every place it can live, products,
    stock and orders in several states.  Returns ids and numbers."""
    conn = db.connect(path)
    ids: dict = {}
    try:
        with db.write_tx(conn):
            secret = customers.add(
                conn, SECRET_NAME, email=SECRET_EMAIL, phone=SECRET_PHONE, address=SECRET_ADDRESS,
                city="Leakford", company="Quarrington Teas Ltd", notes="prefers calls after six",
                external_id="QX-77123", segment="retail", region="north", tags=["vip", "zelda-fan"],
                credit_limit=500000)
            ids["secret"] = secret
            others = [customers.add(conn, f"Customer {i}", email=f"c{i}@example.com", segment="wholesale",
                                    region="south", city=f"Town {i % 5}") for i in range(min(customers_n, 30))]
            ids["others"] = others
            now = db.now_iso()
            conn.executemany(  # many more, written directly: fast
                "INSERT INTO customers (name, name_key, email, email_key, segment, city, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, 'wholesale', ?, ?, ?)",
                [(f"Customer {i}", f"customer {i}", f"c{i}@example.com", f"c{i}@example.com", f"Town {i % 5}",
                  now, now) for i in range(30, customers_n)])
            customers.log(conn, secret, "call", f"{SECRET_NAME} asked for the spring catalogue")
            customers.log(conn, secret, "email", f"sent prices to {SECRET_EMAIL}", follow_up="+3d")
            customers.rate(conn, secret, 4, comment="Zelda pays late but always pays")
            customers.remind(conn, secret, "+7d", "ring Zelda about the tasting")
            products.add(conn, sku="GT-250", name="Green tea 250g", category="tea", cost=320, price=590,
                         tax_rate="13")
            products.add(conn, sku="MUG-01", name="Blue mug", category="teaware", cost=450, price=1200,
                         tax_rate="13")
            products.add(conn, sku="SVC", name="Tasting class", price=5000, tax_rate="6", kind="service", unit="h")
            stock.receive(conn, "GT-250", 1000)
            stock.receive(conn, "MUG-01", 5)
            o1 = orders.create(conn, customer=secret, lines=["GT-250:3", "SVC:1"],
                               notes=f"deliver to {SECRET_ADDRESS}")
            orders.confirm(conn, o1.id)
            orders.ship(conn, o1.id, carrier="DHL", tracking="JD0146000077123")
            orders.pay(conn, o1.id, amount=1000, method="cash", reference=f"from {SECRET_EMAIL}")
            o2 = orders.create(conn, customer=secret, lines=["MUG-01:2"])
            o3 = orders.create(conn, customer=others[0], lines=["GT-250:10", "MUG-01:1"])
            orders.confirm(conn, o3.id)
            o4 = orders.create(conn, customer=others[1], lines=["GT-250:4"])
            ids.update(shipped=o1.number, draft=o2.number, confirmed=o3.number, draft2=o4.number)
    finally:
        conn.close()
    return ids


_TEMPLATES: dict[int, tuple[Path, dict]] = {}


def seeded(path: Path, *, customers_n: int = 30) -> dict:
    """``seed`` once per process and size, then copy the file (fast)."""
    if customers_n not in _TEMPLATES:
        import tempfile

        tpl = Path(tempfile.mkdtemp(prefix="salescrm-seed-")) / "seed.db"
        ids = seed(tpl, customers_n=customers_n)
        _TEMPLATES[customers_n] = (tpl, ids)
    tpl, ids = _TEMPLATES[customers_n]
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tpl, path)
    os.chmod(path, 0o600)
    return dict(ids)


def only_first_migration(path: Path) -> None:
    """A database as the first release left it: only m0001 applied."""
    from salescrm import migrations

    saved = migrations.MIGRATIONS[:]
    migrations.MIGRATIONS[:] = saved[:1]
    try:
        conn = db.connect(path)
        with db.write_tx(conn):
            customers.add(conn, SECRET_NAME, email=SECRET_EMAIL)
        conn.close()
    finally:
        migrations.MIGRATIONS[:] = saved


# --------------------------------------------------------------------------- privileges


CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2
PR_CAPBSET_DROP = 24


def drop_root_overrides() -> None:
    """preexec_fn: a root child loses the power to ignore file permissions
    (CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH dropped from the bounding set, so
    the exec'd Python runs without them).  Harmless when not root."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def permissions_enforceable(tmp: Path) -> bool:
    """Whether a child started with ``drop_root_overrides`` is refused a
    write to a 0400 file (false: root without CAP_SETPCAP, say)."""
    probe = tmp / "perm-probe"
    probe.write_text("x")
    os.chmod(probe, 0o400)
    try:
        r = subprocess.run([sys.executable, "-c", f"open({str(probe)!r}, 'a')"], capture_output=True,
                           preexec_fn=drop_root_overrides)
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        os.chmod(probe, 0o600)
        probe.unlink()
    return r.returncode != 0


# --------------------------------------------------------------------------- the helpers' own tests


def test_pause_point_and_kill_leave_the_database_as_before(tmp_path):
    path = tmp_path / "k.db"
    seeded(path)
    before = snapshot(path)
    kill_at("customer", "add", "Killed Before Commit", point="before-commit", db_path=path, tmp=tmp_path)
    assert snapshot(path) == before
    assert problems(path) == []


def test_seed_is_healthy_and_holds_the_secret(tmp_path):
    path = tmp_path / "s.db"
    ids = seeded(path)
    assert problems(path) == []
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT email FROM customers WHERE id = ?", (ids["secret"],)).fetchone()[0] == SECRET_EMAIL
    conn.close()
    assert SECRET_EMAIL.encode() in file_bytes(path)
