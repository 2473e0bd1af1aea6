"""``salescrm customer ...`` and ``salescrm agenda``: parsing and rendering
only; the work is done in ``salescrm.customers``."""

from __future__ import annotations

import enum
from typing import Annotated

import typer

from salescrm.cli.common import FormatOpt, open_db, out, say

app = typer.Typer(no_args_is_help=True)
agenda_app = typer.Typer()


class InteractionType(str, enum.Enum):
    call = "call"
    email = "email"
    meeting = "meeting"
    visit = "visit"
    note = "note"


# --------------------------------------------------------------------------- shared options


def _opt(help: str, *names: str, metavar: str = "TEXT"):
    return typer.Option(*names, help=help, show_default=False, metavar=metavar)


CustomerArg = Annotated[str, typer.Argument(metavar="CUSTOMER", help="The customer: its id or e-mail address.",
                                            show_default=False)]
Email = Annotated[str | None, _opt("E-mail address (unique, case-insensitive).", "--email", metavar="EMAIL")]
Phone = Annotated[str | None, _opt("Phone number; stored as digits with an optional leading +.", "--phone", metavar="PHONE")]
Company = Annotated[str | None, _opt("Company name.", "--company")]
Address = Annotated[str | None, _opt("Street address.", "--address")]
City = Annotated[str | None, _opt("City.", "--city")]
Region = Annotated[str | None, _opt("Region (sales region, state, province).", "--region")]
Country = Annotated[str | None, _opt("Country.", "--country")]
Segment = Annotated[str | None, _opt("Segment, e.g. retail or wholesale.", "--segment")]
Source = Annotated[str | None, _opt("Source channel, e.g. referral, web, fair.", "--source")]
Owner = Annotated[str | None, _opt("Owner: the salesperson responsible.", "--owner", metavar="NAME")]
Note = Annotated[str | None, _opt("Free-text notes.", "--note", "--notes")]
CreditLimit = Annotated[str | None, _opt("Credit limit, an amount like 5000 or 1234.50.",
                                         "--credit-limit", metavar="AMOUNT")]
TermsDays = Annotated[str | None, _opt("Payment terms in days, e.g. 30.", "--terms-days", metavar="DAYS")]
ExternalId = Annotated[str | None, _opt("Id of this customer in another system (unique).", "--external-id")]
Tags = Annotated[list[str] | None, _opt("A tag (repeat for several).", "--tag", metavar="TAG")]

# filters shared by list and sample
Search = Annotated[str | None, _opt("Text in the name, company, e-mail or phone (any case).", "--search",
                                    "-s", metavar="TEXT")]
FSegment = Annotated[str | None, _opt("Only this segment (exact; \"\" for none).", "--segment")]
FRegion = Annotated[str | None, _opt("Only this region (exact; \"\" for none).", "--region")]
FCity = Annotated[str | None, _opt("Only this city (exact; \"\" for none).", "--city")]
FOwner = Annotated[str | None, _opt("Only customers of this salesperson.", "--owner", metavar="NAME")]
FTags = Annotated[list[str] | None, _opt("Only customers with this tag (repeat: all of them).", "--tag", metavar="TAG")]
Since = Annotated[str | None, _opt("Only customers created on or after DATE (YYYY-MM-DD, -30d).",
                                   "--since", metavar="DATE")]
Archived = Annotated[bool, typer.Option("--archived", help="Only archived customers.")]
AllOpt = Annotated[bool, typer.Option("--all", help="Active and archived customers.")]


def _filters(*, search, segment, region, city, owner, tag, since, archived, all_):
    from salescrm.customers import Filters
    from salescrm.errors import UsageError

    if archived and all_:
        raise UsageError("--archived and --all cannot be combined")
    return Filters(search=search, segment=segment, region=region, city=city, owner=owner,
                   tags=tuple(tag or ()), since=since,
                   archived="archived" if archived else "all" if all_ else "active")


