"""The one place that renders results: table, csv, tsv, json, jsonl, markdown.

Data goes to stdout; messages and errors go to stderr.  On a terminal the
default is a Rich table; piped, it is CSV: plain values, no colour, no
truncation, ISO dates, money as plain decimals (``1234.50``) and stable
snake_case column names.  Rich and tabulate are imported only when a table
or Markdown is actually drawn, so that start-up stays fast.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import islice, repeat
from operator import add
from typing import IO, Any

from salescrm import money
from salescrm.errors import UsageError

FORMATS = ("table", "csv", "tsv", "json", "jsonl", "markdown")
#: A terminal table shows at most this many rows (and says how many more
#: there are): Rich takes about a millisecond a row, and fifty thousand rows
#: on a screen are for a pipe, not for reading.
TABLE_ROWS = 200
NUMERIC_KINDS = {"int", "money", "decimal", "percent"}


@dataclass(frozen=True)
class Col:
    """A column: ``key`` is the stable machine name; ``kind`` decides how the
    value is written: text, int, money (int cents), decimal, percent
    (a Decimal such as 12.5), date, datetime, bool, list."""

    key: str
    kind: str = "text"
    label: str | None = None

    @property
    def header(self) -> str:
        return self.label or self.key.replace("_", " ")


@dataclass
class Section:
    """A titled sub-table under a record (``show`` commands)."""

    key: str
    cols: Sequence[Col]
    rows: Sequence[Mapping[str, Any]]
    title: str | None = None
    empty: str = "none"


@dataclass
class Options:
    fmt: str | None = None
    quiet: bool = False
    totals: bool = False  # totals rows in machine formats too
    out: IO[str] | None = None
    extra: dict = field(default_factory=dict)


def resolve_format(fmt: str | None, stream: IO[str] | None = None) -> str:
    if fmt is None or fmt == "auto":
        stream = stream or sys.stdout
        try:
            tty = stream.isatty()
        except (AttributeError, ValueError):
            tty = False
        return "table" if tty else "csv"
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}", "choose one of " + ", ".join(FORMATS))
    return fmt


# --------------------------------------------------------------------------- values


def _text(value: Any) -> str:
    if value is None:
        return ""
    return format(value, "f") if isinstance(value, Decimal) else str(value)


def _plain_bool(value: Any) -> str:
    return "" if value is None else "true" if value else "false"


def _plain_list(value: Any) -> str:
    return "" if value is None else ",".join(str(v) for v in value)


_PLAIN: dict[str, Callable[[Any], str]] = {"money": money.fmt, "bool": _plain_bool, "list": _plain_list}


def plain_for(kind: str) -> Callable[[Any], str]:
    """How a column of this kind is written for csv/tsv/markdown (chosen
    once per column, not per cell): no separators, no symbols."""
    return _PLAIN.get(kind, _text)


#: What csv.writer writes as ``_text`` would (None as '', a str as is, an int by str()).
_AS_IS = frozenset({str, int, type(None)})


def _chunks(rows: Iterable[Mapping[str, Any]], cols: Sequence[Col], n: int = 4096) -> Iterator[list[list]]:
    """The rows ``n`` at a time, as one list of values per column."""
    rows = iter(rows)
    while chunk := list(islice(rows, n)):
        if all(type(row) is dict for row in chunk):
            yield [list(map(dict.get, chunk, repeat(c.key))) for c in cols]
        else:
            yield [[row.get(c.key) for row in chunk] for c in cols]


def _plain_rows(rows: Iterable[Mapping[str, Any]], cols: Sequence[Col]) -> Iterator[list[tuple]]:
    """The rows' cells as plain text, a few thousand rows at a time,
    converted a column at a time (a column of only text and whole numbers is
    left for csv.writer to write, as ``plain`` would)."""
    for columns in _chunks(rows, cols):
        yield list(zip(*(values if c.kind not in _PLAIN and set(map(type, values)) <= _AS_IS
                         else list(map(plain_for(c.kind), values)) for c, values in zip(cols, columns))))


def plain(value: Any, kind: str) -> str:
    """A value as text for csv/tsv/markdown: no separators, no symbols."""
    return plain_for(kind)(value)


def human(value: Any, kind: str) -> str:
    """A value for people: thousands separators, percent signs."""
    if value is None:
        return ""
    if kind == "money":
        return money.fmt_human(value)
    if kind == "int":
        return f"{int(value):,}"
    if kind == "percent":
        return f"{Decimal(value):,.1f}%"
    if kind == "bool":
        return "yes" if value else "no"
    if kind == "list":
        return ", ".join(str(v) for v in value)
    if kind == "datetime" and isinstance(value, str):
        return value.replace("T", " ").removesuffix("Z")
    if isinstance(value, Decimal):
        return f"{value:,}"
    return str(value)


def _json_int(value: Any) -> str:
    return "null" if value is None else str(int(value))


def _json_decimal(value: Any) -> str:
    return "null" if value is None else format(Decimal(value), "f")


def _json_bool(value: Any) -> str:
    return "null" if value is None else "true" if value else "false"


def _json_list(value: Any) -> str:
    return "null" if value is None else json.dumps(list(value), ensure_ascii=False)


def _json_money(value: Any) -> str:
    return "null" if value is None else money.fmt(value)  # a JSON number with exactly two decimals


def _json_other(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(str(value), ensure_ascii=False)


_JSON: dict[str, Callable[[Any], str]] = {"money": _json_money, "int": _json_int, "decimal": _json_decimal,
                                          "percent": _json_decimal, "bool": _json_bool, "list": _json_list}


def json_literal(value: Any, kind: str) -> str:
    return _JSON.get(kind, _json_other)(value)


def _json_writer(cols: Sequence[Col]) -> Callable[[Mapping[str, Any]], str]:
    """A row as one JSON object, the keys quoted and each column's writer
    chosen once."""
    parts = [(c.key, json.dumps(c.key) + ": ", _JSON.get(c.kind, _json_other)) for c in cols]

    def write(row: Mapping[str, Any]) -> str:
        return "{" + ", ".join([name + fn(row.get(key)) for key, name, fn in parts]) + "}"
    return write


def _json_objects(rows: Iterable[Mapping[str, Any]], cols: Sequence[Col]) -> Iterator[list[str]]:
    """The rows as JSON objects (``_json_writer``'s), a few thousand at a
    time, each column's members written a column at a time."""
    for columns in _chunks(rows, cols):
        members = [list(map(add, repeat(json.dumps(c.key) + ": "), map(_JSON.get(c.kind, _json_other), values)))
                   for c, values in zip(cols, columns)]
        yield ["{" + ", ".join(row) + "}" for row in zip(*members)]


def json_object(row: Mapping[str, Any], cols: Sequence[Col]) -> str:
    return _json_writer(cols)(row)


# --------------------------------------------------------------------------- rendering


def _stream(opts: Options | None) -> IO[str]:
    return (opts.out if opts and opts.out else None) or sys.stdout


def render(
    rows: Iterable[Mapping[str, Any]],
    cols: Sequence[Col],
    opts: Options | None = None,
    *,
    title: str | None = None,
    totals: Mapping[str, Any] | None = None,
    summary: Sequence[str] | None = None,
    empty: str = "no rows",
) -> None:
    """Write rows.  ``totals`` is a row drawn under a table (and written in
    machine formats only with ``opts.totals``); ``summary`` lines go under a
    terminal table only."""
    opts = opts or Options()
    out = _stream(opts)
    fmt = resolve_format(opts.fmt, out)
    if fmt == "table":
        _rich_table(list(rows), cols, out, title=title, totals=totals, summary=summary, empty=empty)
        return
    if totals is not None and opts.totals:
        rows = _chain(rows, [totals])
    if fmt in ("csv", "tsv"):
        writer = csv.writer(out, delimiter="," if fmt == "csv" else "\t", lineterminator="\n")
        writer.writerow([c.key for c in cols])
        for chunk in _plain_rows(rows, cols):
            writer.writerows(chunk)
    elif fmt == "json":
        out.write("[")
        sep = "\n"
        for objects in _json_objects(rows, cols):
            out.write(sep + ",\n".join(objects))
            sep = ",\n"
        out.write("\n]\n" if sep != "\n" else "]\n")
    elif fmt == "jsonl":
        for objects in _json_objects(rows, cols):
            out.write("\n".join(objects) + "\n")
    elif fmt == "markdown":
        from tabulate import tabulate

        cells = [(c.key, plain_for(c.kind)) for c in cols]
        data = [[fn(row.get(key)) for key, fn in cells] for row in rows]
        align = ["right" if c.kind in NUMERIC_KINDS else "left" for c in cols]
        out.write(
            tabulate(
                data,
                headers=[c.key for c in cols],
                tablefmt="github",
                disable_numparse=True,
                colalign=align,
            )
            + "\n"
        )


def _chain(a: Iterable, b: Iterable) -> Iterable:
    yield from a
    yield from b


def render_record(
    record: Mapping[str, Any],
    cols: Sequence[Col],
    opts: Options | None = None,
    *,
    title: str | None = None,
    sections: Sequence[Section] = (),
) -> None:
    """One record (``show`` commands).  JSON nests the sections under their
    keys; csv/tsv/jsonl write the record as one row (use json for the
    sections); a table or Markdown shows field/value pairs then each
    section."""
    opts = opts or Options()
    out = _stream(opts)
    fmt = resolve_format(opts.fmt, out)
    if fmt == "json" or fmt == "jsonl":
        pretty = fmt == "json"
        parts = [f"{json.dumps(c.key)}: {json_literal(record.get(c.key), c.kind)}" for c in cols]
        for s in sections:
            objs = [json_object(r, s.cols) for r in s.rows]
            if pretty and objs:
                inner = "[\n    " + ",\n    ".join(objs) + "\n  ]"
            else:
                inner = "[" + ", ".join(objs) + "]"
            parts.append(f"{json.dumps(s.key)}: {inner}")
        if pretty:
            out.write("{\n  " + ",\n  ".join(parts) + "\n}\n")
        else:
            out.write("{" + ", ".join(parts) + "}\n")
        return
    if fmt in ("csv", "tsv"):
        render([record], cols, opts)
        return
    pairs = [{"field": c.header, "value": record.get(c.key), "_kind": c.kind} for c in cols]
    if fmt == "markdown":
        from tabulate import tabulate

        if title:
            out.write(f"## {title}\n\n")
        out.write(
            tabulate(
                [[p["field"], plain(p["value"], p["_kind"])] for p in pairs],
                headers=["field", "value"],
                tablefmt="github",
                disable_numparse=True,
            )
            + "\n"
        )
        for s in sections:
            out.write(f"\n### {s.title or s.key}\n\n")
            if s.rows:
                render(s.rows, s.cols, Options(fmt="markdown", out=out))
            else:
                out.write(f"_{s.empty}_\n")
        return
    console = _console(out)
    from rich.table import Table

    grid = Table(title=title, show_header=False, box=None, pad_edge=False, title_justify="left")
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for p in pairs:
        if p["value"] in (None, "", []):
            continue
        grid.add_row(p["field"], human(p["value"], p["_kind"]))
    console.print(grid)
    for s in sections:
        console.print()
        if s.rows:
            _rich_table(list(s.rows), s.cols, out, title=s.title or s.key, console=console)
        else:
            console.print(f"[bold]{s.title or s.key}[/bold]: {s.empty}")


def _console(out: IO[str]):
    from rich.console import Console

    return Console(
        file=out,
        highlight=False,
        soft_wrap=False,
        no_color=bool(os.environ.get("NO_COLOR")) or None,
    )


def _rich_table(
    rows: list[Mapping[str, Any]],
    cols: Sequence[Col],
    out: IO[str],
    *,
    title: str | None = None,
    totals: Mapping[str, Any] | None = None,
    summary: Sequence[str] | None = None,
    empty: str = "no rows",
    console=None,
) -> None:
    console = console or _console(out)
    if not rows:
        console.print(f"[dim]{empty}[/dim]" if not title else f"[bold]{title}[/bold]: {empty}")
        return
    from rich import box
    from rich.cells import cell_len
    from rich.measure import Measurement
    from rich.table import Table

    more = len(rows) - TABLE_ROWS
    cells = [[human(row.get(c.key), c.kind) for c in cols] for row in rows[:TABLE_ROWS]]
    total = [human(totals.get(c.key), c.kind) for c in cols] if totals is not None else None
    widths = [max([cell_len(c.header), *(cell_len(r[i]) for r in cells), cell_len(total[i]) if total else 0])
              for i, c in enumerate(cols)]

    def columns(n: int) -> Table:
        table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", header_style="bold")
        for c, width in zip(cols[:n], widths):
            if c.kind in NUMERIC_KINDS:  # a number is shown whole or not at all
                table.add_column(c.header, justify="right", no_wrap=True, min_width=width)
            else:  # text folds onto more lines (CJK by cell width), down to a dozen cells
                table.add_column(c.header, justify="left", overflow="fold", min_width=min(width, 12))
        return table

    # a terminal narrower than the table: columns are left out from the right, and a note says which,
    # rather than numbers cut short (the columns' minimum widths decide: measured without the rows)
    n = len(cols)
    unbounded = console.options.update(max_width=1_000_000)  # (a measure within the width says it fits)
    while n > 1 and Measurement.get(console, unbounded, columns(n)).minimum > console.width:
        n -= 1
    table = columns(n)
    for r in cells:
        table.add_row(*r[:n])
    if total is not None:
        table.add_section()
        table.add_row(*total[:n], style="bold")
    console.print(table)
    if more > 0:
        console.print(f"[dim]{more:,} more rows not shown in a terminal table (any totals and figures shown count"
                      " them): --format csv, or a pipe, gives every row[/dim]")
    for line in summary or ():
        console.print(f"[dim]{line}[/dim]")
    if n < len(cols):
        console.print(f"[dim]not shown, for want of width: {', '.join(c.header for c in cols[n:])}"
                      " (a wider terminal, or --format csv, shows them)[/dim]")


# --------------------------------------------------------------------------- messages


def message(text: str, *, quiet: bool = False) -> None:
    """A line for the person at the terminal: stderr, never stdout."""
    if not quiet:
        print(text, file=sys.stderr)


def error(text: str) -> None:
    print(f"Error: {text}", file=sys.stderr)
