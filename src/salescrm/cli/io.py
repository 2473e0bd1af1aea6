"""``salescrm import``, ``salescrm export`` and ``salescrm hook``.

Parsing and rendering only: the work is in ``salescrm.importer``,
``salescrm.exporter`` and ``salescrm.hooks``, imported inside the commands.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from salescrm.cli.common import STATE, FormatOpt, open_db, out, say

import_app = typer.Typer(no_args_is_help=True)
export_app = typer.Typer(no_args_is_help=True)
hook_app = typer.Typer(no_args_is_help=True)


class InFormat(str, enum.Enum):
    csv = "csv"
    tsv = "tsv"
    json = "json"
    jsonl = "jsonl"


def _db_path() -> Path:
    from salescrm import db

    return Path(STATE.db_path) if STATE.db_path else db.default_path()


@contextmanager
def _progress() -> Iterator[Callable[[str, int, int | None], None] | None]:
    """A transient progress bar on stderr, only on a terminal and without -q."""
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):
        tty = False
    if STATE.quiet or not tty:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                  TimeRemainingColumn(), console=console, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(phase: str, done: int, total: int | None) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        yield update


# --------------------------------------------------------------------------- import

FileArg = Annotated[str, typer.Argument(metavar="FILE|-", help="The file to import, or - for standard input.",
                                        show_default=False)]
InFormatOpt = Annotated[InFormat | None, typer.Option(
    "--format", "-f", case_sensitive=False, show_default=False,
    help="csv, tsv, json (an array of objects) or jsonl (default: from the file's extension; csv for stdin).")]
EncodingOpt = Annotated[str | None, typer.Option(
    "--encoding", show_default=False, help="The file's encoding (default: UTF-8, with or without BOM).")]
DelimiterOpt = Annotated[str | None, typer.Option(
    "--delimiter", show_default=False, help="Field separator for CSV, e.g. ';' or '\\t'.")]
MapOpt = Annotated[list[str] | None, typer.Option(
    "--map", metavar="COLUMN=FIELD", show_default=False,
    help="Map a column of the file to one of our fields ('_' skips it); repeatable.")]
MapFileOpt = Annotated[Path | None, typer.Option(
    "--map-file", dir_okay=False, show_default=False,
    help="A TOML mapping file: [columns], [constants], skip, date_format (see examples/).")]
DateFormatOpt = Annotated[str | None, typer.Option(
    "--date-format", show_default=False,
    help="strptime format of the file's dates, e.g. '%d/%m/%Y' (default: ISO 8601).")]
DecimalCommaOpt = Annotated[bool, typer.Option(
    "--decimal-comma", help="Amounts are written 1.234,50 (comma for decimals).")]
CreateMissingOpt = Annotated[bool, typer.Option(
    "--create-missing", help="Orders: create unknown customers and products instead of rejecting the rows.")]
ApplyPromotionsOpt = Annotated[bool, typer.Option(
    "--apply-promotions",
    help="Orders: price new orders with the promotions running for their order date, as 'order create' "
         "does (for new, unpriced orders).  Default: the file's prices, discounts and totals are kept "
         "and no promotion is applied.")]
RejectsOpt = Annotated[Path | None, typer.Option(
    "--rejects", dir_okay=False, show_default=False,
    help="Import the valid rows and write the rejected ones, with line and reason, to this file (0600).")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Do everything but commit; say what would change.")]
ForceOpt = Annotated[bool, typer.Option(
    "--force", help="Import even if this very file was imported before.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the run's summary as JSON on stdout.")]
FieldCapOpt = Annotated[int, typer.Option(
    "--max-field", min=1, help="Longest cell accepted, in characters; longer cells reject the row.")]

_IMPORT_HELP = {
    "customers": "Import customers, matched by external_id, else e-mail.",
    "products": "Import products, matched by SKU.",
    "orders": "Import orders, one row per order line (order fields repeated), grouped by order number.  "
              "The file is the truth: prices, discounts and totals are kept as given and no promotion is "
              "applied (--apply-promotions for new, unpriced orders).",
    "payments": "Import payments of existing orders, matched by order number and reference.",
}


def _make_import(entity: str) -> Callable[..., None]:
    def command(
        file: FileArg,
        *,
        fmt: InFormatOpt = None,
        encoding: EncodingOpt = None,
        delimiter: DelimiterOpt = None,
        map_: MapOpt = None,
        map_file: MapFileOpt = None,
        date_format: DateFormatOpt = None,
        decimal_comma: DecimalCommaOpt = False,
        create_missing: CreateMissingOpt = False,
        rejects: RejectsOpt = None,
        dry_run: DryRunOpt = False,
        force: ForceOpt = False,
        as_json: JsonOpt = False,
        max_field: FieldCapOpt = 10_000,
    ) -> None:
        _run_import(entity, file, fmt=fmt.value if fmt else None, encoding=encoding, delimiter=delimiter,
                    map_=map_ or [], map_file=map_file, date_format=date_format,
                    decimal_comma=decimal_comma, create_missing=create_missing, rejects=rejects,
                    dry_run=dry_run, force=force, as_json=as_json, max_field=max_field)

    def orders_command(
        file: FileArg,
        *,
        fmt: InFormatOpt = None,
        encoding: EncodingOpt = None,
        delimiter: DelimiterOpt = None,
        map_: MapOpt = None,
        map_file: MapFileOpt = None,
        date_format: DateFormatOpt = None,
        decimal_comma: DecimalCommaOpt = False,
        create_missing: CreateMissingOpt = False,
        apply_promotions: ApplyPromotionsOpt = False,
        rejects: RejectsOpt = None,
        dry_run: DryRunOpt = False,
        force: ForceOpt = False,
        as_json: JsonOpt = False,
        max_field: FieldCapOpt = 10_000,
    ) -> None:
        _run_import(entity, file, fmt=fmt.value if fmt else None, encoding=encoding, delimiter=delimiter,
                    map_=map_ or [], map_file=map_file, date_format=date_format,
                    decimal_comma=decimal_comma, create_missing=create_missing, rejects=rejects,
                    dry_run=dry_run, force=force, as_json=as_json, max_field=max_field,
                    apply_promotions=apply_promotions)

    chosen = orders_command if entity == "orders" else command  # only orders take --apply-promotions
    chosen.__doc__ = _IMPORT_HELP[entity] + (
        "\n\nAll or nothing: every row is checked before anything is written; an invalid row "
        "means nothing is imported (exit 65) unless --rejects is given.  Importing the same "
        "file again does nothing.  Exit 75 if another import is running.")
    chosen.__name__ = f"import_{entity}"
    return chosen


for _entity in ("customers", "products", "orders", "payments"):
    import_app.command(_entity)(_make_import(_entity))


def _run_import(entity: str, file: str, *, fmt: str | None, encoding: str | None, delimiter: str | None,
                map_: list[str], map_file: Path | None, date_format: str | None, decimal_comma: bool,
                create_missing: bool, rejects: Path | None, dry_run: bool, force: bool, as_json: bool,
                max_field: int, apply_promotions: bool = False) -> None:
    import json

    from salescrm import hooks, importer

    mapping = importer.load_map_file(map_file) if map_file else importer.Mapping()
    mapping = mapping.merged(importer.Mapping(columns=importer.parse_map_options(map_)))
    opts = importer.Options(
        entity=entity, source=file, fmt=fmt, encoding=encoding, delimiter=delimiter, mapping=mapping,
        date_format=date_format, decimal_comma=decimal_comma, create_missing=create_missing,
        apply_promotions=apply_promotions, rejects=rejects, dry_run=dry_run, force=force, field_cap=max_field)
    with open_db() as conn:
        try:
            with _progress() as progress:
                opts.progress = progress
                summary = importer.run(conn, _db_path(), opts)
        except importer.ImportRejected as exc:
            _print_errors(exc.summary)
            if as_json:
                print(json.dumps(exc.summary.as_dict(), ensure_ascii=False))
            if not dry_run:
                hooks.fire(conn, "import.finished", importer.finished_event(exc.summary))
            raise
        _report(summary)
        if as_json:
            print(json.dumps(summary.as_dict(), ensure_ascii=False))
        if summary.status != "dry-run":
            for event, payload in summary.events:  # records the import made or moved
                hooks.fire(conn, event, payload)
            hooks.fire(conn, "import.finished", importer.finished_event(summary))


def _print_errors(summary: Any) -> None:
    for line in summary.errors:
        print(line, file=sys.stderr)
    more = summary.errors_total - len(summary.errors)
    if more > 0:
        print(f"... and {more} more errors", file=sys.stderr)


def _report(s: Any) -> None:
    name = "standard input" if s.source == "-" else s.source
    if s.status == "already-imported":
        p = s.previous_run or {}
        say(f"{name} was already imported as {s.entity} (run {p.get('id')}, {p.get('finished_at')}): "
            "nothing to do (use --force to import it again)")
        return
    created = "".join(f", {n} new {k} created" for k, n in s.created.items() if n)
    detail = "".join(f", {n} {k.replace('_', ' ')}" for k, n in s.detail.items() if n)
    counts = (f"{s.inserted} inserted, {s.updated} updated, {s.unchanged} unchanged, "
              f"{s.rejected} rejected{created}{detail}")
    if s.rejected:
        _print_errors(s)
    if s.status == "dry-run":
        say(f"dry run of {s.entity} from {name}: {s.rows} rows would give {counts}; nothing was written")
    else:
        say(f"imported {s.entity} from {name}: {s.rows} rows; {counts} (run {s.run_id})")
    if s.rejects_file:
        say(f"rejected rows written to {s.rejects_file}")


@import_app.command("runs")
def import_runs(
    *,
    entity: Annotated[str | None, typer.Option("--entity", help="Only runs of this entity.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many runs.")] = 50,
    fmt: FormatOpt = None,
) -> None:
    """Past imports, newest first: counts, file hash and time."""
    from salescrm import importer
    from salescrm.output import Col, render

    with open_db(write=False) as conn:
        rows = importer.history(conn, entity=entity, limit=limit)
    cols = [Col("id", "int"), Col("entity"), Col("source"), Col("format"), Col("status"), Col("rows", "int"),
            Col("inserted", "int"), Col("updated", "int"), Col("unchanged", "int"), Col("rejected", "int"),
            Col("created", "int"), Col("finished_at", "datetime"), Col("sha256")]
    render(rows, cols, out(fmt), empty="no imports yet")


# --------------------------------------------------------------------------- hooks

EventArg = Annotated[str, typer.Argument(
    help="order.confirmed, order.shipped, order.paid, order.cancelled, customer.created or import.finished.",
    show_default=False)]
HookIdArg = Annotated[int, typer.Argument(help="The hook's id (see 'hook list').", show_default=False)]


@hook_app.command("add")
def hook_add(
    event: EventArg,
    command: Annotated[str, typer.Argument(help="Shell command; the event arrives as JSON on its stdin.",
                                           show_default=False)],
) -> None:
    """Run COMMAND after every EVENT (once the change is committed).  A failing
    hook is reported and never undoes the change."""
    from salescrm import db, hooks

    with open_db() as conn:
        with db.write_tx(conn):
            hook = hooks.add(conn, event, command)
    say(f"hook {hook.id} added for {hook.event}")
    print(hook.id)


@hook_app.command("list")
def hook_list(
    *,
    event: Annotated[str | None, typer.Option("--event", help="Only hooks of this event.")] = None,
    fmt: FormatOpt = None,
) -> None:
    """The registered hooks."""
    from salescrm import hooks
    from salescrm.output import Col, render

    with open_db(write=False) as conn:
        rows = [h.as_dict() for h in hooks.list_hooks(conn, event)]
    render(rows, [Col("id", "int"), Col("event"), Col("enabled", "bool"), Col("command"),
                  Col("created_at", "datetime")], out(fmt), empty="no hooks")


def _set_enabled(hook_id: int, enabled: bool) -> None:
    from salescrm import db, hooks

    with open_db() as conn:
        with db.write_tx(conn):
            hook = hooks.set_enabled(conn, hook_id, enabled)
    say(f"hook {hook.id} ({hook.event}) {'enabled' if enabled else 'disabled'}")


@hook_app.command("disable")
def hook_disable(hook_id: HookIdArg) -> None:
    """Stop running a hook (it stays registered)."""
    _set_enabled(hook_id, False)


@hook_app.command("enable")
def hook_enable(hook_id: HookIdArg) -> None:
    """Run a disabled hook again."""
    _set_enabled(hook_id, True)


@hook_app.command("remove")
def hook_remove(hook_id: HookIdArg) -> None:
    """Delete a hook."""
    from salescrm import db, hooks

    with open_db() as conn:
        with db.write_tx(conn):
            hooks.remove(conn, hook_id)
    say(f"hook {hook_id} removed")


@hook_app.command("test")
def hook_test(hook_id: HookIdArg) -> None:
    """Run a hook now with a sample event (marked "test": true); exit 1 if it fails."""
    from salescrm import hooks
    from salescrm.errors import ExitCode

    with open_db(write=False) as conn:
        hook = hooks.get(conn, hook_id)
    result = hooks.run_hook(hook, hooks.envelope(hook.event, hooks.test_payload(hook.event)),
                            db_path=str(_db_path()))
    if result.ok:
        say(f"hook {hook.id} ({hook.event}) ran: {result.detail}")
        return
    print(f"Error: hook {hook.id} ({hook.event}) failed: {result.detail}", file=sys.stderr)
    raise typer.Exit(ExitCode.REFUSED)


# --------------------------------------------------------------------------- export


class Archived(str, enum.Enum):
    active = "active"
    archived = "archived"
    all = "all"


_EXPORT_HELP = {
    "customers": "Export customers (columns as 'import customers' reads them).",
    "products": "Export products (columns as 'import products' reads them).",
    "orders": "Export orders, one row each, with their totals.",
    "lines": "Export order lines, the order's fields repeated on each: the shape 'import orders' reads.",
    "payments": "Export payments and refunds (columns as 'import payments' reads them).",
    "all": "Export customers, products, orders, lines and payments, one file each into -o FOLDER.",
}


def _make_export(what: str) -> Callable[..., None]:
    def command(
        *,
        fmt: Annotated[InFormat | None, typer.Option(
            "--format", "-f", case_sensitive=False, show_default=False,
            help="csv, tsv, json or jsonl (default: from -o's extension, else csv).")] = None,
        output: Annotated[str | None, typer.Option(
            "--output", "-o", show_default=False,
            help="File to write (created 0600, appears only when complete); '-' or none: stdout.")] = None,
        force: Annotated[bool, typer.Option("--force", help="Overwrite the output file if it exists.")] = False,
        raw: Annotated[bool, typer.Option(
            "--raw", help="No spreadsheet-formula escaping of text cells (CSV/TSV).")] = False,
        search: Annotated[str | None, typer.Option("--search", help="Customers: name, company, e-mail or phone.")] = None,
        segment: Annotated[str | None, typer.Option("--segment", help="Customers of this segment.")] = None,
        region: Annotated[str | None, typer.Option("--region", help="Customers of this region.")] = None,
        city: Annotated[str | None, typer.Option("--city", help="Customers of this city.")] = None,
        owner: Annotated[str | None, typer.Option("--owner", help="Customers of this owner.")] = None,
        tag: Annotated[list[str] | None, typer.Option("--tag", help="Customers with this tag (repeatable).")] = None,
        since: Annotated[str | None, typer.Option("--since", help="Customers created on or after this date.")] = None,
        archived: Annotated[Archived, typer.Option(
            "--archived", case_sensitive=False, help="Customers/products: active, archived or all.")] = Archived.all,
        category: Annotated[str | None, typer.Option("--category", help="Products of this category.")] = None,
        status: Annotated[str | None, typer.Option(
            "--status", help="Orders: statuses, comma-separated (also open, booked).")] = None,
        customer: Annotated[str | None, typer.Option("--customer", help="Orders of this customer (id or e-mail).")] = None,
        channel: Annotated[str | None, typer.Option("--channel", help="Orders of these channels.")] = None,
        salesperson: Annotated[str | None, typer.Option("--salesperson", help="Orders of this salesperson.")] = None,
        date_from: Annotated[str | None, typer.Option("--from", help="Orders dated on or after (YYYY-MM-DD).")] = None,
        date_to: Annotated[str | None, typer.Option("--to", help="Orders dated on or before (YYYY-MM-DD).")] = None,
    ) -> None:
        from salescrm import exporter

        filters = exporter.Filters(search=search, segment=segment, region=region, city=city, owner=owner,
                                   tags=tag or [], since=since, archived=archived.value, category=category,
                                   status=status, customer=customer, channel=channel, salesperson=salesperson,
                                   date_from=date_from, date_to=date_to)
        _run_export(what, output, fmt.value if fmt else None, filters, raw=raw, force=force)

    command.__doc__ = _EXPORT_HELP[what] + (
        "\n\nStreamed; the file appears atomically, 0600, never overwritten without --force.  "
        "CSV/TSV text cells starting with = + - @, tab or CR get a leading ' (--raw: not).")
    command.__name__ = f"export_{what}"
    return command


def _run_export(what: str, output: str | None, fmt: str | None, filters: Any, *, raw: bool, force: bool) -> None:
    from salescrm import exporter
    from salescrm.errors import UsageError

    form = exporter.detect_format(output, fmt)
    with open_db(write=False) as conn:
        if what == "all":
            if not output or output == "-":
                raise UsageError("'export all' writes one file per part", "give a folder with -o FOLDER")
            counts = exporter.export_all(conn, Path(output), form, filters=filters, raw=raw, force=force)
            say(f"exported to {output}: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
            return
        if output and output != "-":
            n = exporter.export_to_file(conn, what, Path(output), form, filters=filters, raw=raw, force=force)
            say(f"exported {n} {what} to {output}")
            return
        exporter.write(conn, exporter.query(conn, what, filters), sys.stdout, form, raw=raw)


for _what in ("customers", "products", "orders", "lines", "payments", "all"):
    export_app.command(_what)(_make_export(_what))
