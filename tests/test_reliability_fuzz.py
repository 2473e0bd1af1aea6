"""Bad input everywhere: hypothesis drives random arguments to every command
and random file contents to every import.  Whatever comes in: never a
traceback (nor an "internal error"), never an exit code outside the
documented table, and a run that fails leaves the database exactly as it was
(and no file behind)."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import snapshot
from tests.test_reliability_kit import EXIT_CODES, SECRET_EMAIL, command_tree, frun, seeded  # noqa: F401

#: Commands left out, and why.
SKIPPED = {
    ("hook", "add"): "registers a shell command that later commands run",
    ("hook", "test"): "runs a registered shell command",
    ("demo",): "builds a whole demo database: slow, and covered by its own tests",
}
PATH_PARAMS = {"output", "rejects", "map_file", "dest", "file", "folder", "path"}
INPUTS = ("in.csv", "in.tsv", "in.json", "in.jsonl", "map.toml")
PATHS = (*INPUTS, "missing.csv", "out.csv", "out.json", "out", "-", "", ".", "sub/new.csv")

SPECIAL = [
    "", " ", "-", "--", "0", "1", "2", "-1", "99999999999999999999", "1e9", "NaN", "inf", "0.001", "12.345",
    "-5.00", "5,00", "today", "+3d", "-30d", "2026-02-30", "2026-01-15", "2026-01-15T10:00", "c1@example.com",
    SECRET_EMAIL, "not-an-email@", "SO-000001", "SO-000002", "so-3", "#1", "GT-250", "gt-250", "GT-250:3",
    "MUG-01:1@12.00-10%", "MUG-01:99999", "SVC:1", "vip", "retail", "cash", "card", "10%", "150%",
    "'; DROP TABLE customers; --", "1 OR 1=1", "%", "_", "\\", "a\nb", "\t", "王芳", "Ğüñter ÆØÅ",
    "\u202eevil", "x" * 3000, "-created_at,name", "id;", "name,-id", "customer", "order.paid",
]
TEXT = st.one_of(st.sampled_from(SPECIAL), st.text(max_size=30),
                 st.from_regex(r"[A-Za-z0-9@.:%#+\-_ ]{0,14}", fullmatch=True))


def _commands():
    return [(path, cmd) for path, cmd in command_tree() if path and path not in SKIPPED]


#: Values that get past parsing for parameters of these names, so that the
#: fuzzer also reaches the logic and the writes behind it.
PLAUSIBLE = {
    "customer": ["1", "2", "#3", "c1@example.com", SECRET_EMAIL, "99"],
    "keep": ["1", "2"], "other": ["2", "3", "1"],
    "order": ["SO-000001", "SO-000002", "SO-000003", "SO-000004", "so-1", "4"],
    "sku": ["GT-250", "MUG-01", "SVC", "NEW-1"], "lines": ["GT-250:1", "MUG-01:2@11.00-5%", "SVC:1"],
    "line": ["GT-250:1", "MUG-01:1", "1", "SVC:1"], "qty": ["1", "5", "-2", "0"],
    "amount": ["1.00", "0.01", "5000", "12.5"], "method": ["cash", "card", "bitcoin"],
    "name": ["Neue Kundin", "王芳", "Tea"], "email": ["new@example.org", "c2@example.com"],
    "task": ["1", "2"], "hook_id": ["1"], "score": ["1", "5", "6"], "due": ["+3d", "2026-05-01"],
    "key": ["currency", "payment_terms_days", "seller.name", "channels", "nope"],
    "value": ["EUR", "30", "Tea & Co", "retail,online"], "text": ["called back", "x"],
    "type_": ["call", "note"], "price": ["5.90", "0"], "reason": ["stock-take"], "promo": ["1"],
    "plan": ["1"], "percent": ["10", "10%"],
}


def _value(param, draw):
    name = param.name or ""
    kind = getattr(param.type, "name", "")
    if name in PLAUSIBLE and draw(st.booleans()):
        return draw(st.sampled_from(PLAUSIBLE[name]))
    if name in PATH_PARAMS or kind in ("file", "path", "directory"):
        return draw(st.sampled_from(PATHS))
    choices = getattr(param.type, "choices", None)
    if choices:
        return draw(st.one_of(st.sampled_from(list(choices)), TEXT))
    if kind.startswith("int") or kind == "integer":
        return draw(st.one_of(st.integers(-3, 50).map(str), st.integers(-2**70, 2**70).map(str), TEXT))
    return draw(TEXT)


@st.composite
def invocations(draw):
    path, cmd = draw(st.sampled_from(_commands()))
    args = list(path)
    for param in cmd.params:
        if param.param_type_name == "argument":
            n = draw(st.integers(0, 3)) if param.nargs == -1 else draw(st.sampled_from([1, 1, 1, 1, 0, 2]))
            args += [_value(param, draw) for _ in range(n)]
        elif draw(st.integers(0, 3)) == 0:  # an option: now and then
            flag = draw(st.sampled_from(param.opts))
            if getattr(param, "is_flag", False):
                args.append(flag)
            else:
                for _ in range(draw(st.integers(1, 2)) if getattr(param, "multiple", False) else 1):
                    args += [flag, _value(param, draw)]
    if draw(st.integers(0, 15)) == 0:
        args.insert(draw(st.integers(0, len(args))), draw(st.sampled_from(["--bogus", "-Z", "--format"])))
    return args


CELLS = {
    "email": ["a@example.org", "c1@example.com", "bad@", ""], "customer_email": ["c1@example.com", "c2@example.com"],
    "sku": ["GT-250", "MUG-01", "NEW-9"], "qty": ["1", "2", "0", "-1"], "order_no": ["IMP-1", "IMP-2", "SO-000001"],
    "order_date": ["2026-01-15", "15/01/2026"], "list_price": ["5.90", "1.234,50"], "unit_price": ["5.90", ""],
    "amount": ["1.00", "-2"], "method": ["cash", "card"], "paid_at": ["2026-01-16"], "name": ["Imported", ""],
    "external_id": ["E1", "E2", ""], "status": ["draft", "confirmed", "shipped"], "tags": ["a,b", ""],
}


def _cell(draw, column=""):
    if column in CELLS and draw(st.booleans()):
        return draw(st.sampled_from(CELLS[column]))
    return draw(st.one_of(TEXT, st.integers(-10**6, 10**6).map(str), st.sampled_from(["", "3", "5.90", "x@y.z"])))


FIELDS = ["external_id", "name", "email", "phone", "city", "credit_limit", "tags", "sku", "list_price",
          "unit_cost", "order_no", "order_date", "customer_email", "qty", "unit_price", "amount", "method",
          "paid_at", "reference", "status", "discount_pct", "created_at", "junk", ""]


@st.composite
def file_contents(draw):
    shape = draw(st.sampled_from(["csv", "csv", "json", "jsonl", "bytes"]))
    if shape == "bytes":
        return draw(st.binary(max_size=400))
    header = draw(st.one_of(
        st.lists(st.sampled_from(FIELDS), min_size=1, max_size=7),
        st.sampled_from([["external_id", "name", "email", "tags"], ["sku", "name", "list_price"],
                         ["order_no", "customer_email", "order_date", "sku", "qty", "unit_price"],
                         ["order_no", "amount", "method", "paid_at"]])))
    rows = [[_cell(draw, h) for h in header] for _ in range(draw(st.integers(0, 6)))]
    if shape == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(header)
        w.writerows(rows)
        text = buf.getvalue()
        if draw(st.booleans()):  # now and then a broken quote or a stray delimiter
            text = text.replace(draw(st.sampled_from([",", "\n", "a"])), draw(st.sampled_from(['"', ";", ",,"])), 1)
        return text.encode(draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"])), errors="replace")
    objs = [dict(zip(header, r)) for r in rows]
    if draw(st.booleans()) and objs:
        objs[0][header[0]] = draw(st.sampled_from([None, 1.5, [1], {"a": 1}, True, 10**30]))
    if shape == "json":
        return json.dumps(objs if draw(st.integers(0, 5)) else {"not": "a list"}).encode()
    return "\n".join(json.dumps(o) for o in objs).encode()


class Sandbox:
    """A fresh copy of the seeded database per example, in its own folder,
    with the inputs in the working directory."""

    def __init__(self, tmp_path: Path, monkeypatch) -> None:
        self.base = tmp_path
        self.template = tmp_path / "template.db"
        seeded(self.template)
        self.work = tmp_path / "work"
        self.dbdir = tmp_path / "dbdir"
        self.db = self.dbdir / "crm.db"
        monkeypatch.chdir(tmp_path)

    def reset(self, contents: bytes = b"external_id,name,email\nE9,Nine,nine@example.org\n") -> None:
        for d in (self.work, self.dbdir):
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir()
        os.chdir(self.work)
        shutil.copyfile(self.template, self.db)
        for name in INPUTS[:-1]:
            (self.work / name).write_bytes(contents)
        (self.work / "map.toml").write_text('[columns]\n"E-Mail" = "email"\n', encoding="utf-8")

    def listing(self) -> set[str]:
        return {str(p.relative_to(self.work)) for p in self.work.rglob("*")}


def _assert_sane(result, args, before, sandbox, inputs) -> None:
    shown = f"args={args!r}\nexit={result.exit_code}\nstderr={result.stderr[-1500:]}"
    if os.environ.get("SALESCRM_FUZZ_LOG"):  # what the fuzzer reached: command and exit code
        with open(os.environ["SALESCRM_FUZZ_LOG"], "a", encoding="utf-8") as log:
            log.write(json.dumps([args[:2], result.exit_code, result.stderr[-200:]]) + "\n")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"uncaught {type(result.exception).__name__}: {result.exception}\n{shown}")
    assert result.exit_code in EXIT_CODES, shown
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, shown
    assert "internal error" not in result.stderr, shown
    if result.exit_code != 0:
        assert snapshot(sandbox.db) == before, "a failed run changed the database\n" + shown
        assert sandbox.listing() == inputs, "a failed run left a file behind\n" + shown


@settings(max_examples=int(os.environ.get("SALESCRM_FUZZ_EXAMPLES", "200")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(args=invocations())
def test_random_arguments_to_every_command(frun, tmp_path, monkeypatch, args):
    sandbox = getattr(test_random_arguments_to_every_command, "_sandbox", None)
    if sandbox is None or sandbox.base != tmp_path:
        sandbox = Sandbox(tmp_path, monkeypatch)
        test_random_arguments_to_every_command._sandbox = sandbox
    sandbox.reset()
    before = snapshot(sandbox.db)
    inputs = sandbox.listing()
    result = frun("--db", str(sandbox.db), *args)
    _assert_sane(result, args, before, sandbox, inputs)


@settings(max_examples=int(os.environ.get("SALESCRM_FUZZ_EXAMPLES", "120")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(contents=file_contents(), entity=st.sampled_from(["customers", "products", "orders", "payments"]),
       name=st.sampled_from(INPUTS[:-1]),
       extra=st.lists(st.sampled_from(["--rejects", "--dry-run", "--create-missing", "--json", "--decimal-comma",
                                       "--force"]), unique=True, max_size=3))
def test_random_files_to_every_import(frun, tmp_path, monkeypatch, contents, entity, name, extra):
    sandbox = getattr(test_random_files_to_every_import, "_sandbox", None)
    if sandbox is None or sandbox.base != tmp_path:
        sandbox = Sandbox(tmp_path, monkeypatch)
        test_random_files_to_every_import._sandbox = sandbox
    sandbox.reset(contents)
    before = snapshot(sandbox.db)
    inputs = sandbox.listing()
    args = ["import", entity, name]
    for opt in extra:
        args += [opt, "rejects.csv"] if opt == "--rejects" else [opt]
    result = frun("--db", str(sandbox.db), *args)
    _assert_sane(result, args, before, sandbox, inputs)
    if result.exit_code == 0 and "--dry-run" in extra:
        assert snapshot(sandbox.db) == before
    if (sandbox.work / "rejects.csv").exists():
        assert (sandbox.work / "rejects.csv").stat().st_mode & 0o077 == 0


#: Inputs the fuzzer once found to end in an internal error: kept as fixed cases.
FOUND = [
    ["hook", "disable", "9223372036854775808"],                 # OverflowError from SQLite (cli/common.py)
    ["customer", "list", "--limit", str(2**70)],
    ["report", "customers", "inactive", "--sort", " "],         # IndexError in reports.common.parse_sort
    ["report", "sales", "--sort", "   "],
]


@pytest.mark.parametrize("args", FOUND, ids=lambda a: " ".join(a)[:40])
def test_inputs_the_fuzzer_found(frun, tmp_path, monkeypatch, args):
    sandbox = Sandbox(tmp_path, monkeypatch)
    sandbox.reset()
    before = snapshot(sandbox.db)
    result = frun("--db", str(sandbox.db), *args)
    _assert_sane(result, args, before, sandbox, sandbox.listing())
    assert result.exit_code in (0, 1, 2)
