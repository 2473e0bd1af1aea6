"""Test isolation: every test gets its own database under tmp_path, no
colour, a wide terminal, and a helper to run the CLI end to end."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from salescrm.cli import app
from salescrm.cli.common import STATE
from salescrm.cli.lazy import pruned


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    db_path = tmp_path / "test.db"
    monkeypatch.setenv("SALESCRM_DB", str(db_path))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("SALESCRM_DEBUG", raising=False)
    STATE.db_path = None
    STATE.quiet = False
    STATE.debug = False
    yield db_path


@pytest.fixture
def db_path(isolated) -> Path:
    return isolated


class Run:
    """``run("customer", "add", "X")`` -> result with .exit_code, .stdout,
    .stderr; ``run.csv(...)`` / ``run.json(...)`` parse the output and
    assert success."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None):
        argv = [str(a) for a in args]
        # build only the command named, as ``salescrm.cli.main`` does
        return self.runner.invoke(pruned(app, argv), argv, input=input, catch_exceptions=False)

    def ok(self, *args: str, input: str | None = None):
        result = self(*args, input=input)
        assert result.exit_code == 0, f"exit {result.exit_code}: {result.stderr}"
        return result

    def csv(self, *args: str) -> list[dict]:
        return list(csv.DictReader(io.StringIO(self.ok(*args, "--format", "csv").stdout)))

    def json(self, *args: str):
        return json.loads(self.ok(*args, "--format", "json").stdout)


@pytest.fixture
def run() -> Run:
    return Run()


def snapshot(db_path: Path) -> dict[str, list]:
    """Every row of every table: for 'nothing changed' assertions."""
    if not db_path.exists():
        return {}
    conn = sqlite3.connect(db_path)
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_schema WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
        return {t: sorted(map(tuple, conn.execute(f'SELECT * FROM "{t}"')), key=repr) for t in tables}
    finally:
        conn.close()


@pytest.fixture
def snap():
    return snapshot


def run_subprocess(*args: str, env: dict | None = None, input: str | None = None, timeout: float = 60):
    """Run the installed CLI in a real process (``python -m salescrm``)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "salescrm", *args], capture_output=True, text=True,
                          env=full_env, input=input, timeout=timeout)