def _list_cols(fmt_name: str, *, stratum: bool = False):
    from salescrm.output import Col

    if stratum and fmt_name in ("table", "markdown"):
        return [Col("stratum"), Col("id", "int"), Col("name"), Col("email"), Col("phone"), Col("city")]
    if fmt_name in ("table", "markdown"):
        # people read these on an 80-column terminal: the main fields only
        cols = [Col("id", "int"), Col("name"), Col("company"), Col("email"), Col("phone"),
                Col("city"), Col("segment"), Col("tags", "list")]
    else:
        cols = [Col("id", "int"), Col("name"), Col("company"), Col("email"), Col("phone"),
                Col("address"), Col("city"), Col("region"), Col("country"), Col("segment"),
                Col("source"), Col("owner"), Col("tags", "list"), Col("credit_limit", "money"),
                Col("payment_terms_days", "int"), Col("external_id"), Col("created_at", "datetime"),
                Col("updated_at", "datetime"), Col("archived_at", "datetime")]
    if stratum:
        cols.insert(0, Col("stratum"))
    return cols


def _fields(**values):
    """The profile options that were given (None: not given)."""
    return {k: v for k, v in values.items() if v is not None}


# --------------------------------------------------------------------------- add, show, list, edit, delete


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The customer's name (a person or a business).",
                                        show_default=False)],
    *,
    email: Email = None,
    phone: Phone = None,
    company: Company = None,
    address: Address = None,
    city: City = None,
    region: Region = None,
    country: Country = None,
    segment: Segment = None,
    source: Source = None,
    owner: Owner = None,
    tag: Tags = None,
    note: Note = None,
    credit_limit: CreditLimit = None,
    terms_days: TermsDays = None,
    external_id: ExternalId = None,
) -> None:
    """Add a customer; prints its id on stderr."""
    from salescrm import customers, db

    fields = _fields(email=email, phone=phone, company=company, address=address, city=city,
                     region=region, country=country, segment=segment, source=source, owner=owner,
                     notes=note, credit_limit=credit_limit, payment_terms_days=terms_days,
                     external_id=external_id)
    with open_db() as conn:
        with db.write_tx(conn):
            cid = customers.add(conn, name, tags=tag or (), **fields)
        say(f"added customer {cid}")
        _fire_created(conn, cid)


def _fire_created(conn, cid: int) -> None:
    """Run the ``customer.created`` hooks, after the commit (ids only)."""
    try:
        from salescrm import hooks
    except ImportError:  # pragma: no cover - the hooks module is part of the package
        return
    hooks.fire(conn, "customer.created", {"customer_id": cid})


@app.command("show")
def show(
    customer: CustomerArg,
    *,
    interactions: Annotated[int, typer.Option("--interactions", "-n", min=0,
                                              help="How many of the latest interactions to show.")] = 10,
    fmt: FormatOpt = None,
) -> None:
    """The profile: fields, tags, rating average, orders summary, latest
    interactions, open tasks and latest ratings."""
    from salescrm import customers
    from salescrm.output import Col, Section, render_record

    with open_db(write=False) as conn:
        data = customers.profile(conn, customers.resolve(conn, customer), interactions=interactions)
    c = data["customer"]
    cols = [Col("id", "int"), Col("name"), Col("company"), Col("email"), Col("phone"), Col("address"),
            Col("city"), Col("region"), Col("country"), Col("segment"), Col("source"), Col("owner"),
            Col("tags", "list"), Col("notes"), Col("credit_limit", "money"),
            Col("payment_terms_days", "int"), Col("external_id"),
            Col("rating_avg", "decimal"), Col("rating_count", "int"),
            Col("order_count", "int"), Col("revenue", "money"), Col("open_balance", "money"),
            Col("last_order_date", "date"),
            Col("created_at", "datetime"), Col("updated_at", "datetime"), Col("archived_at", "datetime")]
    sections = [
        Section("interactions", [Col("id", "int"), Col("at", "datetime"), Col("type"), Col("text"),
                                 Col("os_user")], data["interactions"], title="Latest interactions"),
        Section("tasks", [Col("id", "int"), Col("due", "date"), Col("status"),
                          Col("days_overdue", "int"), Col("text")], data["tasks"], title="Open tasks"),
        Section("ratings", [Col("id", "int"), Col("at", "datetime"), Col("score", "int"),
                            Col("comment")], data["ratings"], title="Latest ratings"),
    ]
    title = f"Customer {c['id']}: {c['name']}" + (" (archived)" if c["archived_at"] else "")
    render_record(c, cols, out(fmt), title=title, sections=sections)


