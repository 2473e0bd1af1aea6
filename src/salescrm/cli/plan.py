"""``salescrm plan ...``: parsing and rendering only; the work is done in
``salescrm.plans``.  Each command's writes are one transaction."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from salescrm.cli.common import FormatOpt, open_db, out, say

HELP = """Sales plans: targets for a period with live attainment.

A plan measures one metric (revenue, units, orders, new_customers) over a
period (2026, 2026-H1, 2026-Q1, 2026-03, 2026-W05, a day, A..B, or --from/--to)
on one basis: booked (confirmed orders by order date), shipped (by shipment
date) or collected (payments less refunds by payment date; revenue only).
Scope it by channel, category, SKU, region, segment and salesperson (any
combination; commas or repeats for several values).  Revenue is net of tax
and shipping, after discounts and promotions; cancelled orders and returned
units never count.
"""

app = typer.Typer(no_args_is_help=True, help=HELP, rich_markup_mode=None)


def _opt(help: str, *names: str, metavar: str | None = None):
    return typer.Option(*names, help=help, show_default=False, metavar=metavar)


PlanArg = Annotated[str, typer.Argument(metavar="PLAN", help="Plan name (any case) or id.", show_default=False)]
Period = Annotated[str | None, _opt("Period: 2026, 2026-H1, 2026-Q1, 2026-03, 2026-W05, 2026-03-15 or "
                                    "2026-01-01..2026-03-31.", "--period", "-p", metavar="PERIOD")]
From = Annotated[str | None, _opt("First day (with --to, instead of --period).", "--from", metavar="DATE")]
To = Annotated[str | None, _opt("Last day (with --from).", "--to", metavar="DATE")]
Metric = Annotated[str | None, _opt("revenue (default), units, orders or new_customers.", "--metric")]
Basis = Annotated[str | None, _opt("booked (default), shipped or collected.", "--basis")]
Target = Annotated[str | None, _opt("Target: an amount for revenue (30000, 1234.50), else a whole number.",
                                    "--target", "-t", metavar="VALUE")]
Channel = Annotated[list[str] | None, _opt("Scope: only orders of this sales channel (repeat or commas).",
                                           "--channel", metavar="CHANNEL")]
Category = Annotated[list[str] | None, _opt("Scope: only products of this category.", "--category")]
Sku = Annotated[list[str] | None, _opt("Scope: only this product.", "--sku")]
Region = Annotated[list[str] | None, _opt("Scope: only customers of this region.", "--region")]
Segment = Annotated[list[str] | None, _opt("Scope: only customers of this segment.", "--segment")]
Salesperson = Annotated[list[str] | None, _opt("Scope: only orders of this salesperson.", "--salesperson")]
Strategy = Annotated[str | None, _opt("How the target will be reached (free text).", "--strategy")]
Marketing = Annotated[str | None, _opt("Marketing channel used (newsletter, fair, ...; free text).",
                                       "--marketing-channel", metavar="TEXT")]
Budget = Annotated[str | None, _opt("Budget for the plan, e.g. 500.", "--budget", metavar="AMOUNT")]
Distribute = Annotated[str | None, _opt("Spread the target over sub-periods: even, weights or seasonal "
                                        "(last year's actuals); none removes it.", "--distribute")]
Weights = Annotated[str | None, _opt("Custom weights, one per sub-period, e.g. 1,1,2.", "--weights",
                                     metavar="W,W,...")]
Split = Annotated[str | None, _opt("Sub-periods: week, month or quarter (default month; week for a "
                                   "period of a month or less).", "--split")]
AsOf = Annotated[str | None, _opt("Measure as if today were DATE (default today).", "--as-of", metavar="DATE")]


def _scope(**dims: list[str] | None) -> dict[str, Any]:
    return {k: v for k, v in dims.items() if v is not None}


def _money(value: str | None, field: str) -> int | None:
    from salescrm import money

    return None if value is None else money.parse_money(value, field=field)


def _display(value: Any, metric: str) -> Any:
    """Metric values for output: revenue in currency units (2 decimals), counts as numbers."""
    from decimal import Decimal

    if value is None:
        return None
    if metric == "revenue":
        return Decimal(value).quantize(Decimal(1)).scaleb(-2)
    return Decimal(value)


def _period_text(p: dict[str, Any]) -> str:
    return p.get("period_label") or f"{p['period_start']}..{p['period_end']}"


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A unique name, e.g. 'Q1 tea'.", show_default=False)],
    *,
    target: Target = None,
    period: Period = None,
    date_from: From = None,
    date_to: To = None,
    metric: Metric = None,
    basis: Basis = None,
    channel: Channel = None,
    category: Category = None,
    sku: Sku = None,
    region: Region = None,
    segment: Segment = None,
    salesperson: Salesperson = None,
    strategy: Strategy = None,
    marketing_channel: Marketing = None,
    budget: Budget = None,
    distribute: Distribute = None,
    weights: Weights = None,
    split: Split = None,
) -> None:
    """Add a plan; prints its id on stderr."""
    from salescrm import db, plans
    from salescrm.errors import ValidationError

    if target is None:
        raise ValidationError("a plan needs a --target")
    dist = distribute or ("weights" if weights else "none")
    with open_db() as conn, db.write_tx(conn):
        pid = plans.add(conn, name=name, target=target, period=period, start=date_from, end=date_to,
                        metric=metric or "revenue", basis=basis or "booked",
                        scope=_scope(channel=channel, category=category, sku=sku, region=region, segment=segment,
                                     salesperson=salesperson),
                        strategy=strategy, marketing_channel=marketing_channel, budget=_money(budget, "budget"),
                        distribution=dist, weights=weights, split=split)
        p = plans.get(conn, pid)
    say(f"added plan {pid}: {p['name']} ({_period_text(p)}, {p['metric'].replace('_', ' ')}, {p['basis']})")


@app.command("edit")
def edit(
    plan: PlanArg,
    *,
    name: Annotated[str | None, _opt("New name.", "--name")] = None,
    target: Target = None,
    period: Period = None,
    date_from: From = None,
    date_to: To = None,
    metric: Metric = None,
    basis: Basis = None,
    channel: Channel = None,
    category: Category = None,
    sku: Sku = None,
    region: Region = None,
    segment: Segment = None,
    salesperson: Salesperson = None,
    strategy: Strategy = None,
    marketing_channel: Marketing = None,
    budget: Budget = None,
    distribute: Distribute = None,
    weights: Weights = None,
    split: Split = None,
) -> None:
    """Change a plan; a scope option replaces that dimension ("" clears it).
    Sub-period targets are recomputed."""
    from salescrm import db, plans

    with open_db() as conn, db.write_tx(conn):
        p = plans.edit(conn, plan, name=name, target=target, period=period, start=date_from, end=date_to,
                       metric=metric, basis=basis,
                       scope=_scope(channel=channel, category=category, sku=sku, region=region, segment=segment,
                                    salesperson=salesperson),
                       strategy=strategy, marketing_channel=marketing_channel, budget=_money(budget, "budget"),
                       distribution=distribute, weights=weights, split=split)
    say(f"updated plan {p['id']}: {p['name']}")


def _list_cols():
    from salescrm.output import Col

    return [Col("id", "int"), Col("name"), Col("period"), Col("period_start", "date", "from"),
            Col("period_end", "date", "to"), Col("metric"), Col("basis"), Col("target", "decimal"),
            Col("scope"), Col("distribution"), Col("budget", "money"), Col("spent", "money")]


@app.command("list")
def list_(*, fmt: FormatOpt = None) -> None:
    """Every plan, by period."""
    from salescrm import plans
    from salescrm.output import render

    with open_db(write=False) as conn:
        rows = plans.list_plans(conn)
    for r in rows:
        r["period"] = _period_text(r)
        r["scope"] = plans.scope_text(r)
        r["target"] = _display(r["target"], r["metric"])
    render(rows, _list_cols(), out(fmt), empty="no plans")


def _target_cols():
    from salescrm.output import Col

    return [Col("seq", "int", "#"), Col("period_start", "date", "from"), Col("period_end", "date", "to"),
            Col("weight", "decimal"), Col("target", "decimal")]


@app.command("show")
def show(plan: PlanArg, *, fmt: FormatOpt = None) -> None:
    """A plan's definition, sub-period targets and spending."""
    from decimal import Decimal

    from salescrm import plans
    from salescrm.output import Col, Section, render_record

    with open_db(write=False) as conn:
        p = plans.get(conn, plan)
        ts = plans.targets(conn, p["id"])
        sp = plans.spending(conn, p["id"])
    p["period"] = _period_text(p)
    p["scope"] = plans.scope_text(p)
    p["spent"] = sum(s["amount_cents"] for s in sp)
    m = p["metric"]
    p["target"] = _display(p["target"], m)
    for t in ts:
        t["target"] = _display(t["target"], m)
        t["weight"] = Decimal(t["weight"])
    for s in sp:
        s["amount"] = s.pop("amount_cents")
    cols = [Col("id", "int"), Col("name"), Col("period"), Col("period_start", "date", "from"),
            Col("period_end", "date", "to"), Col("metric"), Col("basis"), Col("target", "decimal"),
            *[Col(f"scope_{d}", label=d) for d in plans.SCOPES], Col("strategy"),
            Col("marketing_channel", label="marketing channel"), Col("budget", "money"), Col("spent", "money"),
            Col("distribution"), Col("split"), Col("created_at", "datetime", "created"),
            Col("updated_at", "datetime", "updated")]
    render_record(p, cols, out(fmt), title=f"Plan {p['id']}: {p['name']}", sections=[
        Section("targets", _target_cols(), ts, title="Sub-period targets", empty="not distributed"),
        Section("spending", [Col("id", "int"), Col("spent_on", "date", "date"), Col("amount", "money"),
                             Col("note"), Col("os_user", label="user")], sp, title="Spending", empty="none"),
    ])


