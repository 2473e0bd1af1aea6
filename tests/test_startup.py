"""Start-up is a feature: importing the CLI must not load heavy modules."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import run_subprocess

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


# --------------------------------------------------------------------------- one group's module per run

CLI_PACKAGE = {"salescrm.cli", "salescrm.cli.common", "salescrm.cli.lazy"}


def _command_modules() -> set[str]:
    import pkgutil

    import salescrm.cli

    return {f"salescrm.cli.{m.name}" for m in pkgutil.iter_modules(salescrm.cli.__path__)} - CLI_PACKAGE


def _loaded_by(tmp_path, *args: str) -> set[str]:
    """The salescrm modules imported by ``salescrm ARGS`` run as the console
    script does (``salescrm.cli.main``), in a fresh interpreter."""
    listing = tmp_path / "modules.txt"
    code = (
        "import sys\n"
        f"sys.argv = ['salescrm', *{list(args)!r}]\n"
        "from salescrm.cli import main\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        f"    open({str(listing)!r}, 'w').write('\\n'.join(m for m in sys.modules if m.startswith('salescrm')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return set(listing.read_text().split())


def test_root_help_imports_no_command_module(tmp_path):
    for args in (["--help"], ["--version"]):
        assert _loaded_by(tmp_path, *args) <= CLI_PACKAGE | {"salescrm", "salescrm.errors"}, args


def test_a_command_imports_only_its_group_module(tmp_path, run):
    run.ok("customer", "add", "Ann")
    others = _command_modules()
    assert {"salescrm.cli.report", "salescrm.cli.promo", "salescrm.cli.order"} <= others
    for args, wanted in [
        (["customer", "list", "--limit", "5"], {"salescrm.cli.customer"}),
        (["customer", "show", "1"], {"salescrm.cli.customer"}),
        (["agenda"], {"salescrm.cli.customer"}),
        (["customer", "forget", "--help"], {"salescrm.cli.customer", "salescrm.cli.privacy"}),
        (["product", "list"], {"salescrm.cli.product"}),
        (["product", "price", "--help"], {"salescrm.cli.product", "salescrm.cli.market"}),
        (["order", "list"], {"salescrm.cli.order"}),
        (["report", "sales"], {"salescrm.cli.report"}),
        (["audit"], {"salescrm.cli.auditcmd"}),
    ]:
        assert _loaded_by(tmp_path, *args) & others == wanted, args


def test_customer_show_does_not_import_the_orders_module(tmp_path, run):
    run.ok("customer", "add", "Ann")
    loaded = _loaded_by(tmp_path, "customer", "show", "1")
    assert not loaded & {"salescrm.orders", "salescrm.promotions", "salescrm.stock", "salescrm.products"}


def test_customer_show_orders_summary_is_the_orders_modules(db_path, run):
    """Without the orders module ``customers.orders_summary`` runs the query
    of ``orders.customer_summary`` itself: same figures, same output."""
    from salescrm import customers, db, demo, orders

    conn = db.connect(db_path)
    with db.write_tx(conn):
        demo.build(conn, seed=3)
    ids = [r[0] for r in conn.execute("SELECT id FROM customers ORDER BY id")]
    for cid in ids:
        assert customers.booked_summary(conn, cid) == orders.customer_summary(conn, cid), cid
    busiest = conn.execute("SELECT customer_id FROM orders GROUP BY customer_id ORDER BY count(*) DESC"
                           " LIMIT 1").fetchone()[0]
    conn.close()
    shown = run_subprocess("customer", "show", str(busiest), "--format", "json")  # orders not imported
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == run.json("customer", "show", str(busiest))  # orders imported here
    assert json.loads(shown.stdout)["order_count"] > 0