@app.command("list")
def list_(
    *,
    search: Search = None,
    segment: FSegment = None,
    region: FRegion = None,
    city: FCity = None,
    tag: FTags = None,
    owner: FOwner = None,
    since: Since = None,
    sort: Annotated[str | None, _opt(
        "Sort by FIELD[,FIELD]; a leading - sorts descending (e.g. -created_at,name). Fields: id, name, "
        "company, email, phone, city, region, country, segment, source, owner, credit_limit, "
        "payment_terms_days, created_at, updated_at.", "--sort", metavar="FIELDS")] = None,
    limit: Annotated[int | None, _opt("Show at most N customers.", "--limit", "-l", metavar="N")] = None,
    archived: Archived = False,
    all_: AllOpt = False,
    fmt: FormatOpt = None,
) -> None:
    """List customers (archived ones only with --archived or --all)."""
    from salescrm import customers
    from salescrm.output import render, resolve_format

    filters = _filters(search=search, segment=segment, region=region, city=city, owner=owner,
                       tag=tag, since=since, archived=archived, all_=all_)
    opts = out(fmt)
    fmt_name = resolve_format(opts.fmt)
    with open_db(write=False) as conn:
        rows = customers.search(conn, filters, sort=sort, limit=limit)
        summary = None
        if fmt_name == "table" and limit is not None and len(rows) == limit:
            total = customers.count(conn, filters)
            if total > limit:
                summary = [f"showing {limit:,} of {total:,} customers (raise --limit to see more)"]
    render(rows, _list_cols(fmt_name), opts, summary=summary, empty="no customers match")


@app.command("edit")
def edit(
    customer: CustomerArg,
    *,
    name: Annotated[str | None, _opt("New name.", "--name")] = None,
    email: Email = None,
    phone: Phone = None,
    company: Company = None,
    address: Address = None,
    city: City = None,
    region: Region = None,
    country: Country = None,
    segment: Segment = None,
    source: Source = None,
    owner: Owner = None,
    tag: Annotated[list[str] | None, _opt("Replace the tags with these (repeat; --tag \"\" removes all).",
                                          "--tag", metavar="TAG")] = None,
    add_tag: Annotated[list[str] | None, _opt("Add a tag (repeat for several).", "--add-tag", metavar="TAG")] = None,
    remove_tag: Annotated[list[str] | None, _opt("Remove a tag (repeat for several).", "--remove-tag", metavar="TAG")] = None,
    note: Note = None,
    credit_limit: CreditLimit = None,
    terms_days: TermsDays = None,
    external_id: ExternalId = None,
) -> None:
    """Change a customer's fields.  Only the options given change; an empty
    string clears a field (--phone "")."""
    from salescrm import customers, db

    changes = _fields(name=name, email=email, phone=phone, company=company, address=address, city=city,
                      region=region, country=country, segment=segment, source=source, owner=owner,
                      notes=note, credit_limit=credit_limit, payment_terms_days=terms_days,
                      external_id=external_id)
    with open_db() as conn, db.write_tx(conn):
        cid = customers.resolve(conn, customer)
        changed = customers.edit(conn, cid, changes, set_tags=tag, add_tags=add_tag or (),
                                 remove_tags=remove_tag or ())
    if changed:
        say(f"updated customer {cid}: {', '.join(f.replace('_', ' ') for f in changed)}")
    else:
        say(f"customer {cid} unchanged")


@app.command("delete")
def delete(
    customer: CustomerArg,
    *,
    force: Annotated[bool, typer.Option(
        "--force", help="If the customer has orders, archive it instead of refusing.")] = False,
) -> None:
    """Delete a customer with its tags, interactions, ratings and tasks.  A
    customer with orders is refused; --force archives it instead."""
    from salescrm import customers, db

    with open_db() as conn, db.write_tx(conn):
        cid = customers.resolve(conn, customer)
        result = customers.delete(conn, cid, force=force)
    if result == "archived":
        say(f"archived customer {cid} (it has orders; see it with 'customer list --archived')")
    elif result == "already archived":
        say(f"customer {cid} was already archived")
    else:
        say(f"deleted customer {cid}")