@app.command("delete")
def delete(plan: PlanArg) -> None:
    """Delete a plan with its sub-period targets and spending."""
    from salescrm import db, plans

    with open_db() as conn, db.write_tx(conn):
        p = plans.delete(conn, plan)
    say(f"deleted plan {p['id']}: {p['name']}")


@app.command("spend")
def spend(
    plan: PlanArg,
    amount: Annotated[str, typer.Argument(metavar="AMOUNT", help="Amount spent, e.g. 250.00.", show_default=False)],
    *,
    note: Annotated[str | None, _opt("What it was spent on.", "--note")] = None,
    date: Annotated[str | None, _opt("When (default today).", "--date", metavar="DATE")] = None,
) -> None:
    """Record spending against the plan's budget."""
    from salescrm import db, money, plans

    cents = money.parse_money(amount, field="amount")
    with open_db() as conn, db.write_tx(conn):
        plans.spend(conn, plan, cents, note=note, on=date)
        p = plans.get(conn, plan)
        spent = sum(s["amount_cents"] for s in plans.spending(conn, p["id"]))
    budget = f" of {money.fmt_human(p['budget'])}" if p["budget"] is not None else ""
    say(f"recorded {money.fmt_human(cents)} on {p['name']}: spent {money.fmt_human(spent)}{budget}")


