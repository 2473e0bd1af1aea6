"""Imports that are safe to run every night: all-or-nothing, idempotent,
streaming.

The life of an import (``run``):

1. Take a non-blocking ``flock`` on ``<database>.import-lock``: a second
   import on the same database stops at once with ``Busy`` (exit 75).  The
   kernel frees the lock when the holder dies.
2. Hash the file (SHA-256).  If a committed run of the same entity already
   has that hash, stop: the file was imported before (``force`` imports it
   anyway; matching by natural key keeps that harmless).
3. One streaming pass reads CSV / TSV / JSON / JSON lines, maps foreign
   columns to our fields, and parses every cell strictly (money, dates,
   integers, e-mails, ...).  Each row goes, normalised, into a private
   temporary SQLite database attached to the connection (``stage``) along
   with its errors: memory stays bounded whatever the size of the file.
4. ``db.write_tx`` (``BEGIN IMMEDIATE``): rows are matched by natural key
   (customer external id or e-mail, product SKU, order number), cross-row
   and reference checks run in SQL on the stage, and then -- only when no
   row was rejected, or with ``rejects`` -- the changes are applied and the
   run (with the file's hash and counts) is recorded in ``import_runs``, in
   the same transaction.  A dry run rolls back at the very end.

Errors name the line, the column and the rule, never the value (the rows
hold personal data).  No Typer or Rich here: progress is a callback.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import fcntl
import hashlib
import io
import json
import os
import re
import sqlite3
import sys
import time
import tomllib
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from salescrm import db, validate
from salescrm.errors import (
    Busy,
    InputMissing,
    InvalidInput,
    IOFailure,
    SalesError,
    UsageError,
)

ENTITIES = ("customers", "products", "orders", "payments")
FORMATS = ("csv", "tsv", "json", "jsonl")
EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".json": "json",
              ".jsonl": "jsonl", ".ndjson": "jsonl"}
FIELD_CAP = 10_000          # characters in one cell; more is a rejected row
HARD_FIELD_LIMIT = 1 << 24  # the csv module's limit: beyond it the file is broken
MAX_JSON_OBJECT = 1 << 24   # bytes of one JSON object
SHOW_ERRORS = 20            # error lines printed; the rest are counted
BATCH = 5000
CACHE_KIB = 96 * 1024       # page cache of the import's write transaction
CACHE_ENTRIES = 100_000     # parsed values remembered per field while reading
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

Progress = Callable[[str, int, "int | None"], None]


# --------------------------------------------------------------------------- fields


@dataclass(frozen=True)
class Field:
    """One importable field.  ``level`` is "order" for the order fields that
    repeat on every line of an orders file, else "row"."""

    name: str
    kind: str = "text"  # text code email phone money int qty date datetime enum bool percent tags sku
    required: bool = False
    max_len: int = 200
    level: str = "row"
    choices: tuple[str, ...] = ()
    signed: bool = False  # money / int may be negative

    @property
    def sql_type(self) -> str:
        return "INTEGER" if self.kind in ("money", "int", "qty", "bool") else "TEXT"


class _Bad:
    """A rejected cell: the rule it broke (never its value)."""

    __slots__ = ("rule",)

    def __init__(self, rule: str) -> None:
        self.rule = rule


def unescape(value: str) -> str:
    """Undo the spreadsheet-formula escaping of our own exports: a leading
    ``'`` before ``= + - @ tab CR`` or another ``'`` is dropped."""
    if len(value) > 1 and value[0] == "'" and (value[1] in FORMULA_START or value[1] == "'"):
        return value[1:]
    return value


_INT_RE = re.compile(r"^[+-]?\d{1,15}$")
_MONEY_RE = re.compile(r"^[+-]?\d{1,13}(\.\d{1,2})?$")
_MONEY_COMMA_RE = re.compile(r"^[+-]?(\d{1,13}|\d{1,3}(\.\d{3}){1,4})(,\d{1,2})?$")
_PERCENT_RE = re.compile(r"^\d{1,3}(\.\d{1,4})?$")
_CODE_BAD = re.compile(r"[\x00-\x1f\x7f]")
_EMAIL_RE = re.compile(r"^[^@\s\x00-\x1f]+@[^@\s\x00-\x1f.]+(\.[^@\s\x00-\x1f.]+)+$")


@dataclass
class ParseOptions:
    date_format: str | None = None
    decimal_comma: bool = False
    field_cap: int = FIELD_CAP


def _text_value(raw: str, f: Field) -> Any:
    v = unicodedata.normalize("NFC", unescape(raw.strip())).strip()
    if not v:
        return None
    if "\x00" in v:
        return _Bad("contains a NUL byte")
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in v):
        return _Bad("contains control characters")
    if len(v) > f.max_len:
        return _Bad(f"is longer than {f.max_len} characters")
    return v


def converter(f: Field, opts: ParseOptions) -> Callable[[str | None], Any]:
    """A memoised parser for one field: raw text -> value, ``None`` (empty)
    or ``_Bad``.  The cache is what makes a 3M-line file fast: order fields,
    SKUs, prices and quantities repeat."""
    kind = f.kind

    def parse(raw: str) -> Any:
        if "\x00" in raw:
            return _Bad("contains a NUL byte")
        if kind in ("text", "code", "sku", "email", "phone", "tags"):
            v = _text_value(raw, f)
            if v is None or isinstance(v, _Bad) or kind == "text":
                return v
            if kind == "code":
                if _CODE_BAD.search(v):
                    return _Bad("must be one line without tabs or control characters")
                return v
            if kind == "sku":
                from salescrm import products

                try:
                    return products.check_sku(v)
                except SalesError:
                    return _Bad("not a valid SKU (1-64 letters, digits and . _ / + # -, "
                                "starting with a letter or digit)")
            if kind == "email":
                if len(v) > 254 or not _EMAIL_RE.match(v):
                    return _Bad("not a valid e-mail address (write it like name@example.com)")
                return v
            if kind == "phone":
                try:
                    return validate.phone(v)
                except SalesError:
                    return _Bad("not a valid phone number (3 to 20 digits, spaces and an "
                                "optional leading +)")
            # tags: comma-separated, each trimmed and casefolded like 'customer tag'
            tags = sorted({validate.name_key(t) for t in v.split(",") if t.strip()})
            if any(len(t) > 50 for t in tags):
                return _Bad("has a tag longer than 50 characters")
            return ",".join(tags) if tags else None
        v = raw.strip()
        if not v:
            return None
        if kind == "money":
            if opts.decimal_comma:
                if not _MONEY_COMMA_RE.match(v):
                    return _Bad("not a valid amount (with --decimal-comma: like 1234,50 or 1.234,50)")
                v = v.replace(".", "").replace(",", ".")
            elif not _MONEY_RE.match(v):
                return _Bad("not a valid amount (a plain decimal with at most two decimals, "
                            "like 1234.50: no symbols or thousands separators)")
            cents = int(Decimal(v) * 100)
            if cents < 0 and not f.signed:
                return _Bad("must not be negative")
            return cents
        if kind in ("int", "qty"):
            if not _INT_RE.match(v):
                return _Bad("not a whole number")
            n = int(v)
            if kind == "qty" and n <= 0:
                return _Bad("must be a whole number greater than 0")
            if n < 0 and not f.signed:
                return _Bad("must not be negative")
            if abs(n) > 1_000_000_000:
                return _Bad("is too large")
            return n
        if kind == "percent":
            p = v.removesuffix("%").strip()
            if not _PERCENT_RE.match(p) or Decimal(p) > 100:
                return _Bad("not a percentage from 0 to 100 (like 10 or 12.5%)")
            return format(Decimal(p).normalize(), "f")
        if kind == "enum":
            low = v.lower()
            if low not in f.choices:
                return _Bad("must be one of " + ", ".join(f.choices))
            return low
        if kind == "bool":
            low = v.lower()
            if low in ("1", "true", "yes", "y", "on"):
                return 1
            if low in ("0", "false", "no", "n", "off"):
                return 0
            return _Bad("must be true or false")
        if kind == "date":
            return _parse_date(v, opts.date_format)
        if kind == "datetime":
            return _parse_datetime(v, opts.date_format)
        raise AssertionError(kind)  # pragma: no cover

    cache: dict[str | None, Any] = {None: None, "": None}

    def convert(raw: str | None) -> Any:
        try:
            return cache[raw]
        except KeyError:
            pass
        value = parse(raw)  # type: ignore[arg-type]
        if len(cache) > CACHE_ENTRIES:
            cache.clear()
            cache[None] = cache[""] = None
        cache[raw] = value
        return value

    return convert


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _parse_date(v: str, fmt: str | None) -> Any:
    if _ISO_DATE.match(v):
        try:
            return datetime.strptime(v, "%Y-%m-%d").date().isoformat()
        except ValueError:
            return _Bad("not a real date")
    if fmt:
        try:
            return datetime.strptime(v, fmt).date().isoformat()
        except ValueError:
            return _Bad(f"not a date in the format {fmt}")
    return _Bad("not a date (use YYYY-MM-DD, or give the file's format with --date-format)")


def _parse_datetime(v: str, fmt: str | None) -> Any:
    dt: datetime | None = None
    if fmt:
        try:
            dt = datetime.strptime(v, fmt)
        except ValueError:
            dt = None
    if dt is None:
        try:
            if _ISO_DATE.match(v):
                dt = datetime.strptime(v, "%Y-%m-%d")
            else:
                dt = datetime.fromisoformat(v.replace("Z", "+00:00").replace(" ", "T", 1))
        except ValueError:
            hint = f" or {fmt}" if fmt else ", or give the file's format with --date-format"
            return _Bad(f"not a date-time (use ISO 8601 like 2026-03-01T14:30:00Z{hint})")
    if dt.tzinfo is None:
        dt = dt.astimezone()  # a time without a zone is local time, as everywhere in salescrm
    return dt.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# --------------------------------------------------------------------------- mapping


@dataclass
class Mapping:
    """Foreign column -> our field ('_' skips the column), constants for
    fields the file lacks, and reading options a mapping file may set."""

    columns: dict[str, str] = field(default_factory=dict)
    constants: dict[str, str] = field(default_factory=dict)
    joins: dict[str, list[str]] = field(default_factory=dict)  # field <- columns joined with a space
    skip: set[str] = field(default_factory=set)
    date_format: str | None = None
    decimal_comma: bool | None = None
    encoding: str | None = None
    delimiter: str | None = None
    format: str | None = None
    entity: str | None = None

    def merged(self, other: Mapping) -> Mapping:
        """``other`` (the command line) wins over self (the mapping file)."""
        return Mapping(
            columns={**self.columns, **other.columns},
            constants={**self.constants, **other.constants},
            joins={**self.joins, **other.joins},
            skip=self.skip | other.skip,
            date_format=other.date_format or self.date_format,
            decimal_comma=other.decimal_comma if other.decimal_comma is not None else self.decimal_comma,
            encoding=other.encoding or self.encoding,
            delimiter=other.delimiter or self.delimiter,
            format=other.format or self.format,
            entity=other.entity or self.entity,
        )


def parse_map_options(items: list[str]) -> dict[str, str]:
    """``["E-mail=email", "Fax=_"]`` -> ``{"E-mail": "email", "Fax": "_"}``."""
    out: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"--map {item!r} is not COLUMN=FIELD", "for example --map 'E-mail=email'")
        col, _, target = item.rpartition("=")
        col, target = col.strip(), target.strip()
        if not col:
            raise UsageError(f"--map {item!r} names no column", "for example --map 'E-mail=email'")
        out[col] = target or "_"
    return out


_MAP_KEYS = {"columns", "constants", "join", "skip", "date_format", "decimal_comma", "encoding",
             "delimiter", "format", "entity"}


def load_map_file(path: Path) -> Mapping:
    """Read a TOML mapping file::

        entity = "orders"                  # optional: the file is for this entity
        date_format = "%d/%m/%Y %H:%M"     # strptime format of the file's dates
        skip = ["Fax", "Notes"]            # columns to ignore
        [columns]                          # foreign column = our field ("_" skips)
        "E-mail" = "email"
        [constants]                        # fields the file lacks, the same for every row
        channel = "online"
        [join]                             # a field made of several columns, joined by a space
        name = ["First name", "Last name"]
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputMissing(f"no such mapping file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputMissing(f"cannot read the mapping file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"the mapping file {path} is not valid TOML: {exc}") from None
    unknown = set(data) - _MAP_KEYS
    if unknown:
        raise InvalidInput(f"the mapping file {path} has unknown keys: {', '.join(sorted(unknown))}",
                           "allowed: " + ", ".join(sorted(_MAP_KEYS)))

    def strings(key: str) -> dict[str, str]:
        table = data.get(key, {})
        if not isinstance(table, dict) or not all(isinstance(v, (str, int, float, bool)) for v in table.values()):
            raise InvalidInput(f"[{key}] in {path} must be a table of names to text")
        return {str(k).strip(): (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in table.items()}

    joins = data.get("join", {})
    if not isinstance(joins, dict) or not all(
            isinstance(v, list) and v and all(isinstance(c, str) for c in v) for v in joins.values()):
        raise InvalidInput(f"[join] in {path} must name, for each field, a list of columns")
    skip = data.get("skip", [])
    if not isinstance(skip, list) or not all(isinstance(s, str) for s in skip):
        raise InvalidInput(f"skip in {path} must be a list of column names")
    for key in ("date_format", "encoding", "delimiter", "format", "entity"):
        if key in data and not isinstance(data[key], str):
            raise InvalidInput(f"{key} in {path} must be text")
    if "decimal_comma" in data and not isinstance(data["decimal_comma"], bool):
        raise InvalidInput(f"decimal_comma in {path} must be true or false")
    return Mapping(columns=strings("columns"), constants=strings("constants"),
                   joins={str(k).strip(): [c.strip() for c in v] for k, v in joins.items()},
                   skip={s.strip() for s in skip}, date_format=data.get("date_format"),
                   decimal_comma=data.get("decimal_comma"), encoding=data.get("encoding"),
                   delimiter=data.get("delimiter"), format=data.get("format"),
                   entity=data.get("entity"))


# --------------------------------------------------------------------------- reading


class _Tap(io.BufferedIOBase):
    """Wraps the binary input: hashes it, counts bytes and newlines (so a
    decode error can name its line), spots NUL bytes, reports progress."""

    def __init__(self, raw: IO[bytes], total: int | None, progress: Progress | None) -> None:
        super().__init__()
        self.raw = raw
        self.sha = hashlib.sha256()
        self.done = 0
        self.total = total
        self.progress = progress
        self.next_report = 0
        self.lines_before_last = 0
        self.last = b""
        self.nul_seen = False

    def readable(self) -> bool:
        return True

    def _got(self, chunk: bytes) -> bytes:
        self.lines_before_last += self.last.count(b"\n")
        self.last = chunk
        if not chunk and self.progress is not None:
            self.progress("reading", self.done, self.total or self.done)
        if chunk:
            self.sha.update(chunk)
            self.done += len(chunk)
            if not self.nul_seen and b"\x00" in chunk:
                self.nul_seen = True
            if self.progress is not None and self.done >= self.next_report:
                self.progress("reading", self.done, self.total)
                self.next_report = self.done + (1 << 20)
        return chunk

    def read(self, size: int | None = -1) -> bytes:
        return self._got(self.raw.read(size if size is not None and size >= 0 else -1))

    def read1(self, size: int = -1) -> bytes:
        reader = getattr(self.raw, "read1", None)
        chunk = reader(size if size > 0 else 1 << 16) if reader else self.raw.read(size if size > 0 else 1 << 16)
        return self._got(chunk)

    def line_of(self, exc: UnicodeDecodeError) -> int:
        """The line holding the byte a decoder refused."""
        obj = exc.object if isinstance(exc.object, (bytes, bytearray)) else b""
        offset = exc.start - (len(obj) - len(self.last))
        offset = max(0, min(offset, len(self.last)))
        return self.lines_before_last + self.last[:offset].count(b"\n") + 1

    def drain(self) -> None:
        """Read (and hash) what is left, e.g. after a JSON array's end."""
        while self.read(1 << 20):
            pass


def _decode_error(tap: _Tap, exc: UnicodeDecodeError, encoding: str) -> InvalidInput:
    line = tap.line_of(exc)
    obj = exc.object if isinstance(exc.object, (bytes, bytearray)) else b""
    byte = obj[exc.start] if exc.start < len(obj) else 0
    hint = "give the file's encoding with --encoding, e.g. --encoding cp1252 (Excel on Windows) or latin-1"
    if line == 1 and obj[:2] in (b"\xff\xfe", b"\xfe\xff"):
        hint = "the file looks like UTF-16: try --encoding utf-16"
    return InvalidInput(f"line {line} is not valid {encoding} (byte 0x{byte:02x})", hint)


@dataclass
class Row:
    line: int
    cells: list[str | None]
    error: tuple[str | None, str] | None = None  # (column, rule) that rejects the whole row
    raw: Any = None  # for --rejects: the cells or the JSON object as read


class Reader:
    """Rows of a CSV/TSV/JSON/JSON-lines file as lists aligned with
    ``self.header`` (which a JSON file may grow as new keys appear)."""

    def __init__(self, tap: _Tap, fmt: str, encoding: str, delimiter: str | None, field_cap: int,
                 keep_raw: bool) -> None:
        self.tap = tap
        self.fmt = fmt
        self.encoding = encoding
        self.delimiter = delimiter
        self.field_cap = field_cap
        self.keep_raw = keep_raw
        self.header: list[str] = []
        self.header_line = 1
        self.on_new_column: Callable[[str, int], None] | None = None
        self.text = io.TextIOWrapper(tap, encoding=encoding, errors="strict", newline="")
        self.text._CHUNK_SIZE = 1 << 16  # type: ignore[attr-defined]
        self.nul_check = self.nul_possible()
        # a JSON array may hold many objects on one line: its rows are numbered by record
        self.unit = "record" if fmt == "json" else "line"

    def nul_possible(self) -> bool:
        return self.tap.nul_seen or codecs.lookup(self.encoding).name.startswith(("utf-16", "utf-32"))

    def rows(self) -> Iterator[Row]:
        try:
            if self.fmt in ("csv", "tsv"):
                yield from self._csv()
            elif self.fmt == "jsonl":
                yield from self._jsonl()
            else:
                yield from self._json_array()
        except UnicodeDecodeError as exc:
            raise _decode_error(self.tap, exc, self.encoding) from None

    # -- CSV / TSV

    def _csv(self) -> Iterator[Row]:
        delimiter = self.delimiter or ("\t" if self.fmt == "tsv" else ",")
        old_limit = csv.field_size_limit(HARD_FIELD_LIMIT)
        try:
            reader = csv.reader(self.text, delimiter=delimiter, strict=True)
            try:
                header = next(reader)
            except StopIteration:
                raise InvalidInput("the file is empty: it has no header row",
                                   "the first line must name the columns") from None
            except csv.Error as exc:
                raise InvalidInput(f"line 1: the header is not valid CSV ({exc})") from None
            self.header_line = 1
            names = [h.strip() for h in header]
            if not any(names):
                raise InvalidInput("line 1: the header row is empty", "the first line must name the columns")
            self.header = names
            n = len(names)
            cap = self.field_cap
            prev = reader.line_num
            keep = self.keep_raw
            while True:
                try:
                    cells = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    start = prev + 1
                    msg = str(exc)
                    if "field larger" in msg:
                        msg = "a field is impossibly large: probably a quote that is never closed"
                    elif "unexpected end of data" in msg:
                        msg = "a quoted field is never closed (the file ends inside quotes)"
                    raise InvalidInput(f"line {start}: the file is not valid CSV: {msg}",
                                       "check the quoting, or give --delimiter / --format") from None
                start = prev + 1
                prev = reader.line_num
                if not any(cells):
                    continue  # blank line, or a row of empty cells
                raw = cells if keep else None
                if len(cells) != n:
                    yield Row(start, [], (None, f"has {len(cells)} fields but the header has {n}"), raw)
                    continue
                if max(map(len, cells)) > cap:
                    col = next(names[i] for i, c in enumerate(cells) if len(c) > cap)
                    yield Row(start, [], (col, f"is longer than {cap} characters (the size cap)"), raw)
                    continue
                if self.nul_check or (self.tap.nul_seen and self._enable_nul()):
                    bad = [names[i] for i, c in enumerate(cells) if "\x00" in c]
                    if bad:
                        yield Row(start, [], (bad[0], "contains a NUL byte"), raw)
                        continue
                yield Row(start, cells, None, raw)
        finally:
            csv.field_size_limit(old_limit)

    def _enable_nul(self) -> bool:
        self.nul_check = True
        return True

    # -- JSON

    def _decoder(self) -> json.JSONDecoder:
        def constant(name: str) -> Any:
            raise ValueError(f"{name} is not allowed")

        def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for k, v in items:
                if k in out:
                    out.setdefault("\x00dup", k)
                out[k] = v
            return out

        return json.JSONDecoder(parse_float=str, parse_int=str, parse_constant=constant,
                                object_pairs_hook=pairs)

    def _object_row(self, line: int, obj: Any) -> Row:
        raw = obj if self.keep_raw else None
        if not isinstance(obj, dict):
            return Row(line, [], (None, "is not a JSON object"), raw)
        if "\x00dup" in obj:
            dup = obj.pop("\x00dup")
            return Row(line, [], (str(dup), "appears twice in the object"), raw)
        index = self._index
        for key in obj:
            if key not in index:
                name = key.strip()
                if self.on_new_column is not None:
                    self.on_new_column(name, line)
                index[key] = len(self.header)
                self.header.append(name)
        cells: list[str | None] = [None] * len(self.header)
        cap = self.field_cap
        for key, value in obj.items():
            if value is None:
                continue
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif not isinstance(value, str):
                return Row(line, [], (key, "holds a nested value (a list or an object)"), raw)
            if len(value) > cap:
                return Row(line, [], (key, f"is longer than {cap} characters (the size cap)"), raw)
            cells[index[key]] = value
        return Row(line, cells, None, raw)

    @property
    def _index(self) -> dict[str, int]:
        idx = getattr(self, "_idx", None)
        if idx is None:
            idx = self._idx = {}
        return idx

    def _jsonl(self) -> Iterator[Row]:
        dec = self._decoder()
        for n, line in enumerate(self.text, start=1):
            s = line.strip()
            if not s:
                continue
            if len(s) > MAX_JSON_OBJECT:
                raise InvalidInput(f"line {n}: the line is too long for one JSON object")
            try:
                obj, end = dec.raw_decode(s)
            except (json.JSONDecodeError, ValueError) as exc:
                msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
                yield Row(n, [], (None, f"is not valid JSON ({msg})"), {"_text": "(unreadable)"} if self.keep_raw else None)
                continue
            if s[end:].strip():
                yield Row(n, [], (None, "holds more than one JSON value"), None)
                continue
            yield self._object_row(n, obj)

    def _json_array(self) -> Iterator[Row]:
        dec = self._decoder()
        buf = ""
        pos = 0
        line = 1
        eof = False
        ws = re.compile(r"[ \t\r\n]*")

        def fill() -> bool:
            nonlocal buf, pos, eof
            chunk = self.text.read(1 << 16)
            if not chunk:
                eof = True
                return False
            buf = buf[pos:] + chunk
            pos = 0
            return True

        def skip() -> None:
            nonlocal pos, line
            while True:
                m = ws.match(buf, pos)
                end = m.end() if m else pos
                line += buf.count("\n", pos, end)
                pos = end
                if pos < len(buf) or eof or not fill():
                    return

        skip()
        if pos >= len(buf) or buf[pos] != "[":
            if pos >= len(buf):
                raise InvalidInput("the file is empty: a JSON file must hold an array of objects")
            raise InvalidInput(f"line {line}: a JSON file must hold an array of objects",
                               "for one object per line use --format jsonl")
        pos += 1
        first = True
        record = 0
        while True:
            skip()
            if pos >= len(buf):
                raise InvalidInput(f"line {line}: the JSON array is never closed")
            if buf[pos] == "]":
                pos += 1
                break
            if not first:
                if buf[pos] != ",":
                    raise InvalidInput(f"line {line}: expected ',' or ']' in the JSON array")
                pos += 1
                skip()
            first = False
            while True:
                try:
                    obj, end = dec.raw_decode(buf, pos)
                    break
                except (json.JSONDecodeError, ValueError) as exc:
                    if not eof and len(buf) - pos < MAX_JSON_OBJECT and fill():
                        continue
                    msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
                    raise InvalidInput(f"line {line}: not valid JSON ({msg})",
                                       "the file must be one JSON array of objects") from None
            line += buf.count("\n", pos, end)
            pos = end
            record += 1
            yield self._object_row(record, obj)
        skip()
        if pos < len(buf):
            raise InvalidInput(f"line {line}: there is more after the JSON array's end")
        self.tap.drain()


# --------------------------------------------------------------------------- adapters


@dataclass
class Ctx:
    """What an adapter needs while matching and applying."""

    conn: sqlite3.Connection
    present: list[str]            # our fields the file (or a constant) gives
    create_missing: bool
    apply_promotions: bool = False  # orders: price new orders with today's promotions (else: as in the file)
    counts: dict[str, int] = field(default_factory=dict)
    created: dict[str, int] = field(default_factory=dict)
    progress: Progress | None = None
    wanted: set[str] = field(default_factory=set)  # events that have enabled hooks
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def bump(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def emit(self, event: str, payload: dict[str, Any]) -> None:
        """Queue a hook event, fired by the caller after the commit."""
        if event in self.wanted:
            self.events.append((event, payload))


class Adapter:
    """One importable entity: its fields, natural key checks and apply."""

    name = ""
    fields: tuple[Field, ...] = ()
    ignored: tuple[str, ...] = ()  # columns of our own exports that are read-only
    group_by: str | None = None  # orders: rows are lines grouped into orders

    def field_map(self) -> dict[str, Field]:
        return {f.name: f for f in self.fields}

    def check_columns(self, present: set[str]) -> None:
        """File-level: are the fields needed to match and insert there?"""

    def resolve(self, ctx: Ctx) -> None:
        """Inside the transaction: match rows to records, reject those that
        conflict (``_reject``).  Runs before anything is written."""

    def apply(self, ctx: Ctx) -> None:
        """Inside the transaction: write the valid rows."""
        raise NotImplementedError


def _reject_sql(conn: sqlite3.Connection, select: str, params: tuple = ()) -> int:
    """``select`` yields (line, field, rule) of rows to reject; marks them bad."""
    conn.execute("DELETE FROM stage.pending")
    conn.execute(f"INSERT INTO stage.pending (line, field, rule) {select}", params)
    n = conn.execute("SELECT count(*) FROM stage.pending").fetchone()[0]
    if n:
        conn.execute("INSERT INTO stage.errors (line, field, rule) SELECT line, field, rule FROM stage.pending")
        conn.execute("UPDATE stage.rows SET bad = 1 WHERE line IN (SELECT line FROM stage.pending)")
    return n


def _duplicates(conn: sqlite3.Connection, column: str, label: str, field: str | None = None) -> int:
    """Reject later rows that repeat a key of an earlier valid row."""
    return _reject_sql(conn, f"""
        SELECT r.line, '{field or column}', 'the same {label} as line ' || d.first
        FROM stage.rows r JOIN (
            SELECT {column} AS k, min(line) AS first FROM stage.rows
            WHERE NOT bad AND {column} IS NOT NULL GROUP BY {column} HAVING count(*) > 1
        ) d ON r.{column} = d.k
        WHERE NOT r.bad AND r.line > d.first""")


def _safe_message(exc: SalesError, raw: list[Any]) -> str:
    """A library's refusal, unless it quotes one of the row's personal
    values (``raw``): then only the kind of refusal."""
    msg = exc.message
    for v in raw:
        if isinstance(v, str) and len(v.strip()) >= 2 and v.strip() in msg:
            return f"refused ({type(exc).__name__})"
    return msg


class CustomersAdapter(Adapter):
    name = "customers"
    fields = (
        Field("external_id", "code", max_len=100),
        Field("name", "text", max_len=200),
        Field("company", "text"),
        Field("email", "email", max_len=254),
        Field("phone", "phone", max_len=40),
        Field("address", "text", max_len=500),
        Field("city", "text"),
        Field("region", "text"),
        Field("country", "text"),
        Field("segment", "text"),
        Field("source", "text"),
        Field("owner", "text"),
        Field("notes", "text", max_len=10_000),
        Field("credit_limit", "money"),
        Field("payment_terms_days", "int"),
        Field("tags", "tags", max_len=2000),
        Field("created_at", "datetime"),
    )
    ignored = ("id", "updated_at", "archived_at")

    def check_columns(self, present: set[str]) -> None:
        if not {"email", "external_id"} & present:
            raise InvalidInput("the file has no email or external_id column: rows cannot be matched",
                               "map one with --map 'COLUMN=email' or --map 'COLUMN=external_id'")

    def resolve(self, ctx: Ctx) -> None:
        conn = ctx.conn
        has_ext = "external_id" in ctx.present
        has_email = "email" in ctx.present
        _reject_sql(conn, """SELECT line, 'email', 'is required to match the row (or give an external_id)'
            FROM stage.rows WHERE NOT bad AND coalesce(external_id, email_key) IS NULL""")
        if has_ext:
            _duplicates(conn, "external_id", "external_id")
            conn.execute("""UPDATE stage.rows SET target = (SELECT c.id FROM main.customers c
                            WHERE c.external_id = stage.rows.external_id)
                            WHERE NOT bad AND external_id IS NOT NULL""")
        if has_email:
            _duplicates(conn, "email_key", "e-mail", "email")
            # no external id (or an unknown one): match by e-mail
            conn.execute("""UPDATE stage.rows SET target = (SELECT c.id FROM main.customers c
                            WHERE c.email_key = stage.rows.email_key)
                            WHERE NOT bad AND target IS NULL AND email_key IS NOT NULL""")
            _reject_sql(conn, """SELECT r.line, 'email', 'already belongs to another customer'
                FROM stage.rows r JOIN main.customers c ON c.email_key = r.email_key
                WHERE NOT r.bad AND r.target IS NOT NULL AND c.id <> r.target""")
        if has_ext and has_email:
            _reject_sql(conn, """SELECT r.line, 'external_id',
                    'differs from the external_id of the customer with this e-mail'
                FROM stage.rows r JOIN main.customers c ON c.id = r.target
                WHERE NOT r.bad AND r.external_id IS NOT NULL AND c.external_id IS NOT NULL
                  AND c.external_id <> r.external_id""")
        if "name" in ctx.present:
            _reject_sql(conn, """SELECT line, 'name', 'is required' FROM stage.rows
                WHERE NOT bad AND name IS NULL""")
        else:
            _reject_sql(conn, """SELECT line, 'name', 'is required for a new customer'
                FROM stage.rows WHERE NOT bad AND target IS NULL""")

    PERSONAL = ("name", "company", "email", "phone", "address", "notes")

    def apply(self, ctx: Ctx) -> None:
        """Existing customers through ``customers.edit``, one savepoint each;
        new ones in bulk (``_insert_new``)."""
        from salescrm import customers

        conn = ctx.conn
        fields = [f for f in ctx.present if f not in ("tags", "created_at")]
        cols = ", ".join(["line", "target", "raw"] + [_col(f) for f in ctx.present])
        total = conn.execute("SELECT count(*) FROM stage.rows WHERE NOT bad").fetchone()[0]
        rows = conn.execute(f"SELECT {cols} FROM stage.rows WHERE NOT bad AND target IS NOT NULL"
                            f" ORDER BY line").fetchall()
        for n, r in enumerate(rows, start=1):
            values = {f: r[_col(f)] for f in fields}
            tags = r["tags"].split(",") if "tags" in ctx.present and r["tags"] else []
            conn.execute("SAVEPOINT import_row")
            try:
                changed = customers.edit(conn, r["target"], values,
                                         set_tags=tags if "tags" in ctx.present else None)
                ctx.bump("updated" if changed else "unchanged")
                conn.execute("RELEASE import_row")
            except SalesError as exc:
                conn.execute("ROLLBACK TO import_row")
                conn.execute("RELEASE import_row")
                _row_refused(conn, r["line"], _safe_message(exc, self._personal(values, tags)))
            if ctx.progress is not None and n % 1000 == 0:
                ctx.progress("applying", n, total)
        self._insert_new(ctx, fields, cols, done=len(rows), total=total)

    def _personal(self, values: dict[str, Any], tags: list[str]) -> list[Any]:
        return [values.get(k) for k in self.PERSONAL] + list(tags)

    def _insert_new(self, ctx: Ctx, fields: list[str], cols: str, *, done: int, total: int) -> None:
        """New customers in bulk: each row validated and normalised by
        ``customers.prepare_new`` (exactly what ``customers.add`` writes),
        ids allocated under the write lock, then ``executemany`` per batch
        of customers, tags and audit rows (one per customer, as the orders
        bulk path does; the run itself is audited by ``_apply``).  Matching
        in ``resolve`` already refused e-mails and external ids that exist;
        should a batch still break a UNIQUE constraint, that batch is redone
        row by row through ``customers.add``, which says which row and why."""
        from salescrm import customers

        conn = ctx.conn
        has_tags = "tags" in ctx.present
        has_created = "created_at" in ctx.present
        now, user, command = db.now_iso(), db.os_user(), db.current_command
        next_id = conn.execute("SELECT coalesce(max(id), 0) FROM customers").fetchone()[0]
        insert: str | None = None
        refused: list[tuple[int, str]] = []
        inserted = 0
        cur = conn.execute(f"SELECT {cols} FROM stage.rows WHERE NOT bad AND target IS NULL ORDER BY line")
        while True:
            chunk = cur.fetchmany(BATCH)
            if not chunk:
                break
            prepared: list[tuple[sqlite3.Row, dict[str, Any], list[str], list[str]]] = []
            for r in chunk:
                values = {f: r[_col(f)] for f in fields}
                tags = r["tags"].split(",") if has_tags and r["tags"] else []
                try:
                    row, clean_tags = customers.prepare_new(values.pop("name"), tags=tags, **values)
                except SalesError as exc:
                    refused.append((r["line"], _safe_message(exc, self._personal({**values, "name": r["name"]},
                                                                                  tags))))
                    continue
                row["created_at"] = (r["created_at"] if has_created and r["created_at"] else now)
                row["updated_at"] = now
                prepared.append((r, row, clean_tags, tags))
            if not prepared:
                continue
            columns = list(prepared[0][1])
            if insert is None:
                insert = (f"INSERT INTO customers (id, {', '.join(columns)})"
                          f" VALUES (?, {', '.join('?' * len(columns))})")
            first_id = next_id
            ids = range(first_id + 1, first_id + 1 + len(prepared))
            conn.execute("SAVEPOINT import_batch")
            try:
                conn.executemany(insert, [(cid, *[row[c] for c in columns])
                                          for cid, (_, row, _, _) in zip(ids, prepared)])
                conn.execute("RELEASE import_batch")
            except sqlite3.IntegrityError:
                conn.execute("ROLLBACK TO import_batch")
                conn.execute("RELEASE import_batch")
                made = self._one_by_one(ctx, prepared, refused)
            else:
                made = [(cid, r, clean_tags) for cid, (r, _, clean_tags, _) in zip(ids, prepared)]
                conn.executemany("INSERT INTO customer_tags (customer_id, tag) VALUES (?, ?)",
                                 [(cid, t) for cid, _, clean_tags in made for t in clean_tags])
                conn.executemany("INSERT INTO audit (at, os_user, command, action, entity, entity_id)"
                                 " VALUES (?, ?, ?, 'create', 'customer', ?)",
                                 [(now, user, command, str(cid)) for cid, _, _ in made])
            if made:
                next_id = max(next_id, max(cid for cid, _, _ in made))
            for cid, _, _ in made:
                ctx.emit("customer.created", {"customer_id": cid})
            inserted += len(made)
            if ctx.progress is not None:
                ctx.progress("applying", done + inserted + len(refused), total)
            db.pause_point("import-mid-apply")
        ctx.bump("inserted", inserted)
        for line, rule in refused:
            _row_refused(conn, line, rule)

    def _one_by_one(self, ctx: Ctx, prepared: list, refused: list[tuple[int, str]]) -> list[tuple]:
        """A batch that broke a constraint: row by row through ``customers.add``."""
        from salescrm import customers

        conn = ctx.conn
        made = []
        for r, row, clean_tags, tags in prepared:
            values = {f: row[f] for f in customers.FIELDS if f in row and f != "name"}
            conn.execute("SAVEPOINT import_row")
            try:
                cid = customers.add(conn, row["name"], tags=clean_tags, **values)
                conn.execute("UPDATE customers SET created_at = ? WHERE id = ?", (row["created_at"], cid))
                conn.execute("RELEASE import_row")
                made.append((cid, r, clean_tags))
            except SalesError as exc:
                conn.execute("ROLLBACK TO import_row")
                conn.execute("RELEASE import_row")
                refused.append((r["line"], _safe_message(exc, self._personal(row, tags))))
        return made


def _row_refused(conn: sqlite3.Connection, line: int, rule: str) -> None:
    conn.execute("INSERT INTO stage.errors (line, field, rule) VALUES (?, NULL, ?)", (line, rule))
    conn.execute("UPDATE stage.rows SET bad = 1 WHERE line = ?", (line,))


def _col(name: str) -> str:
    """Stage column of a field (names are ours, never a user's)."""
    return "f_" + name if name in ("line", "bad", "target", "raw", "grp", "n", "cust") else name


class ProductsAdapter(Adapter):
    name = "products"
    fields = (
        Field("sku", "sku", max_len=64),
        Field("name", "text", max_len=200),
        Field("category", "text", max_len=100),
        Field("kind", "enum", choices=("goods", "service")),
        Field("unit", "text", max_len=20),
        Field("unit_cost", "money"),
        Field("list_price", "money"),
        Field("tax_rate", "percent"),
        Field("reorder_level", "int"),
        Field("active", "bool"),
    )
    ignored = ("id", "on_hand", "reserved", "available", "created_at", "updated_at")

    def check_columns(self, present: set[str]) -> None:
        if "sku" not in present:
            raise InvalidInput("the file has no sku column: rows cannot be matched",
                               "map one with --map 'COLUMN=sku'")

    def resolve(self, ctx: Ctx) -> None:
        conn = ctx.conn
        _reject_sql(conn, "SELECT line, 'sku', 'is required' FROM stage.rows WHERE NOT bad AND sku IS NULL")
        _duplicates(conn, "sku_key", "SKU", "sku")
        conn.execute("""UPDATE stage.rows SET target = (SELECT p.id FROM main.products p
                        WHERE p.sku_key = stage.rows.sku_key) WHERE NOT bad""")
        for f in ("name", "list_price"):
            if f in ctx.present:
                _reject_sql(conn, f"SELECT line, '{f}', 'is required' FROM stage.rows WHERE NOT bad AND {f} IS NULL")
            else:
                _reject_sql(conn, f"""SELECT line, '{f}', 'is required for a new product'
                    FROM stage.rows WHERE NOT bad AND target IS NULL""")
        if "kind" in ctx.present:
            _reject_sql(conn, """SELECT r.line, 'kind', 'cannot become a service while it has stock'
                FROM stage.rows r JOIN main.products p ON p.id = r.target
                WHERE NOT r.bad AND r.kind = 'service' AND (p.on_hand <> 0 OR p.reserved <> 0)""")

    # our field -> products.edit keyword
    EDIT_KEYS = {"name": "name", "category": "category", "kind": "kind", "unit": "unit",
                 "unit_cost": "cost", "list_price": "price", "tax_rate": "tax_rate",
                 "reorder_level": "reorder_level", "active": "active", "sku": "sku"}

    def apply(self, ctx: Ctx) -> None:
        from salescrm import products

        conn = ctx.conn
        present = ctx.present
        cols = ", ".join(["line", "target", "raw"] + [_col(f) for f in present])
        rows = conn.execute(f"SELECT {cols} FROM stage.rows WHERE NOT bad ORDER BY line").fetchall()
        for n, r in enumerate(rows, start=1):
            conn.execute("SAVEPOINT import_row")
            try:
                if r["target"] is None:
                    kw: dict[str, Any] = {"sku": r["sku"], "name": r["name"], "price": r["list_price"]}
                    for f, k in (("unit_cost", "cost"), ("category", "category"), ("tax_rate", "tax_rate"),
                                 ("kind", "kind"), ("unit", "unit"), ("reorder_level", "reorder_level")):
                        if f in present and r[f] is not None:
                            kw[k] = r[f]
                    pid = products.add(conn, **kw)
                    if "active" in present and r["active"] == 0:
                        conn.execute("UPDATE products SET active = 0 WHERE id = ?", (pid,))
                    ctx.bump("inserted")
                else:
                    cur = conn.execute("SELECT * FROM products WHERE id = ?", (r["target"],)).fetchone()
                    changes: dict[str, Any] = {}
                    for f in present:
                        if f == "sku":
                            continue  # matched by it, case-insensitively: the stored spelling stays
                        new = r[f]
                        old = cur[f]
                        if f == "tax_rate":
                            new = new if new is not None else "0"
                        if new is None and f in ("unit_cost", "reorder_level"):
                            new = 0
                        if new is None and f == "unit":
                            new = "pcs"
                        if new is None and f in ("kind", "active"):
                            continue
                        if new != old:
                            # products.edit ignores None: clear text with ""
                            changes[self.EDIT_KEYS[f]] = "" if new is None else new
                    if changes:
                        products.edit(conn, cur["sku"], **changes)
                        ctx.bump("updated")
                    else:
                        ctx.bump("unchanged")
                conn.execute("RELEASE import_row")
            except SalesError as exc:
                conn.execute("ROLLBACK TO import_row")
                conn.execute("RELEASE import_row")
                _row_refused(conn, r["line"], _safe_message(exc, []))
            if ctx.progress is not None and n % 1000 == 0:
                ctx.progress("applying", n, len(rows))


def _reject_groups(conn: sqlite3.Connection, select: str, params: tuple = ()) -> int:
    """``select`` yields (grp, field, rule) of orders to reject: the error goes
    on the order's first line; ``_propagate`` marks its other lines."""
    conn.execute("DELETE FROM stage.pending")
    conn.execute(f"""WITH s(grp, f, r) AS ({select})
                     INSERT INTO stage.pending (line, field, rule)
                     SELECT g.first_line, s.f, s.r FROM s JOIN stage.groups g ON g.grp = s.grp""", params)
    n = conn.execute("SELECT count(*) FROM stage.pending").fetchone()[0]
    if n:
        conn.execute("INSERT INTO stage.errors (line, field, rule) SELECT line, field, rule FROM stage.pending")
        conn.execute("UPDATE stage.rows SET bad = 1 WHERE line IN (SELECT line FROM stage.pending)")
        conn.execute("UPDATE stage.groups SET bad = 1 WHERE first_line IN (SELECT line FROM stage.pending)")
    return n


def _propagate(conn: sqlite3.Connection) -> None:
    """An order with one bad line is rejected whole: its other lines too."""
    conn.execute("""UPDATE stage.groups SET bad = 1 WHERE NOT bad AND grp IN
                    (SELECT grp FROM stage.rows WHERE bad AND grp IS NOT NULL)""")
    conn.execute("""INSERT INTO stage.errors (line, field, rule)
        SELECT r.line, NULL, 'the order is rejected: see line ' ||
               (SELECT min(b.line) FROM stage.rows b WHERE b.line BETWEEN g.first_line AND g.last_line
                AND b.grp = g.grp AND b.bad)
        FROM stage.groups g JOIN stage.rows r ON r.line BETWEEN g.first_line AND g.last_line AND r.grp = g.grp
        WHERE g.bad AND NOT r.bad""")
    conn.execute("""UPDATE stage.rows SET bad = 1 WHERE NOT bad AND grp IN
                    (SELECT grp FROM stage.groups WHERE bad)""")


ORDER_FIELDS = ("order_no", "order_date", "customer_external_id", "customer_email", "customer_name",
                "channel", "salesperson", "currency", "status", "notes", "shipping")
IMPORTABLE_STATUSES = ("draft", "confirmed", "cancelled")


class OrdersAdapter(Adapter):
    """One row per order line, the order's fields repeated on each."""

    name = "orders"
    group_by = "order_no"
    fields = (
        Field("order_no", "code", required=True, max_len=40, level="order"),
        Field("order_date", "date", required=True, level="order"),
        Field("customer_external_id", "code", max_len=100, level="order"),
        Field("customer_email", "email", max_len=254, level="order"),
        Field("customer_name", "text", max_len=200, level="order"),
        Field("channel", "text", max_len=40, level="order"),
        Field("salesperson", "text", max_len=100, level="order"),
        Field("currency", "code", max_len=3, level="order"),
        Field("status", "enum", level="order", choices=(
            "draft", "confirmed", "partially_shipped", "shipped", "delivered", "closed", "cancelled")),
        Field("notes", "text", max_len=4000, level="order"),
        Field("shipping", "money", level="order"),
        Field("line_no", "int"),
        Field("sku", "sku", required=True, max_len=64),
        Field("description", "text", max_len=200),
        Field("qty", "qty", required=True),
        Field("unit_price", "money"),
        Field("discount_pct", "percent"),
        Field("discount", "money"),
    )
    # columns of our own 'export lines' that are computed, not imported
    ignored = ("id", "order_id", "line_id", "customer_id", "customer", "gross", "net", "tax", "total",
               "tax_rate", "shipped_qty", "returned_qty", "order_total")

    def check_columns(self, present: set[str]) -> None:
        missing = [f for f in ("order_no", "order_date", "sku", "qty") if f not in present]
        if missing:
            raise InvalidInput("the file has no column for " + ", ".join(missing),
                               "map them with --map 'COLUMN=FIELD' (or a mapping file)")
        if not {"customer_email", "customer_external_id"} & present:
            raise InvalidInput("the file has no customer_email or customer_external_id column",
                               "map one with --map 'COLUMN=customer_email'")

    # -- resolve

    def resolve(self, ctx: Ctx) -> None:
        from salescrm import settings

        conn = ctx.conn
        present = set(ctx.present)
        self._merge_split_orders(conn)
        # order-level rules
        if "channel" in present:
            conn.execute("UPDATE stage.groups SET channel = lower(channel) WHERE channel IS NOT NULL")
            allowed = settings.get(conn, "channels")
            marks = ",".join("?" * len(allowed))
            _reject_groups(conn, f"""SELECT grp, 'channel', 'is not a sales channel (allowed: {", ".join(allowed)};
                add one with settings set channels)' FROM stage.groups
                WHERE NOT bad AND channel IS NOT NULL AND channel NOT IN ({marks})""", tuple(allowed))
        if "currency" in present:
            conn.execute("UPDATE stage.groups SET currency = upper(currency) WHERE currency IS NOT NULL")
            _reject_groups(conn, """SELECT grp, 'currency', 'is not a three-letter ISO 4217 code'
                FROM stage.groups WHERE NOT bad AND currency IS NOT NULL AND currency NOT GLOB '[A-Z][A-Z][A-Z]'""")
        conn.execute("""UPDATE stage.groups SET target = (SELECT o.id FROM main.orders o
                        WHERE o.number = stage.groups.order_no)""")
        _reject_groups(conn, f"""SELECT grp, 'status', 'a new order can be imported as draft, confirmed or cancelled'
            FROM stage.groups WHERE NOT bad AND target IS NULL AND status IS NOT NULL
            AND status NOT IN ({",".join(repr(x) for x in IMPORTABLE_STATUSES)})""")
        self._resolve_customers(ctx)
        self._resolve_products(ctx)
        # line rules
        if "discount_pct" in present and "discount" in present:
            _reject_sql(conn, """SELECT line, 'discount', 'give a discount percent or an amount, not both'
                FROM stage.rows WHERE NOT bad AND discount_pct IS NOT NULL AND discount IS NOT NULL
                AND discount <> 0""")
        if "discount" in present:
            _reject_sql(conn, """SELECT r.line, 'discount', 'is more than the line is worth'
                FROM stage.rows r JOIN stage.prods p ON p.sku_key = r.sku_key
                WHERE NOT r.bad AND r.discount IS NOT NULL
                AND r.discount > r.qty * coalesce(r.unit_price, p.list_price)""")
        if "line_no" in present:
            _reject_sql(conn, """SELECT r.line, 'line_no', 'repeats a line number of the same order'
                FROM stage.rows r WHERE NOT r.bad AND r.line_no IS NOT NULL AND EXISTS
                (SELECT 1 FROM stage.rows o WHERE o.grp = r.grp AND o.line_no = r.line_no AND o.line < r.line
                 AND o.line >= (SELECT first_line FROM stage.groups WHERE grp = r.grp))""")
            _reject_sql(conn, """SELECT line, 'line_no', 'must be greater than 0' FROM stage.rows
                WHERE NOT bad AND line_no IS NOT NULL AND line_no <= 0""")
        _propagate(conn)

    def _merge_split_orders(self, conn: sqlite3.Connection) -> None:
        """Lines of one order that are not next to each other in the file
        become one order, if their order fields agree."""
        onames = [f.name for f in self.fields if f.level == "order"]
        splits = conn.execute("""SELECT order_no, min(grp) FROM stage.groups GROUP BY order_no
                                 HAVING count(*) > 1""").fetchall()
        for order_no, keep in splits:
            k = conn.execute("SELECT * FROM stage.groups WHERE grp = ?", (keep,)).fetchone()
            for g in conn.execute("SELECT * FROM stage.groups WHERE order_no = ? AND grp <> ? ORDER BY grp",
                                  (order_no, keep)).fetchall():
                differs = [n for n in onames if g[_col(n)] != k[_col(n)]]
                if differs:
                    conn.executemany("INSERT INTO stage.errors (line, field, rule) VALUES (?, ?, ?)",
                                     [(g["first_line"], n, f"differs from line {k['first_line']} of the same order")
                                      for n in differs])
                    conn.execute("UPDATE stage.rows SET bad = 1 WHERE line = ?", (g["first_line"],))
                conn.execute("UPDATE stage.rows SET grp = ? WHERE line BETWEEN ? AND ? AND grp = ?",
                             (keep, g["first_line"], g["last_line"], g["grp"]))
                conn.execute("""UPDATE stage.groups SET last_line = max(last_line, ?), n = n + ?,
                                bad = bad OR ? WHERE grp = ?""", (g["last_line"], g["n"], g["bad"], keep))
                conn.execute("DELETE FROM stage.groups WHERE grp = ?", (g["grp"],))

    def _resolve_customers(self, ctx: Ctx) -> None:
        from salescrm import customers

        conn = ctx.conn
        conn.execute("""UPDATE stage.groups SET cust = (SELECT c.id FROM main.customers c
                        WHERE c.external_id = stage.groups.customer_external_id)
                        WHERE customer_external_id IS NOT NULL""")
        conn.execute("""UPDATE stage.groups SET cust = (SELECT c.id FROM main.customers c
                        WHERE c.email_key = stage.groups.customer_email_key)
                        WHERE cust IS NULL AND customer_email_key IS NOT NULL""")
        field = "customer_external_id" if "customer_external_id" in ctx.present else "customer_email"
        _reject_groups(conn, f"""SELECT grp, '{field}', 'is required to find the customer'
            FROM stage.groups WHERE NOT bad AND customer_external_id IS NULL AND customer_email_key IS NULL""")
        if ctx.create_missing:
            missing = conn.execute("""SELECT customer_external_id AS ext, customer_email AS email,
                    max(customer_name) AS name, min(grp) AS grp FROM stage.groups
                    WHERE NOT bad AND cust IS NULL
                    GROUP BY coalesce(customer_external_id, ''), coalesce(customer_email_key, '')""").fetchall()
            for m in missing:
                # two keys in the file may still name one customer already made above
                cid = None
                if m["ext"]:
                    r = conn.execute("SELECT id FROM customers WHERE external_id = ?", (m["ext"],)).fetchone()
                    cid = r[0] if r else None
                if cid is None and m["email"]:
                    r = conn.execute("SELECT id FROM customers WHERE email_key = ?",
                                     (m["email"].strip().casefold(),)).fetchone()
                    cid = r[0] if r else None
                if cid is None:
                    conn.execute("SAVEPOINT import_row")
                    try:
                        cid = customers.add(conn, m["name"] or m["email"] or f"Customer {m['ext']}",
                                            email=m["email"], external_id=m["ext"])
                        conn.execute("RELEASE import_row")
                        ctx.created["customers"] = ctx.created.get("customers", 0) + 1
                        ctx.emit("customer.created", {"customer_id": cid})
                    except SalesError as exc:
                        conn.execute("ROLLBACK TO import_row")
                        conn.execute("RELEASE import_row")
                        _reject_groups(conn, "SELECT ?, 'customer_email', ?",
                                       (m["grp"], _safe_message(exc, [m["ext"], m["email"], m["name"]])))
                        continue
                conn.execute("""UPDATE stage.groups SET cust = ? WHERE cust IS NULL AND NOT bad
                                AND customer_external_id IS ? AND customer_email_key IS ?""",
                             (cid, m["ext"], m["email"].strip().casefold() if m["email"] else None))
        _reject_groups(conn, f"""SELECT grp, '{field}', 'no such customer (import it first, or use --create-missing)'
            FROM stage.groups WHERE NOT bad AND cust IS NULL""")
        _reject_groups(conn, f"""SELECT g.grp, '{field}', 'the customer is archived: no new orders'
            FROM stage.groups g JOIN main.customers c ON c.id = g.cust
            WHERE NOT g.bad AND g.target IS NULL AND (c.archived_at IS NOT NULL OR c.forgotten_at IS NOT NULL)""")

    def _resolve_products(self, ctx: Ctx) -> None:
        from salescrm import products

        conn = ctx.conn
        conn.execute("""CREATE TABLE stage.prods (sku_key TEXT PRIMARY KEY, first_line INTEGER, pid INTEGER,
                        list_price INTEGER, active INTEGER)""")
        conn.execute("""INSERT INTO stage.prods (sku_key, first_line) SELECT sku_key, min(line)
                        FROM stage.rows WHERE NOT bad AND sku_key IS NOT NULL GROUP BY sku_key""")
        sync = """UPDATE stage.prods SET (pid, list_price, active) = (SELECT p.id, p.list_price, p.active
                  FROM main.products p WHERE p.sku_key = stage.prods.sku_key)"""
        conn.execute(sync)
        if ctx.create_missing:
            has_desc = "description" in ctx.present
            has_price = "unit_price" in ctx.present
            missing = conn.execute(f"""SELECT p.first_line, r.sku, {'r.description' if has_desc else 'NULL'} AS d,
                    {'r.unit_price' if has_price else 'NULL'} AS price
                    FROM stage.prods p JOIN stage.rows r ON r.line = p.first_line WHERE p.pid IS NULL""").fetchall()
            for m in missing:
                conn.execute("SAVEPOINT import_row")
                try:
                    products.add(conn, sku=m["sku"], name=m["d"] or m["sku"], price=m["price"] or 0)
                    conn.execute("RELEASE import_row")
                    ctx.created["products"] = ctx.created.get("products", 0) + 1
                except SalesError as exc:
                    conn.execute("ROLLBACK TO import_row")
                    conn.execute("RELEASE import_row")
                    _row_refused(conn, m["first_line"], _safe_message(exc, [m["sku"], m["d"]]))
            conn.execute(sync)
        _reject_sql(conn, """SELECT r.line, 'sku', 'no such product (import it first, or use --create-missing)'
            FROM stage.rows r JOIN stage.prods p ON p.sku_key = r.sku_key WHERE NOT r.bad AND p.pid IS NULL""")
        _reject_sql(conn, """SELECT r.line, 'sku', 'the product is archived: it cannot be ordered'
            FROM stage.rows r JOIN stage.prods p ON p.sku_key = r.sku_key JOIN stage.groups g ON g.grp = r.grp
            WHERE NOT r.bad AND p.active = 0 AND g.target IS NULL""")

    # -- apply

    def apply(self, ctx: Ctx) -> None:
        """The file is the truth: orders keep its prices, discounts and
        totals, and no promotion is applied (not even when an order is
        confirmed or an existing draft changes), unless ``apply_promotions``
        asks for today's promotions on new orders: then every new order,
        drafts too, goes through ``orders.create``."""
        conn = ctx.conn
        if not ctx.apply_promotions:
            self._new_drafts(ctx)
        slow = conn.execute("""SELECT * FROM stage.groups WHERE NOT bad AND
                               (target IS NOT NULL OR coalesce(status, 'draft') <> 'draft' OR ?)
                               ORDER BY grp""", (1 if ctx.apply_promotions else 0,)).fetchall()
        for n, g in enumerate(slow, start=1):
            self._one_order(ctx, g)
            if ctx.progress is not None and n % 1000 == 0:
                ctx.progress("applying", n, len(slow))

    def _lines_of(self, conn: sqlite3.Connection, g: sqlite3.Row) -> list[sqlite3.Row]:
        return conn.execute("""SELECT * FROM stage.rows WHERE line BETWEEN ? AND ? AND grp = ?
                               ORDER BY coalesce(line_no, 0), line""",
                            (g["first_line"], g["last_line"], g["grp"])).fetchall()

    def _specs(self, rows: list[sqlite3.Row]) -> list[Any]:
        from salescrm import orders

        return [orders.LineSpec(sku=r["sku"], qty=r["qty"], unit_price=r["unit_price"],
                                discount_pct=Decimal(r["discount_pct"]) if r["discount_pct"] is not None else None,
                                discount_cents=r["discount"] if r["discount"] else None) for r in rows]

    def _one_order(self, ctx: Ctx, g: sqlite3.Row) -> None:
        """An existing order, or a new one that is not a plain draft: through
        the orders library, one savepoint each."""
        from salescrm import orders

        conn = ctx.conn
        present = set(ctx.present)
        rows = self._lines_of(conn, g)
        events: list[tuple[str, dict[str, Any]]] = []
        conn.execute("SAVEPOINT import_order")
        try:
            if g["target"] is None:
                ref = orders.create(
                    conn, customer=g["cust"], lines=self._specs(rows), channel=g["channel"],
                    salesperson=g["salesperson"], order_date=g["order_date"], currency=g["currency"],
                    notes=g["notes"], shipping=g["shipping"] or 0, number=g["order_no"],
                    apply_promotions=ctx.apply_promotions)
                self._move(conn, ref.id, "draft", g["status"], events)
                ctx.bump("inserted")
                ctx.bump("lines_inserted", len(rows))
            else:
                changed = self._update(conn, g, rows, present, events)  # never applies promotions
                ctx.bump("updated" if changed else "unchanged")
            conn.execute("RELEASE import_order")
            for event, payload in events:
                ctx.emit(event, payload)
        except SalesError as exc:
            conn.execute("ROLLBACK TO import_order")
            conn.execute("RELEASE import_order")
            raw = [g["customer_email"], g["customer_name"], g["notes"]]
            _row_refused(conn, g["first_line"], _safe_message(exc, raw))
            conn.execute("UPDATE stage.groups SET bad = 1 WHERE grp = ?", (g["grp"],))
            conn.execute("""UPDATE stage.rows SET bad = 1 WHERE line BETWEEN ? AND ? AND grp = ?""",
                         (g["first_line"], g["last_line"], g["grp"]))
            conn.execute("""INSERT INTO stage.errors (line, field, rule) SELECT line, NULL,
                            'the order is rejected: see line ' || ? FROM stage.rows
                            WHERE line BETWEEN ? AND ? AND grp = ? AND line <> ?""",
                         (g["first_line"], g["first_line"], g["last_line"], g["grp"], g["first_line"]))

    def _move(self, conn: sqlite3.Connection, order_id: int, current: str, wanted: str | None,
              events: list[tuple[str, dict[str, Any]]]) -> bool:
        from salescrm import orders

        if wanted is None or wanted == current:
            return False
        if wanted == "confirmed" and current == "draft":
            orders.confirm(conn, order_id, allow_backorder=True)
        elif wanted == "cancelled" and current in ("draft", "confirmed"):
            orders.cancel(conn, order_id, reason="import")
        else:
            from salescrm.errors import IllegalTransition

            raise IllegalTransition(f"an import cannot move an order from {current} to {wanted}",
                                    "imports confirm or cancel orders; ship, deliver and pay them with 'order'")
        o = conn.execute("SELECT number, customer_id FROM orders WHERE id = ?", (order_id,)).fetchone()
        events.append((f"order.{wanted}", {"order_id": order_id, "order_no": o["number"],
                                           "customer_id": o["customer_id"], "status": wanted}))
        return True

    def _update(self, conn: sqlite3.Connection, g: sqlite3.Row, rows: list[sqlite3.Row], present: set[str],
                events: list[tuple[str, dict[str, Any]]]) -> bool:
        from salescrm import orders
        from salescrm.errors import IllegalTransition

        o = conn.execute("SELECT * FROM orders WHERE id = ?", (g["target"],)).fetchone()
        header: dict[str, Any] = {}
        if g["cust"] != o["customer_id"]:
            header["customer"] = g["cust"]
        for f, col in (("order_date", "order_date"), ("channel", "channel"), ("salesperson", "salesperson"),
                       ("currency", "currency"), ("notes", "notes"), ("shipping", "shipping_cents")):
            if f in present:
                new = g[f]
                if new is None and f in ("channel", "currency", "shipping"):
                    continue  # defaults: leave as they are
                if new != o[col]:
                    header[f] = new if new is not None else ""
        old_lines = conn.execute("""SELECT l.qty, l.unit_price, l.discount_pct, l.discount_cents, p.sku_key
                                    FROM order_lines l JOIN products p ON p.id = l.product_id
                                    WHERE l.order_id = ? ORDER BY l.line_no""", (o["id"],)).fetchall()

        def same(new: sqlite3.Row, old: sqlite3.Row) -> bool:
            if new["sku_key"] != old["sku_key"] or new["qty"] != old["qty"]:
                return False
            if "unit_price" in present and new["unit_price"] is not None and new["unit_price"] != old["unit_price"]:
                return False
            if "discount_pct" in present and new["discount_pct"] != old["discount_pct"]:
                if not (new["discount_pct"] is None and old["discount_pct"] is None):
                    return False
            if "discount" in present and old["discount_pct"] is None and \
                    (new["discount"] or 0) != (old["discount_cents"] or 0):
                return False
            return True

        lines_differ = len(old_lines) != len(rows) or not all(same(a, b) for a, b in zip(rows, old_lines))
        status = g["status"] if "status" in present else None
        if not header and not lines_differ:
            return self._move(conn, o["id"], o["status"], status, events)
        if o["status"] != "draft":
            raise IllegalTransition(f"order {o['number']} is {o['status']}: only a draft order can change",
                                    "an import may still confirm or cancel it")
        if header:
            kw = {("shipping" if k == "shipping" else k): v for k, v in header.items()}
            if "shipping" in kw and kw["shipping"] == "":
                kw["shipping"] = 0
            orders.edit(conn, o["id"], apply_promotions=False, **kw)
        if lines_differ:
            for line_no in [r[0] for r in conn.execute(
                    "SELECT line_no FROM order_lines WHERE order_id = ? ORDER BY line_no DESC", (o["id"],))]:
                orders.remove_line(conn, o["id"], str(line_no), apply_promotions=False)
            for spec in self._specs(rows):
                orders.add_line(conn, o["id"], spec, apply_promotions=False)
        self._move(conn, o["id"], o["status"], status, events)
        return True

    def _new_drafts(self, ctx: Ctx) -> None:
        """New draft orders in bulk: amounts from ``orders.line_amounts``
        (memoised), ids allocated under the write lock, batched inserts."""
        from salescrm import orders, settings

        conn = ctx.conn
        total_new = conn.execute("""SELECT count(*) FROM stage.groups WHERE NOT bad AND target IS NULL
                                    AND coalesce(status, 'draft') = 'draft'""").fetchone()[0]
        if not total_new:
            return
        tax_inclusive = bool(settings.get(conn, "tax_inclusive"))
        default_channel = settings.get(conn, "channels")[0]
        default_currency = settings.get(conn, "currency")
        prods: dict[str, tuple] = {}
        for p in conn.execute("""SELECT s.sku_key, p.id, p.sku, p.name, p.unit_cost, p.list_price, p.tax_rate
                                 FROM stage.prods s JOIN main.products p ON p.id = s.pid"""):
            prods[p[0]] = (p[1], p[2], p[3], p[4], p[5], p[6], Decimal(p[6]))
        next_id = conn.execute("SELECT coalesce(max(id), 0) FROM orders").fetchone()[0]
        now, user = db.now_iso(), db.os_user()
        command = db.current_command
        amounts: dict[tuple, tuple[int, int, int, int, int]] = {}
        line_amounts = orders.line_amounts
        order_rows: list[tuple] = []
        line_rows: list[tuple] = []
        event_rows: list[tuple] = []
        audit_rows: list[tuple] = []
        n_orders = n_lines = 0

        def flush() -> None:
            conn.executemany(
                "INSERT INTO orders (id, number, customer_id, status, channel, salesperson, order_date, currency,"
                " tax_inclusive, notes, gross_cents, discount_cents, subtotal_cents, tax_cents, shipping_cents,"
                " adjustment_cents, total_cents, created_at, updated_at)"
                " VALUES (?, ?, ?, 'draft', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)", order_rows)
            conn.executemany(
                "INSERT INTO order_lines (order_id, line_no, product_id, sku, description, qty, unit_price,"
                " unit_cost, discount_pct, gross_cents, discount_cents, tax_rate, net_cents, tax_cents, total_cents)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", line_rows)
            conn.executemany(
                "INSERT INTO order_events (order_id, at, os_user, kind, from_status, to_status, detail)"
                " VALUES (?, ?, ?, 'create', NULL, 'draft', ?)", event_rows)
            conn.executemany(
                "INSERT INTO audit (at, os_user, command, action, entity, entity_id)"
                " VALUES (?, ?, ?, 'create', 'order', ?)", audit_rows)
            order_rows.clear()
            line_rows.clear()
            event_rows.clear()
            audit_rows.clear()

        cur = conn.execute(
            """SELECT r.line, r.grp, r.sku_key, r.qty, r.unit_price, r.discount_pct, r.discount, r.line_no,
                      g.last_line, g.order_no, g.cust, g.order_date, g.channel, g.salesperson, g.currency,
                      g.notes, g.shipping
               FROM stage.rows r JOIN stage.groups g ON g.grp = r.grp
               WHERE NOT g.bad AND g.target IS NULL AND coalesce(g.status, 'draft') = 'draft'
               ORDER BY r.line""")
        open_orders: dict[int, list] = {}
        for (line, grp, sku_key, qty, price, pct, disc, line_no, last_line, number, cust, day, channel,
             salesperson, currency, notes, shipping) in cur:
            lines = open_orders.get(grp)
            if lines is None:
                lines = open_orders[grp] = []
            p = prods[sku_key]
            unit_price = p[4] if price is None else price
            key = (qty, unit_price, p[5], pct, disc)
            a = amounts.get(key)
            if a is None:
                la = line_amounts(qty, unit_price, tax_rate=p[6], tax_inclusive=tax_inclusive,
                                  discount_pct=Decimal(pct) if pct is not None else None,
                                  discount_cents=disc if disc else None)
                a = amounts[key] = (la.gross, la.discount, la.net, la.tax, la.total)
                if len(amounts) > 50_000:
                    amounts.clear()
            lines.append((line_no or 0, line, p, qty, unit_price, pct, a))
            if line != last_line:
                continue
            # the order's last line: write it
            del open_orders[grp]
            next_id += 1
            oid = next_id
            if any(x[0] for x in lines):
                lines.sort(key=lambda x: (x[0], x[1]))
            gross = dsc = net = tax = 0
            for i, (_, _, p, q, up, pc, a) in enumerate(lines, start=1):
                line_rows.append((oid, i, p[0], p[1], p[2], q, up, p[3], pc, a[0], a[1], p[5], a[2], a[3], a[4]))
                gross += a[0]
                dsc += a[1]
                net += a[2]
                tax += a[3]
            ship = shipping or 0
            ch = channel or default_channel
            order_rows.append((oid, number, cust, ch, salesperson, day, currency or default_currency,
                               1 if tax_inclusive else 0, notes, gross, dsc, net, tax, ship,
                               net + tax + ship, now, now))
            event_rows.append((oid, now, user, f"imported: draft order for customer {cust}, channel {ch},"
                                               f" {len(lines)} line{'s' if len(lines) != 1 else ''}"))
            audit_rows.append((now, user, command, oid))
            n_orders += 1
            n_lines += len(lines)
            if len(order_rows) >= 2000:
                flush()
                if ctx.progress is not None:
                    ctx.progress("applying", n_orders, total_new)
                db.pause_point("import-mid-apply")
        flush()
        ctx.bump("inserted", n_orders)
        ctx.bump("lines_inserted", n_lines)


class PaymentsAdapter(Adapter):
    """Payments of existing orders.  A payment is matched by order number and
    reference, or (without a reference) by order, time, amount and method;
    a matched payment is unchanged (payments are append-only)."""

    name = "payments"
    fields = (
        Field("order_no", "code", required=True, max_len=40),
        Field("amount", "money", required=True, signed=True),
        Field("method", "text", max_len=40),
        Field("paid_at", "datetime"),
        Field("reference", "text", max_len=200),
    )
    ignored = ("id", "order_id", "kind", "customer_id", "created_at", "return_id")

    def check_columns(self, present: set[str]) -> None:
        missing = [f for f in ("order_no", "amount") if f not in present]
        if missing:
            raise InvalidInput("the file has no column for " + ", ".join(missing),
                               "map them with --map 'COLUMN=FIELD'")

    def resolve(self, ctx: Ctx) -> None:
        conn = ctx.conn
        _reject_sql(conn, "SELECT line, 'amount', 'must not be zero' FROM stage.rows WHERE NOT bad AND amount = 0")
        conn.execute("""UPDATE stage.rows SET grp = (SELECT o.id FROM main.orders o
                        WHERE o.number = stage.rows.order_no) WHERE NOT bad""")
        _reject_sql(conn, """SELECT line, 'order_no', 'no such order' FROM stage.rows
                             WHERE NOT bad AND grp IS NULL""")
        if "method" in ctx.present:
            conn.execute("UPDATE stage.rows SET method = lower(method) WHERE method IS NOT NULL")
        if "reference" in ctx.present:
            _reject_sql(conn, """SELECT r.line, 'reference', 'the same order and reference as line ' || d.first
                FROM stage.rows r JOIN (SELECT grp, reference, min(line) AS first FROM stage.rows
                    WHERE NOT bad AND reference IS NOT NULL GROUP BY grp, reference HAVING count(*) > 1) d
                ON d.grp = r.grp AND d.reference = r.reference WHERE NOT r.bad AND r.line > d.first""")
            conn.execute("""UPDATE stage.rows SET target = (SELECT p.id FROM main.payments p
                            WHERE p.order_id = stage.rows.grp AND p.reference = stage.rows.reference)
                            WHERE NOT bad AND reference IS NOT NULL""")
            _reject_sql(conn, """SELECT r.line, 'amount', 'differs from the stored payment with this reference
                (payments cannot change: record a refund)'
                FROM stage.rows r JOIN main.payments p ON p.id = r.target
                WHERE NOT r.bad AND p.amount_cents <> r.amount""")

    def apply(self, ctx: Ctx) -> None:
        from salescrm import orders

        conn = ctx.conn
        present = set(ctx.present)
        rows = conn.execute("SELECT * FROM stage.rows WHERE NOT bad ORDER BY line").fetchall()
        for n, r in enumerate(rows, start=1):
            if r["target"] is not None:
                ctx.bump("unchanged")
                continue
            if r["reference"] is None and "paid_at" in present and r["paid_at"]:
                same = conn.execute("""SELECT 1 FROM payments WHERE order_id = ? AND paid_at = ?
                                       AND amount_cents = ? AND method = coalesce(?, method)
                                       AND reference IS NULL""",
                                    (r["grp"], r["paid_at"], r["amount"], r["method"])).fetchone()
                if same:
                    ctx.bump("unchanged")
                    continue
            conn.execute("SAVEPOINT import_row")
            try:
                if r["amount"] > 0:
                    res = orders.pay(conn, r["grp"], amount=r["amount"], method=r["method"] or "other",
                                     at=r["paid_at"], reference=r["reference"])
                    if res.get("payment_status") == "paid":
                        paid = {"order_id": r["grp"], "order_no": res["number"], "payment_id": res["payment"],
                                "status": res["status"]}
                    else:
                        paid = None
                else:
                    paid = None
                    orders.refund(conn, r["grp"], amount=-r["amount"], method=r["method"],
                                  at=r["paid_at"], reference=r["reference"])
                conn.execute("RELEASE import_row")
                ctx.bump("inserted")
                if paid is not None:
                    ctx.emit("order.paid", paid)
            except SalesError as exc:
                conn.execute("ROLLBACK TO import_row")
                conn.execute("RELEASE import_row")
                _row_refused(conn, r["line"], _safe_message(exc, [r["reference"]]))
            if ctx.progress is not None and n % 1000 == 0:
                ctx.progress("applying", n, len(rows))


ADAPTERS: dict[str, type[Adapter]] = {
    "customers": CustomersAdapter,
    "products": ProductsAdapter,
    "orders": OrdersAdapter,
    "payments": PaymentsAdapter,
}


def adapter(entity: str) -> Adapter:
    if entity not in ENTITIES:
        raise UsageError(f"cannot import {entity!r}", "choose one of " + ", ".join(ENTITIES))
    cls = ADAPTERS.get(entity)
    if cls is None:
        raise UsageError(f"importing {entity} is not available yet")
    return cls()


# Extra stage columns derived from a field (keys used for matching).
DERIVED = {
    "email": ("email_key", lambda v: v.strip().casefold() if v else None),
    "sku": ("sku_key", lambda v: v.strip().casefold() if v else None),
    "customer_email": ("customer_email_key", lambda v: v.strip().casefold() if v else None),
}


# --------------------------------------------------------------------------- the run


@dataclass
class Options:
    entity: str
    source: str                          # a path, or "-" for stdin
    fmt: str | None = None
    encoding: str | None = None          # default utf-8-sig (UTF-8 with or without BOM)
    delimiter: str | None = None
    mapping: Mapping = field(default_factory=Mapping)
    date_format: str | None = None
    decimal_comma: bool = False
    create_missing: bool = False
    apply_promotions: bool = False       # orders: today's promotions on new orders (default: the file's prices)
    rejects: Path | None = None
    dry_run: bool = False
    force: bool = False
    field_cap: int = FIELD_CAP
    stdin: IO[bytes] | None = None       # instead of sys.stdin.buffer (tests)
    progress: Progress | None = None


@dataclass
class Summary:
    entity: str
    source: str
    format: str
    sha256: str = ""
    status: str = ""  # committed | partial | dry-run | already-imported | failed
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    created: dict[str, int] = field(default_factory=dict)
    detail: dict[str, int] = field(default_factory=dict)
    run_id: int | None = None
    previous_run: dict[str, Any] | None = None
    errors: list[str] = field(default_factory=list)
    errors_total: int = 0
    rejects_file: str | None = None
    seconds: float = 0.0
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # to fire after the commit

    def as_dict(self) -> dict[str, Any]:
        return {
            "entity": self.entity, "source": self.source, "format": self.format,
            "sha256": self.sha256, "status": self.status, "run_id": self.run_id,
            "rows": self.rows, "inserted": self.inserted, "updated": self.updated,
            "unchanged": self.unchanged, "rejected": self.rejected, "created": self.created,
            "detail": self.detail, "previous_run": self.previous_run,
            "errors": self.errors, "errors_total": self.errors_total,
            "rejects_file": self.rejects_file, "seconds": round(self.seconds, 3),
        }


class _DryRun(Exception):
    """Raised at the end of a dry run to roll the transaction back."""


def lock_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".import-lock")


@contextlib.contextmanager
def import_lock(db_path: Path | None) -> Iterator[None]:
    """A non-blocking exclusive lock beside the database: one import at a time."""
    if db_path is None or str(db_path) == ":memory:":
        yield
        return
    path = lock_path(db_path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    except OSError as exc:
        raise IOFailure(f"cannot create the lock file {path}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy("another import is running on this database",
                       "try again when it has finished") from None
        yield
    finally:
        os.close(fd)  # closing frees the lock


def detect_format(source: str, given: str | None) -> str:
    if given:
        g = given.lower()
        if g in ("ndjson", "nl"):
            g = "jsonl"
        if g not in FORMATS:
            raise UsageError(f"unknown format {given!r}", "choose one of " + ", ".join(FORMATS))
        return g
    if source == "-":
        return "csv"
    ext = Path(source).suffix.lower()
    if ext in EXTENSIONS:
        return EXTENSIONS[ext]
    raise UsageError(f"cannot tell the format of {source} from its name",
                     "give it with --format csv|tsv|json|jsonl")


def _delimiter(value: str | None) -> str | None:
    if value is None:
        return None
    v = {"\\t": "\t", "tab": "\t", "TAB": "\t"}.get(value, value)
    if len(v) != 1 or v in "\"\r\n":
        raise UsageError(f"--delimiter must be one character, not {value!r}", "for example --delimiter ';'")
    return v


def _encoding(value: str | None) -> str:
    enc = value or "utf-8-sig"
    try:
        info = codecs.lookup(enc)
    except LookupError:
        raise UsageError(f"unknown encoding {enc!r}", "for example utf-8, cp1252, latin-1, utf-16") from None
    # plain utf-8 is read as utf-8-sig: a BOM is never data
    return "utf-8-sig" if info.name == "utf-8" else enc


def _open_source(opts: Options) -> tuple[IO[bytes], int | None, bool]:
    """(binary stream, size or None, whether we opened it)."""
    if opts.source == "-":
        stream = opts.stdin if opts.stdin is not None else sys.stdin.buffer
        return stream, None, False
    path = Path(opts.source)
    try:
        if path.is_dir():
            raise InputMissing(f"{path} is a directory, not a file")
        f = open(path, "rb")  # noqa: SIM115 - closed by the caller
    except FileNotFoundError:
        raise InputMissing(f"no such file: {path}", "check the path") from None
    except PermissionError:
        raise InputMissing(f"cannot read {path}: permission denied") from None
    except OSError as exc:
        raise InputMissing(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        size = os.fstat(f.fileno()).st_size
    except OSError:
        size = None
    return f, size, True


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def previous_run(conn: sqlite3.Connection, entity: str, sha: str) -> dict[str, Any] | None:
    try:
        row = conn.execute(
            "SELECT id, finished_at, source, inserted, updated, unchanged, rejected FROM import_runs"
            " WHERE entity = ? AND sha256 = ? ORDER BY id DESC LIMIT 1", (entity, sha)).fetchone()
    except sqlite3.OperationalError:
        return None
    return dict(row) if row else None


class _Plan:
    """Where each of our fields comes from: a column index or a constant."""

    def __init__(self, ad: Adapter, mapping: Mapping, popts: ParseOptions) -> None:
        self.ad = ad
        self.fields = ad.field_map()
        self.popts = popts
        self.lower_map = {k.lower(): v for k, v in mapping.columns.items()}
        self.columns = mapping.columns
        self.skip = {s.lower() for s in mapping.skip}
        self.by_field: dict[str, str] = {}  # our field -> source column name (for messages)
        self.slots: list[tuple[int, str, Callable[[str | None], Any]]] = []
        self.constants: dict[str, Any] = {}
        # [join]: field -> its columns; the columns' positions once seen
        self.joins = {name: cols for name, cols in mapping.joins.items()}
        self.join_cols = {c.lower() for cols in self.joins.values() for c in cols}
        self.join_index: dict[str, int] = {}
        self.join_slots: list[tuple[str, list[str], Callable[[str | None], Any]]] = []
        for name, cols in self.joins.items():
            f = self._field(name, f"[join] {name}")
            if name in mapping.columns.values():
                raise UsageError(f"{name} is both joined and mapped from a column", "keep one of them")
            self.by_field[name] = " + ".join(cols)
            self.join_slots.append((name, [c.lower() for c in cols], converter(f, popts)))
        for col, target in mapping.columns.items():
            if target not in ("_", ""):
                self._field(target, f"the mapping of column {col!r}")
        for name, raw in mapping.constants.items():
            f = self._field(name, f"constant {name!r}")
            value = converter(f, popts)(raw)
            if isinstance(value, _Bad):
                raise InvalidInput(f"the constant for {name} {value.rule}")
            self.constants[name] = value
            self.by_field[name] = f"constant {name}"

    def _field(self, name: str, what: str) -> Field:
        f = self.fields.get(name)
        if f is None:
            raise UsageError(f"{what}: {self.ad.name} have no field {name!r}",
                             "fields: " + ", ".join(self.fields))
        return f

    def add_column(self, name: str, index: int, line: int = 1) -> None:
        if name.lower() in self.join_cols:
            self.join_index[name.lower()] = index
            if name not in self.columns and name.lower() not in self.lower_map:
                return
        target = self.columns.get(name, self.lower_map.get(name.lower()))
        if target is None:
            if name.lower() in self.skip:
                return
            low = name.lower()
            if low in self.fields:
                target = low
            elif low in self.ad.ignored:
                return
            else:
                where = f"line {line}: " if line > 1 else ""
                raise InvalidInput(
                    f"{where}unknown column {name!r} for {self.ad.name}" if name else f"{where}a column has no name",
                    f"map it with --map '{name}=FIELD' or skip it with --map '{name}=_'; "
                    f"fields: {', '.join(self.fields)}")
        if target in ("_", ""):
            return
        f = self._field(target, f"column {name!r}")
        if target in self.by_field:
            raise InvalidInput(f"{self.by_field[target]!r} and column {name!r} both give {target}",
                               "map only one of them to it")
        self.by_field[target] = name
        self.slots.append((index, target, converter(f, self.popts)))

    @property
    def present(self) -> list[str]:
        order = list(self.fields)
        return sorted(self.by_field, key=order.index)

    def joined(self, cells: list[str | None]) -> list[tuple[str, Any]]:
        """The [join] fields of one row: (field, parsed value or _Bad)."""
        out = []
        n = len(cells)
        for name, cols, conv in self.join_slots:
            parts = []
            for c in cols:
                i = self.join_index.get(c)
                v = cells[i] if i is not None and i < n else None
                if v and v.strip():
                    parts.append(v.strip())
            out.append((name, conv(" ".join(parts) if parts else None)))
        return out

    def label(self, fname: str | None) -> str:
        """How a message names the field: the file's column (and our field)."""
        if fname is None:
            return ""
        src = self.by_field.get(fname)
        if src is None:
            return f"field {fname}"
        if src.startswith("constant "):
            return src
        if src == fname:
            return f"column {src!r}"
        return f"column {src!r} ({fname})"


def _stage_columns(ad: Adapter) -> list[tuple[str, str]]:
    cols = [(_col(f.name), f.sql_type) for f in ad.fields]
    for f in ad.fields:
        if f.name in DERIVED:
            cols.append((DERIVED[f.name][0], "TEXT"))
    return cols


def _create_stage(conn: sqlite3.Connection, ad: Adapter) -> None:
    conn.execute("ATTACH DATABASE '' AS stage")
    conn.execute("PRAGMA stage.journal_mode = OFF")
    conn.execute("PRAGMA stage.synchronous = OFF")
    conn.execute("PRAGMA stage.cache_size = -32768")
    cols = ", ".join(f"{c} {t}" for c, t in _stage_columns(ad))
    conn.execute(f"CREATE TABLE stage.rows (line INTEGER PRIMARY KEY, bad INTEGER NOT NULL DEFAULT 0,"
                 f" target INTEGER, raw TEXT, grp INTEGER, {cols})")
    if ad.group_by:
        ocols = ", ".join(f"{_col(f.name)} {f.sql_type}" for f in ad.fields if f.level == "order")
        extra = ", ".join(DERIVED[f.name][0] + " TEXT" for f in ad.fields
                          if f.level == "order" and f.name in DERIVED)
        conn.execute(f"CREATE TABLE stage.groups (grp INTEGER PRIMARY KEY, first_line INTEGER NOT NULL,"
                     f" last_line INTEGER NOT NULL, n INTEGER NOT NULL, bad INTEGER NOT NULL DEFAULT 0,"
                     f" target INTEGER, cust INTEGER, {ocols}{', ' + extra if extra else ''})")
    conn.execute("CREATE TABLE stage.errors (line INTEGER NOT NULL, field TEXT, rule TEXT NOT NULL)")
    conn.execute("CREATE TABLE stage.pending (line INTEGER, field TEXT, rule TEXT)")
    conn.execute("CREATE TABLE stage.meta (key TEXT PRIMARY KEY, value)")


def _stage(conn: sqlite3.Connection, reader: Reader, plan: _Plan, ad: Adapter, opts: Options) -> int:
    """The streaming pass: every row parsed and written to the stage."""
    fields = [f.name for f in ad.fields]
    derived = [(DERIVED[f][0], fields.index(f), DERIVED[f][1]) for f in fields if f in DERIVED]
    col_names = ["line", "bad", "raw", "grp"] + [_col(f) for f in fields] + [d[0] for d in derived]
    insert = f"INSERT INTO stage.rows ({', '.join(col_names)}) VALUES ({', '.join('?' * len(col_names))})"
    insert_err = "INSERT INTO stage.errors (line, field, rule) VALUES (?, ?, ?)"
    pos = {f: i for i, f in enumerate(fields)}
    base = [None] * len(fields)
    for name, value in plan.constants.items():
        base[pos[name]] = value

    def new_column(name: str, line: int) -> None:
        plan.add_column(name, len(reader.header), line)
        refresh()

    slots: list[tuple[int, int, Callable[[str | None], Any], str, bool]] = []
    required = {f.name for f in ad.fields if f.required}

    def refresh() -> None:
        slots[:] = [(idx, pos[name], conv, name, name in required) for idx, name, conv in plan.slots]

    if reader.fmt in ("csv", "tsv"):
        rows = reader.rows()
        first = next(rows, None)  # reads the header (and one row)
        seen: dict[str, int] = {}
        for i, name in enumerate(reader.header):
            if name in seen:
                raise InvalidInput(f"line 1: the header names column {name!r} twice "
                                   f"(columns {seen[name] + 1} and {i + 1})",
                                   "rename one of them")
            seen[name] = i
        for i, name in enumerate(reader.header):
            plan.add_column(name, i)
        missing = sorted({c for _, cols, _ in plan.join_slots for c in cols} - set(plan.join_index))
        if missing:
            raise InvalidInput("the file has no column " + ", ".join(repr(m) for m in missing)
                               + " (named in [join])")
        ad.check_columns(set(plan.by_field))
        refresh()
        source: Iterator[Row] = _chain_first(first, rows)
    else:
        reader.on_new_column = new_column
        source = reader.rows()

    batch: list[tuple] = []
    errs: list[tuple] = []
    count = 0
    keep_raw = reader.keep_raw
    joins = bool(plan.join_slots)
    grouped = ad.group_by is not None
    if grouped:
        gpos = pos[ad.group_by]  # type: ignore[index]
        opos = [pos[f.name] for f in ad.fields if f.level == "order"]
        onames = [f.name for f in ad.fields if f.level == "order"]
        oderived = [(DERIVED[n][1], pos[n]) for n in onames if n in DERIVED]
        gcols = ["grp", "first_line", "last_line", "n"] + [_col(n) for n in onames] + \
            [DERIVED[n][0] for n in onames if n in DERIVED]
        insert_group = (f"INSERT INTO stage.groups ({', '.join(gcols)}) "
                        f"VALUES ({', '.join('?' * len(gcols))})")
        groups: list[tuple] = []
        gid = 0
        last_key: Any = None
        last_ot: tuple = ()
        first_line = last_line = n_in = 0
        first_bad = False

        def close_group() -> None:
            if gid and last_key is not None:
                groups.append((gid, first_line, last_line, n_in, *last_ot,
                               *[fn(last_ot[opos.index(i)]) for fn, i in oderived]))
    for row in source:
        count += 1
        values = base.copy()
        bad = 0
        if row.error is not None:
            col, rule = row.error
            fname = plan_field_of(plan, col)
            errs.append((row.line, fname if fname else (f"?{col}" if col else None), rule))
            bad = 1
        else:
            cells = row.cells
            ncells = len(cells)
            for idx, p, conv, name, req in slots:
                v = conv(cells[idx] if idx < ncells else None)
                if v is None:
                    if req:
                        errs.append((row.line, name, "is required"))
                        bad = 1
                elif v.__class__ is _Bad:
                    errs.append((row.line, name, v.rule))
                    bad = 1
                    v = None
                values[p] = v
            if joins:
                for name, v in plan.joined(cells):
                    if v.__class__ is _Bad:
                        errs.append((row.line, name, v.rule))
                        bad = 1
                        v = None
                    values[pos[name]] = v
        grp = None
        if grouped:
            key = values[gpos]
            if key is not None:
                ot = tuple([values[i] for i in opos])
                if key == last_key:
                    if ot != last_ot and not bad and not first_bad:
                        for name, a, b in zip(onames, ot, last_ot):
                            if a != b:
                                errs.append((row.line, name, f"differs from line {first_line} of the same order"))
                        bad = 1
                    last_line = row.line
                    n_in += 1
                else:
                    close_group()
                    gid += 1
                    last_key, last_ot, first_line, last_line, n_in = key, ot, row.line, row.line, 1
                    first_bad = bool(bad)
                grp = gid
        for dname, i, fn in derived:
            values.append(fn(values[i]))
        raw = None
        if keep_raw and row.raw is not None:
            raw = json.dumps(row.raw, ensure_ascii=False)
        batch.append((row.line, bad, raw, grp, *values))
        if len(batch) >= BATCH:
            conn.executemany(insert, batch)
            batch.clear()
            if errs:
                conn.executemany(insert_err, errs)
                errs.clear()
            if grouped and groups:
                conn.executemany(insert_group, groups)
                groups.clear()
    if grouped:
        close_group()
        if groups:
            conn.executemany(insert_group, groups)
    if batch:
        conn.executemany(insert, batch)
    if errs:
        conn.executemany(insert_err, errs)
    if reader.fmt not in ("csv", "tsv"):
        present = set(plan.by_field)
        if count:
            ad.check_columns(present)
    return count


def plan_field_of(plan: _Plan, column: str | None) -> str | None:
    """Our field for a source column (for structural row errors)."""
    if column is None:
        return None
    for f, src in plan.by_field.items():
        if src == column:
            return f
    return None


def _chain_first(first: Row | None, rest: Iterator[Row]) -> Iterator[Row]:
    if first is not None:
        yield first
    yield from rest


def _units(text: str, unit: str) -> str:
    """Rules say 'line N'; in a JSON array the rows are records."""
    return text if unit == "line" else re.sub(r"\bline (\d+)", unit + r" \1", text)


def _error_lines(conn: sqlite3.Connection, plan: _Plan, limit: int, unit: str = "line") -> list[str]:
    out = []
    for r in conn.execute("SELECT line, field, rule FROM stage.errors ORDER BY line, rowid LIMIT ?", (limit,)):
        f = r["field"]
        if f and f.startswith("?"):
            label = f"column {f[1:]!r}"
        else:
            label = plan.label(f)
        out.append(f"{unit} {r['line']}" + (f", {label}" if label else "") + f": {_units(r['rule'], unit)}")
    return out


def _write_rejects(conn: sqlite3.Connection, plan: _Plan, reader: Reader, path: Path, tmp: Path) -> int:
    """Rejected rows with their line and reason, to a 0600 file: written to
    its temporary name ``tmp`` (renamed to ``path`` when the run ends)."""
    rows = conn.execute("""SELECT r.line, r.raw, (SELECT group_concat(
                               CASE WHEN e.field IS NULL THEN e.rule ELSE e.field || ': ' || e.rule END, '; ')
                           FROM stage.errors e WHERE e.line = r.line) AS reason
                           FROM stage.rows r WHERE r.bad ORDER BY r.line""")
    n = 0
    try:
        fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
        with open(fd, "w", encoding="utf-8", newline="") as f:
            if reader.fmt in ("csv", "tsv"):
                w = csv.writer(f, delimiter="\t" if reader.fmt == "tsv" else ",", lineterminator="\n")
                w.writerow(["line", "reason", *reader.header])
                for r in rows:
                    cells = json.loads(r["raw"]) if r["raw"] else []
                    w.writerow([r["line"], r["reason"] or "rejected", *cells])
                    n += 1
            else:
                for r in rows:
                    obj = json.loads(r["raw"]) if r["raw"] else None
                    f.write(json.dumps({reader.unit: r["line"], "reason": _units(r["reason"] or "rejected", reader.unit),
                                        "row": obj},
                                       ensure_ascii=False) + "\n")
                    n += 1
        os.chmod(tmp, 0o600)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise IOFailure(f"cannot write the rejects file {path}: {exc.strerror or exc}") from None
    return n


def run(conn: sqlite3.Connection, db_path: Path | None, opts: Options) -> Summary:
    """Import ``opts.source`` as ``opts.entity`` into the database behind
    ``conn`` (opened by the caller, no transaction open).  Returns the
    summary; raises ``InvalidInput`` (nothing written) when rows are invalid
    and no rejects file was asked for."""
    started = time.monotonic()
    started_at = db.now_iso()
    ad = adapter(opts.entity)
    if opts.rejects is not None:  # (a rejects file that cannot be written is refused before any work)
        from salescrm.validate import file_to_write

        file_to_write(opts.rejects, option="--rejects")
    mapping = opts.mapping
    if mapping.entity and mapping.entity != opts.entity:
        raise UsageError(f"the mapping file is for {mapping.entity}, not {opts.entity}")
    fmt = detect_format(opts.source, opts.fmt or mapping.format)
    encoding = _encoding(opts.encoding or mapping.encoding)
    delimiter = _delimiter(opts.delimiter or mapping.delimiter)
    popts = ParseOptions(date_format=opts.date_format or mapping.date_format,
                         decimal_comma=bool(opts.decimal_comma or mapping.decimal_comma),
                         field_cap=opts.field_cap)
    plan = _Plan(ad, mapping, popts)  # constants and map targets checked before reading
    summary = Summary(entity=opts.entity, source=opts.source, format=fmt)

    with import_lock(db_path):
        stream, size, ours = _open_source(opts)
        try:
            if ours and not opts.force:
                sha = file_sha256(Path(opts.source))
                prev = previous_run(conn, opts.entity, sha)
                if prev is not None:
                    summary.sha256, summary.status, summary.previous_run = sha, "already-imported", prev
                    summary.seconds = time.monotonic() - started
                    return summary
            tap = _Tap(stream, size, opts.progress)
            reader = Reader(tap, fmt, encoding, delimiter, opts.field_cap, keep_raw=opts.rejects is not None)
            _create_stage(conn, ad)
            try:
                try:
                    conn.execute("BEGIN")
                    summary.rows = _stage(conn, reader, plan, ad, opts)
                    conn.execute("COMMIT")
                    plan.slots.clear()  # the parse caches: not needed any more, free them for the write
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                summary.sha256 = tap.sha.hexdigest()
                if ours:
                    stream.close()
                    ours = False
                return _apply(conn, ad, plan, reader, opts, summary, started, started_at)
            finally:
                with contextlib.suppress(sqlite3.Error):
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    conn.execute("DETACH DATABASE stage")
        finally:
            if ours:
                stream.close()


def _apply(conn: sqlite3.Connection, ad: Adapter, plan: _Plan, reader: Reader, opts: Options,
           summary: Summary, started: float, started_at: str) -> Summary:
    if not opts.force:
        prev = previous_run(conn, opts.entity, summary.sha256)
        if prev is not None:  # stdin, or a file changed while we read it
            summary.status, summary.previous_run = "already-imported", prev
            summary.seconds = time.monotonic() - started
            return summary
    ctx = Ctx(conn=conn, present=plan.present, create_missing=opts.create_missing,
              apply_promotions=opts.apply_promotions, progress=opts.progress)
    try:
        ctx.wanted = {r[0] for r in conn.execute("SELECT DISTINCT event FROM hooks WHERE enabled = 1")}
    except sqlite3.OperationalError:
        ctx.wanted = set()
    rejects_tmp: Path | None = None
    # A bounded, larger page cache for the write: index pages of big tables are
    # then spilled to the WAL once, not again and again (memory stays bounded).
    old_cache = conn.execute("PRAGMA main.cache_size").fetchone()[0]
    conn.execute(f"PRAGMA main.cache_size = {-CACHE_KIB}")
    try:
        with db.write_tx(conn):
            ad.resolve(ctx)
            bad = conn.execute("SELECT count(*) FROM stage.rows WHERE bad").fetchone()[0]
            if bad and opts.rejects is None:
                summary.errors_total = conn.execute("SELECT count(*) FROM stage.errors").fetchone()[0]
                summary.errors = _error_lines(conn, plan, SHOW_ERRORS, reader.unit)
                summary.rejected = bad
                summary.status = "failed"
                raise _Invalid()
            db.pause_point("import-before-apply")
            ad.apply(ctx)
            summary.inserted = ctx.counts.get("inserted", 0)
            summary.updated = ctx.counts.get("updated", 0)
            summary.unchanged = ctx.counts.get("unchanged", 0)
            summary.created = dict(ctx.created)
            summary.detail = {k: v for k, v in ctx.counts.items()
                              if k not in ("inserted", "updated", "unchanged")}
            summary.rejected = conn.execute("SELECT count(*) FROM stage.rows WHERE bad").fetchone()[0]
            summary.errors_total = conn.execute("SELECT count(*) FROM stage.errors").fetchone()[0]
            summary.errors = _error_lines(conn, plan, SHOW_ERRORS, reader.unit)
            if summary.rejected and opts.rejects is None:  # refused by a library rule while applying
                summary.status = "failed"
                summary.inserted = summary.updated = summary.unchanged = 0
                raise _Invalid()
            if opts.rejects is not None:
                from salescrm.validate import file_to_write

                _, rejects_tmp = file_to_write(opts.rejects, option="--rejects")  # (checked in run(), before work)
                _write_rejects(conn, plan, reader, opts.rejects, rejects_tmp)
                summary.rejects_file = str(opts.rejects)
            summary.status = "partial" if summary.rejected else "committed"
            summary.events = ctx.events
            if opts.dry_run:
                raise _DryRun()
            detail = {"created": summary.created, **summary.detail, "format": summary.format}
            cur = conn.execute(
                "INSERT INTO import_runs (entity, sha256, source, format, status, rows_read, inserted,"
                " updated, unchanged, rejected, created, detail, started_at, finished_at, os_user)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (opts.entity, summary.sha256, _source_name(opts.source), summary.format, summary.status,
                 summary.rows, summary.inserted, summary.updated, summary.unchanged, summary.rejected,
                 sum(summary.created.values()), json.dumps(detail, sort_keys=True), started_at,
                 db.now_iso(), db.os_user()))
            summary.run_id = int(cur.lastrowid)
            db.audit(conn, "import", "import_run", summary.run_id)
    except _DryRun:
        summary.status = "dry-run"
        summary.events = []
    except _Invalid:
        summary.seconds = time.monotonic() - started
        raise ImportRejected(
            f"{summary.rejected} of {summary.rows} rows are invalid; nothing was imported",
            "fix them, or import the valid rows with --rejects FILE", summary) from None
    finally:
        conn.execute(f"PRAGMA main.cache_size = {int(old_cache)}")
        if rejects_tmp is not None and rejects_tmp.exists():
            if summary.status in ("committed", "partial", "dry-run"):
                os.replace(rejects_tmp, opts.rejects)  # type: ignore[arg-type]
            else:
                rejects_tmp.unlink(missing_ok=True)
    summary.seconds = time.monotonic() - started
    return summary


class _Invalid(Exception):
    pass


class ImportRejected(InvalidInput):
    """Invalid rows and no rejects file: nothing was written.  ``summary``
    holds the first errors (line, column, rule) for the caller to show."""

    def __init__(self, message: str, hint: str | None, summary: Summary) -> None:
        super().__init__(message, hint)
        self.summary = summary


def _source_name(source: str) -> str:
    return "-" if source == "-" else os.path.basename(source)[:500]


def history(conn: sqlite3.Connection, *, entity: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """The latest committed runs, newest first."""
    sql = ("SELECT id, entity, source, format, status, rows_read AS rows, inserted, updated, unchanged,"
           " rejected, created, sha256, started_at, finished_at, os_user FROM import_runs")
    params: list[Any] = []
    if entity:
        if entity not in ENTITIES:
            raise UsageError(f"unknown entity {entity!r}", "choose one of " + ", ".join(ENTITIES))
        sql += " WHERE entity = ?"
        params.append(entity)
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(limit)
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    except sqlite3.OperationalError:
        return []


def finished_event(summary: Summary) -> dict[str, Any]:
    """The payload of the ``import.finished`` hook event (no personal data)."""
    return {k: v for k, v in summary.as_dict().items() if k not in ("errors",)}
