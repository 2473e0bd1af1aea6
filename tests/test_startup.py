"""Start-up is a feature: importing the CLI must not load heavy modules."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ["rich", "tabulate", "sqlite_utils", "pydantic", "importlib.metadata", "platformdirs"]


def test_import_cli_is_light():
    code = (
        "import sys, salescrm.cli\n"
        f"heavy = {HEAVY!r}\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"loaded at import: {out.stdout.strip()}"


def test_help_is_light():
    code = (
        "import sys\n"
        "from salescrm.cli import app\n"
        "from typer.main import get_command\n"
        "try:\n"
        "    get_command(app).main(['--help'], prog_name='salescrm', standalone_mode=False)\n"
        "except SystemExit:\n"
        "    pass\n"
        f"heavy = {HEAVY!r}\n"
        "print(','.join(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stderr.strip() == "", f"loaded by --help: {out.stderr.strip()}"