def _status_cols(single: bool):
    from salescrm.output import Col

    cols = [Col("name"), Col("metric"), Col("basis"), Col("period"), Col("target", "decimal"),
            Col("achieved", "decimal"), Col("variance", "decimal"), Col("attainment_pct", "percent", "attained"),
            Col("elapsed_pct", "percent", "elapsed"), Col("expected", "decimal", "expected to date"),
            Col("state"), Col("projected", "decimal"), Col("needed_per_day", "decimal", "needed/day"),
            Col("days_left", "int", "days left"), Col("budget", "money"), Col("spent", "money"),
            Col("revenue_per_budget", "decimal", "revenue per 1 spent")]
    if single:
        cols = [Col("id", "int"), *cols[:4], Col("period_start", "date", "from"), Col("period_end", "date", "to"),
                Col("scope"), *cols[4:], Col("days_total", "int", "days"), Col("days_elapsed", "int", "days elapsed"),
                Col("projected_pct", "percent", "projected attainment"), Col("budget_left", "money", "budget left"),
                Col("revenue", "decimal"), Col("strategy"), Col("marketing_channel", label="marketing channel")]
    return cols


def _for_output(s: dict[str, Any]) -> dict[str, Any]:
    d = dict(s)
    m = s["metric"]
    d["period"] = _period_text(s)
    for k in ("target", "achieved", "variance", "expected", "projected", "needed_per_day"):
        d[k] = _display(s[k], m)
    d["revenue"] = _display(s["revenue"], "revenue")
    d["subperiods"] = [{**sp, "target": _display(sp["target"], m), "achieved": _display(sp["achieved"], m),
                        "variance": _display(sp["variance"], m)} for sp in s["subperiods"]]
    return d