@app.command("restore")
def restore(customer: CustomerArg) -> None:
    """Un-archive a customer."""
    from salescrm import customers, db

    with open_db() as conn, db.write_tx(conn):
        cid = customers.resolve(conn, customer)
        done = customers.restore(conn, cid)
    say(f"restored customer {cid}" if done else f"customer {cid} was not archived")


# --------------------------------------------------------------------------- interactions, ratings, tasks


@app.command("log")
def log(
    customer: CustomerArg,
    *,
    type_: Annotated[InteractionType, typer.Option("--type", "-t", help="What kind of contact.",
                                                   show_default=False)],
    text: Annotated[str, _opt("What happened.", "--text", "-m")],
    at: Annotated[str | None, _opt("When (ISO date or date-time, local time; default now).",
                                   "--at", metavar="TIME")] = None,
    follow_up: Annotated[str | None, _opt("Also create a follow-up task due on DATE (YYYY-MM-DD, +3d).",
                                          "--follow-up", metavar="DATE")] = None,
) -> None:
    """Record a call, e-mail, meeting, visit or note."""
    from salescrm import customers, db

    with open_db() as conn, db.write_tx(conn):
        cid = customers.resolve(conn, customer)
        iid, task_id = customers.log(conn, cid, type_.value, text, at=at, follow_up=follow_up)
    say(f"logged {type_.value} {iid} for customer {cid}"
        + (f"; follow-up task {task_id}" if task_id else ""))


@app.command("rate")
def rate(
    customer: CustomerArg,
    *,
    score: Annotated[str, _opt("A score from 1 (poor) to 5 (excellent).", "--score", metavar="1-5")],
    comment: Annotated[str | None, _opt("Why.", "--comment")] = None,
) -> None:
    """Rate a customer from 1 to 5."""
    from salescrm import customers, db

    with open_db() as conn, db.write_tx(conn):
        cid = customers.resolve(conn, customer)
        customers.rate(conn, cid, score, comment)
    say(f"rated customer {cid}")


@app.command("remind")
def remind(
    customer: CustomerArg,
    due: Annotated[str, typer.Argument(metavar="DATE", help="Due date: YYYY-MM-DD, today, tomorrow, +3d.",
                                       show_default=False)],
    *,
    text: Annotated[str, _opt("What to do.", "--text", "-m")],
) -> None:
    """Create a follow-up task (shown by 'salescrm agenda' and on the profile)."""
    from salescrm import customers, db

    with open_db() as conn, db.write_tx(conn):
        cid = customers.resolve(conn, customer)
        task_id = customers.remind(conn, cid, due, text)
    say(f"added task {task_id} for customer {cid}")


# --------------------------------------------------------------------------- clean-up and sampling


@app.command("dupes")
def dupes(
    *,
    all_: Annotated[bool, typer.Option("--all", help="Include archived customers.")] = False,
    fmt: FormatOpt = None,
) -> None:
    """Likely duplicates: the same e-mail (ignoring case and +suffix), the
    same phone, or the same name within a company."""
    from salescrm import customers
    from salescrm.output import Col, render

    with open_db(write=False) as conn:
        rows = customers.dupes(conn, include_archived=all_)
    cols = [Col("group", "int"), Col("reason"), Col("id", "int"), Col("name"), Col("company"),
            Col("email"), Col("phone"), Col("created_at", "datetime")]
    render(rows, cols, out(fmt), empty="no likely duplicates")
    if rows:
        say(f"{rows[-1]['group']} group(s); merge with 'salescrm customer merge KEEP OTHER'")


@app.command("merge")
def merge(
    keep: Annotated[str, typer.Argument(metavar="KEEP", help="The customer to keep (id or e-mail).",
                                        show_default=False)],
    other: Annotated[str, typer.Argument(metavar="OTHER", help="The customer merged into KEEP and removed.",
                                         show_default=False)],
    *,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would move; change nothing.")] = False,
    fmt: FormatOpt = None,
) -> None:
    """Move every record of OTHER (interactions, ratings, tasks, tags, orders
    ...) onto KEEP, fill KEEP's empty fields from OTHER, delete OTHER: one
    transaction, recorded in the merge history."""
    from salescrm import customers, db
    from salescrm.output import Col, render

    if dry_run:
        with open_db(write=False) as conn:
            keep_id, other_id = customers.resolve(conn, keep), customers.resolve(conn, other)
            if keep_id == other_id:
                from salescrm.errors import ValidationError

                raise ValidationError(f"cannot merge customer {keep_id} into itself")
            refs = customers.references(conn, other_id)
        render([{"table": t, "rows": n} for t, n in sorted(refs.items())],
               [Col("table"), Col("rows", "int")], out(fmt), empty="nothing to move")
        say(f"dry run: would merge customer {other_id} into {keep_id}; nothing changed")
        return
    with open_db() as conn, db.write_tx(conn):
        keep_id, other_id = customers.resolve(conn, keep), customers.resolve(conn, other)
        result = customers.merge(conn, keep_id, other_id)
    moved = ", ".join(f"{n} {t}" for t, n in sorted(result["moved"].items())) or "no records"
    filled = ", ".join(result["filled"])
    say(f"merged customer {other_id} into {keep_id}: moved {moved}" + (f"; filled {filled}" if filled else ""))


