"""The output layer: every format, money and CJK."""

from __future__ import annotations

import csv
import io
import json

from salescrm.output import Col, Options, Section, render, render_record

COLS = [Col("id", "int"), Col("name"), Col("total", "money"), Col("tags", "list")]
ROWS = [
    {"id": 1, "name": "王芳", "total": 123450, "tags": ["vip", "east"]},
    {"id": 2, "name": "Ann, \"A\"", "total": -5, "tags": []},
]


def _render(fmt, **kw):
    buf = io.StringIO()
    render(ROWS, COLS, Options(fmt=fmt, out=buf), **kw)
    return buf.getvalue()


def test_csv_plain_money_and_quoting():
    rows = list(csv.DictReader(io.StringIO(_render("csv"))))
    assert rows[0] == {"id": "1", "name": "王芳", "total": "1234.50", "tags": "vip,east"}
    assert rows[1]["name"] == 'Ann, "A"' and rows[1]["total"] == "-0.05"


def test_tsv():
    lines = _render("tsv").splitlines()
    assert lines[0] == "id\tname\ttotal\ttags"


def test_json_numbers_exact():
    text = _render("json")
    assert '"total": 1234.50' in text
    data = json.loads(text)
    assert data[0]["name"] == "王芳" and data[1]["tags"] == []


def test_jsonl():
    lines = _render("jsonl").splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["id"] == 1


def test_json_empty():
    buf = io.StringIO()
    render([], COLS, Options(fmt="json", out=buf))
    assert json.loads(buf.getvalue()) == []


def test_markdown_aligns_cjk():
    text = _render("markdown")
    lines = text.splitlines()
    assert lines[0].startswith("|") and "王芳" in text


def test_table_has_separators_and_totals():
    text = _render("table", totals={"name": "total", "total": 123445})
    assert "1,234.50" in text and "1,234.45" in text
    assert "王芳" in text


def test_a_narrow_terminal_leaves_columns_out_and_never_cuts_a_number(monkeypatch):
    cols = [Col("customer"), *(Col(f"m{i}", "money") for i in range(9)), Col("note")]
    rows = [{"customer": "王芳 (上海茶行)", **{f"m{i}": 123456789 + i for i in range(9)}, "note": "x"}]
    for width, shown in ((60, 2), (400, 9)):
        monkeypatch.setenv("COLUMNS", str(width))
        buf = io.StringIO()
        render(rows, cols, Options(fmt="table", out=buf), totals={"customer": "total", "m0": 123456789})
        text = buf.getvalue()
        assert "王芳" in text and max(len(line) for line in text.splitlines()) <= width
        numbers = [f"1,234,567.{89 + i}" for i in range(9)]
        assert [n in text for n in numbers] == [True] * shown + [False] * (9 - shown)
        assert "1,234,567.8\n" not in text and "…" not in text  # (shown whole or not at all)
        if shown < 9:
            assert "not shown, for want of width: m2, m3, m4, m5, m6, m7, m8, note" in " ".join(text.split())
        else:
            assert "not shown" not in text and "note" in text


def test_totals_only_on_request_in_machine_formats():
    buf = io.StringIO()
    render(ROWS, COLS, Options(fmt="csv", out=buf), totals={"name": "total", "total": 1})
    assert "total" not in buf.getvalue().splitlines()[-1]
    buf = io.StringIO()
    render(ROWS, COLS, Options(fmt="csv", out=buf, totals=True), totals={"name": "total", "total": 1})
    assert buf.getvalue().splitlines()[-1].startswith(",total,0.01")


def test_record_json_nests_sections():
    buf = io.StringIO()
    render_record({"id": 1, "name": "王芳", "total": 5, "tags": ["a"]}, COLS, Options(fmt="json", out=buf),
                  sections=[Section("notes", [Col("text")], [{"text": "hi"}])])
    data = json.loads(buf.getvalue())
    assert data["notes"] == [{"text": "hi"}] and data["total"] == 0.05


def test_default_is_csv_when_not_a_tty():
    buf = io.StringIO()
    render(ROWS, COLS, Options(out=buf))
    assert buf.getvalue().startswith("id,name,total,tags\n")


def test_the_column_at_a_time_writers_write_each_cell_as_the_cell_writers_do():
    """csv and json convert a column at a time (a text or whole-number column
    is left to csv.writer): each cell comes out as ``plain`` and
    ``json_literal`` write it, odd values included, over several chunks."""
    from decimal import Decimal

    from salescrm.output import json_literal, plain

    cols = [Col("n", "int"), Col("t"), Col("m", "money"), Col("d", "decimal"), Col("b", "bool"),
            Col("l", "list"), Col("p", "percent")]
    odd = [{"n": 3, "t": "王芳", "m": -5, "d": Decimal("1E+2"), "b": True, "l": ["a"], "p": Decimal("12.5")},
           {"n": None, "t": None, "m": None, "d": None, "b": None, "l": None, "p": None},
           {"n": True, "t": Decimal("1E+2"), "m": 100, "d": Decimal("-0.5"), "b": False, "l": [], "p": 3},
           {"n": 2**70, "t": 7, "m": 10**15, "d": 2, "b": 0, "l": ["x", "y"], "p": Decimal("0")}]
    rows = odd * 3000  # (more than one chunk)
    buf = io.StringIO()
    render(rows, cols, Options(fmt="csv", out=buf))
    got = list(csv.reader(io.StringIO(buf.getvalue())))
    assert got[0] == [c.key for c in cols] and len(got) == len(rows) + 1
    assert got[1:5] == [[plain(r.get(c.key), c.kind) for c in cols] for r in odd]
    assert got[-4:] == got[1:5]
    assert got[3][1] == "100" and got[3][0] == "True"  # (a Decimal in a text column: never 1E+2)
    for fmt in ("json", "jsonl"):
        buf = io.StringIO()
        render(rows[:8], cols, Options(fmt=fmt, out=buf))
        text = buf.getvalue()
        objects = json.loads(text) if fmt == "json" else [json.loads(line) for line in text.splitlines()]
        want = ["{" + ", ".join(json.dumps(c.key) + ": " + json_literal(r.get(c.key), c.kind) for c in cols) + "}"
                for r in rows[:8]]
        assert objects == [json.loads(w) for w in want]
        assert (text.splitlines() if fmt == "jsonl" else text[2:-3].split(",\n")) == want


def test_a_terminal_table_shows_its_first_rows_and_says_how_many_more(monkeypatch):
    """Fifty thousand rows drawn by Rich took a minute and 340 MB: a table
    shows the first ``TABLE_ROWS`` and a note; csv still writes them all."""
    from salescrm import output

    monkeypatch.setattr(output, "TABLE_ROWS", 5)
    rows = [{"id": i, "name": f"c{i}", "total": i * 100, "tags": []} for i in range(12)]
    text = _render_rows(rows, "table", totals={"name": "total", "total": 6600})
    assert "c4" in text and "c5" not in text and "66.00" in text
    assert "7 more rows not shown in a terminal table" in " ".join(text.split())
    assert len(list(csv.DictReader(io.StringIO(_render_rows(rows, "csv"))))) == 12
    assert "more rows" not in _render_rows(rows[:5], "table")


def _render_rows(rows, fmt, **kw):
    buf = io.StringIO()
    render(rows, COLS, Options(fmt=fmt, out=buf), **kw)
    return buf.getvalue()