@app.command("status")
def status(
    plan: Annotated[str | None, typer.Argument(metavar="[PLAN]", help="One plan (default: every current plan).",
                                               show_default=False)] = None,
    *,
    short: Annotated[bool, typer.Option("--short", help="One line per plan, for a shell prompt or a cron "
                                        "e-mail.")] = False,
    all_: Annotated[bool, typer.Option("--all", help="Every plan, not only those running today.")] = False,
    as_of: AsOf = None,
    fmt: FormatOpt = None,
) -> None:
    """Target, achieved, variance, attainment, elapsed time, run-rate
    projection, what is needed per remaining day, budget spent and revenue
    per unit of budget; per sub-period when the target is distributed.
    Elapsed counts the whole days before today; needed per day divides what
    is left by the days left, today included."""
    from salescrm import plans, validate
    from salescrm.output import Col, Section, render, render_record

    today = validate.parse_date(as_of, field="--as-of") if as_of else None
    with open_db(write=False) as conn:
        if plan is not None:
            rows = [plans.status(conn, plan, today=today)]
        else:
            rows = plans.status_all(conn, today=today, current_only=not all_)
    if short:
        if not rows:
            say("no current plans" if not all_ else "no plans")
        for r in rows:
            print(plans.short_line(r))
        return
    shown = [_for_output(r) for r in rows]
    if plan is not None:
        s = shown[0]
        sub_cols = [Col("seq", "int", "#"), Col("period_start", "date", "from"), Col("period_end", "date", "to"),
                    Col("target", "decimal"), Col("achieved", "decimal"), Col("variance", "decimal"),
                    Col("attainment_pct", "percent", "attained"), Col("elapsed_pct", "percent", "elapsed"),
                    Col("state")]
        render_record(s, _status_cols(True), out(fmt), title=f"Plan {s['name']}: {s['state']}", sections=[
            Section("subperiods", sub_cols, s["subperiods"], title="Sub-periods", empty="not distributed")])
        return
    from salescrm.output import resolve_format

    cols = _status_cols(False)
    if resolve_format(fmt.value if fmt else None) in ("table", "markdown"):  # people: what fits a terminal
        keep = ("name", "period", "target", "achieved", "attainment_pct", "elapsed_pct", "state", "projected",
                "needed_per_day")
        cols = [c for c in cols if c.key in keep]
    render(shown, cols, out(fmt),
           empty="no plans running today (--all shows every plan)" if not all_ else "no plans")