@app.command("sample")
def sample(
    *,
    n: Annotated[int, typer.Option("--n", help="Sample size.", show_default=False)],
    stratify: Annotated[str | None, _opt(
        "Proportional stratified sample by FIELD: segment, region, city, country, source or owner.",
        "--stratify", metavar="FIELD")] = None,
    seed: Annotated[int | None, _opt("Random seed: the same seed gives the same sample.", "--seed", metavar="N")] = None,
    search: Search = None,
    segment: FSegment = None,
    region: FRegion = None,
    city: FCity = None,
    tag: FTags = None,
    owner: FOwner = None,
    since: Since = None,
    archived: Archived = False,
    all_: AllOpt = False,
    fmt: FormatOpt = None,
) -> None:
    """A random sample of customers for a survey, simple or stratified
    (largest-remainder allocation: the strata add up to exactly N)."""
    from salescrm import customers
    from salescrm.output import render, resolve_format

    filters = _filters(search=search, segment=segment, region=region, city=city, owner=owner,
                       tag=tag, since=since, archived=archived, all_=all_)
    opts = out(fmt)
    with open_db(write=False) as conn:
        result = customers.sample(conn, n, stratify=stratify, seed=seed, filters=filters)
    render(result["rows"], _list_cols(resolve_format(opts.fmt), stratum=True), opts)
    if stratify:
        parts = ", ".join(f"{a['stratum']} {a['sampled']}/{a['population']}" for a in result["allocation"])
        say(f"sampled {n} of {result['population']} by {stratify}: {parts}")
    else:
        say(f"sampled {n} of {result['population']}")
    say(f"seed {result['seed']} (repeat with --seed {result['seed']})")


# --------------------------------------------------------------------------- agenda


@agenda_app.callback(invoke_without_command=True)
def agenda(
    ctx: typer.Context,
    *,
    days: Annotated[int, typer.Option("--days", "-d", min=0,
                                      help="Also show tasks due in the next N days.")] = 0,
    owner: Annotated[str | None, _opt("Only tasks for this salesperson's customers.", "--owner", metavar="NAME")] = None,
    fmt: FormatOpt = None,
) -> None:
    """Open follow-up tasks that are due or overdue, oldest first."""
    if ctx.invoked_subcommand is not None:
        return
    from salescrm import customers
    from salescrm.output import Col, render, resolve_format

    opts = out(fmt)
    with open_db(write=False) as conn:
        rows = customers.agenda(conn, days=days, owner=owner)
    if resolve_format(opts.fmt) in ("table", "markdown"):
        cols = [Col("id", "int"), Col("due", "date"), Col("days_overdue", "int", "late"),
                Col("customer"), Col("owner"), Col("text")]
    else:
        cols = [Col("id", "int"), Col("due", "date"), Col("days_overdue", "int"), Col("status"),
                Col("customer_id", "int"), Col("customer"), Col("owner"), Col("text")]
    render(rows, cols, opts, empty="nothing due")


@agenda_app.command("done")
def agenda_done(
    task: Annotated[list[int], typer.Argument(metavar="TASK...", help="Task id(s) to mark done.",
                                              show_default=False)],
) -> None:
    """Mark tasks done."""
    from salescrm import customers, db

    with open_db() as conn, db.write_tx(conn):
        for task_id in task:
            customers.complete_task(conn, task_id)
    say(f"done: task {', '.join(str(t) for t in task)}")

