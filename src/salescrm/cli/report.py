"""``salescrm report ...`` and ``salescrm dashboard``: parsing and rendering
only; the figures come from ``salescrm.reports``.  Reports never write:
the database is opened read-only (a missing file reads as an empty one)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from salescrm.cli.common import FormatOpt, open_db, out, say

app = typer.Typer(no_args_is_help=True)
customers_app = typer.Typer()
orders_app = typer.Typer()

# --------------------------------------------------------------------------- shared options

FromOpt = Annotated[str | None, typer.Option("--from", help="First day (YYYY-MM-DD, today, -30d ...).",
                                             show_default=False)]
ToOpt = Annotated[str | None, typer.Option("--to", help="Last day, inclusive.", show_default=False)]
BasisOpt = Annotated[str, typer.Option("--basis", help="booked (order date), shipped (shipment date) or "
                                                       "collected (payment date).")]
ChannelOpt = Annotated[list[str] | None, typer.Option("--channel", help="Only these channels (repeat or "
                                                                        "comma-separate).", show_default=False)]
CategoryOpt = Annotated[list[str] | None, typer.Option("--category", help="Only these product categories.",
                                                       show_default=False)]
RegionOpt = Annotated[list[str] | None, typer.Option("--region", help="Only customers in these regions.",
                                                     show_default=False)]
SalespersonOpt = Annotated[list[str] | None, typer.Option("--salesperson", help="Only these salespeople.",
                                                          show_default=False)]
CustomerOpt = Annotated[list[str] | None, typer.Option("--customer", help="Only these customers (id or e-mail).",
                                                       show_default=False)]
CurrencyOpt = Annotated[str | None, typer.Option("--currency", help="Orders in this currency (default: the "
                                                                    "currency setting).", show_default=False)]
TotalsOpt = Annotated[bool, typer.Option("--totals", help="Write the totals row in csv/tsv/json/jsonl/markdown "
                                                          "too (a terminal table always shows it).")]
ChartOpt = Annotated[bool, typer.Option("--chart", help="Draw a bar chart or sparkline of the main measure "
                                                        "under the table (terminal only).")]
LimitOpt = Annotated[int | None, typer.Option("--limit", "-n", help="Show the first N rows; the rest are summed "
                                                                    "in one '(other)' row.", show_default=False)]
SortOpt = Annotated[str | None, typer.Option("--sort", help="Sort by a column: revenue, -orders, +name ...",
                                             show_default=False)]
AsOfOpt = Annotated[str | None, typer.Option("--as-of", help="The day to measure from (default: today).",
                                             show_default=False)]


@contextmanager
def _db() -> Iterator[Any]:
    """The database, read-only, tuned for one report, every statement of
    which reads one snapshot (a write that commits meanwhile is not half seen)."""
    from salescrm.reports.common import snapshot, tune

    with open_db(write=False) as conn, snapshot(tune(conn)):
        yield conn


def _filters(conn, *, channel=None, category=None, region=None, salesperson=None, customer=None,
             currency=None):
    from salescrm.reports import common

    return common.resolve_filters(conn, channel=channel, category=category, region=region,
                                  salesperson=salesperson, customer=customer, currency=currency)


def _as_of(value: str | None):
    from datetime import date

    from salescrm import validate

    return validate.parse_date(value, field="--as-of") if value else date.today()


def show(report: Any, fmt, *, totals: bool = False, chart: bool = False) -> None:
    """Render a ``reports.common.Report``: the table (summary statistics under
    it on a terminal), then the chart, then the notes on stderr."""
    from salescrm.output import render, resolve_format

    opts = out(fmt, totals=totals)
    resolved = resolve_format(opts.fmt)
    summary = summary_lines(report) if resolved == "table" else None
    cols = report.cols
    if resolved == "table":
        # a terminal is narrow: the period's first and last day and the currency
        # (named in the title) are for machines
        cols = [c for c in cols if not (c.key in ("start", "end", "currency") or c.key.endswith(("_start", "_end"))
                                        or c.key in report.hide)]
    render(report.rows, cols, opts, title=report.title, totals=report.totals, summary=summary)
    if chart:
        if resolved == "table":
            for line in chart_lines(report):
                print(line)
        else:
            say("--chart is drawn under terminal tables only")
    for note in report.notes:
        say(note)


def _kind(report: Any, key: str) -> str:
    for c in report.cols:
        if c.key == key:
            return c.kind
    return "text"


def _fmt(value: Any, kind: str) -> str:
    from decimal import ROUND_HALF_UP, Decimal

    from salescrm.output import human

    if kind == "money" and isinstance(value, Decimal):
        value = int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    elif kind == "int" and isinstance(value, Decimal) and value != value.to_integral_value():
        return f"{value:,.2f}"
    return human(value, kind)


def summary_lines(report: Any) -> list[str]:
    """count, sum, mean, median, min and max of the main measure, naming the
    rows that hold the extremes."""
    from salescrm.reports.common import summary_stats

    key = report.measure
    if not key or not report.rows:
        return []
    rows = [r for r in report.rows if not str(r.get(report.label or "", "")).startswith("(other")]
    stats = summary_stats([r.get(key) for r in rows])
    if not stats:
        return []
    kind = _kind(report, key)
    label = report.label

    def who(value) -> str:
        if not label:
            return ""
        for r in rows:
            if r.get(key) is not None and r.get(key) == value:
                return f" ({r.get(label)})"
        return ""

    parts = [f"count {stats['count']:,}"]
    if kind != "percent":
        parts.append(f"sum {_fmt(stats['sum'], kind)}")
    parts += [f"mean {_fmt(stats['mean'], kind)}", f"median {_fmt(stats['median'], kind)}",
              f"min {_fmt(stats['min'], kind)}{who(stats['min'])}",
              f"max {_fmt(stats['max'], kind)}{who(stats['max'])}"]
    header = next((c.header for c in report.cols if c.key == key), key)
    return [f"{header}: " + " · ".join(parts)]


def chart_lines(report: Any) -> list[str]:
    from salescrm.reports import chart

    key = report.measure
    rows = [r for r in report.rows if r.get(key) is not None]
    if not key or not rows:
        return []
    kind = _kind(report, key)
    if report.chart == "sparkline":
        values = [r.get(key) for r in report.rows]
        first, last = report.rows[0].get(report.label), report.rows[-1].get(report.label)
        return ["", f"{first} {chart.sparkline(values)} {last}"]
    import shutil

    width = max(10, min(60, shutil.get_terminal_size((100, 20)).columns - 50))
    return [""] + chart.bars([str(r.get(report.label)) for r in rows], [r.get(key) for r in rows],
                             [_fmt(r.get(key), kind) for r in rows], width=width)


def _choice(value: str, allowed, what: str) -> str:
    from salescrm.reports.common import choice

    return choice(value, allowed, what)


# --------------------------------------------------------------------------- report sales


@app.command("sales")
def sales_cmd(
    *,
    by: Annotated[list[str] | None, typer.Option(
        "--by", help="day, week, month, quarter, year, customer, product, category, channel, region or "
                     "salesperson; give two for a pivot.", show_default=False)] = None,
    start: FromOpt = None,
    end: ToOpt = None,
    basis: BasisOpt = "booked",
    compare: Annotated[str | None, typer.Option("--compare", help="previous or last-year: add the period "
                                                                  "before (or a year before) and the change.",
                                                show_default=False)] = None,
    measure: Annotated[str, typer.Option("--measure", help="The main measure: pivot cells, chart, compare "
                                                           "and summary.")] = "revenue",
    long: Annotated[bool, typer.Option("--long", help="With two --by: one row per pair with every measure "
                                                      "instead of a pivot.")] = False,
    channel: ChannelOpt = None,
    category: CategoryOpt = None,
    region: RegionOpt = None,
    salesperson: SalespersonOpt = None,
    customer: CustomerOpt = None,
    currency: CurrencyOpt = None,
    sort: SortOpt = None,
    limit: LimitOpt = None,
    totals: TotalsOpt = False,
    chart: ChartOpt = False,
    fmt: FormatOpt = None,
) -> None:
    """Orders, units, revenue, discounts, cost, margin and average order value.

    Revenue is net of tax, discounts and returns; cancelled and draft orders
    never count (see 'salescrm report --help' for the exact definition).
    """
    from salescrm.reports import common, sales

    dims = [_choice(b, common.DIMENSIONS, "--by") for b in common.split_values(by)] or ["month"]
    basis = _choice(basis, common.BASES, "--basis")
    measure = _choice(measure, common.MEASURES, "--measure")
    cmp = _choice(compare, sales.COMPARES, "--compare") if compare else None
    rng = common.parse_range(start, end)
    with _db() as conn:
        f = _filters(conn, channel=channel, category=category, region=region, salesperson=salesperson,
                     customer=customer, currency=currency)
        report = sales.sales(conn, common.Spec(basis, rng, f), dims, compare=cmp, sort=sort, limit=limit,
                             measure=measure, long=long)
    show(report, fmt, totals=totals, chart=chart)


REPORT_HELP = """Reports: sales, customers, orders, inventory, plans, stats, forecast, reorder, next-customers.

Revenue, the one definition: booked (the default) counts orders that are
neither draft nor cancelled, by order date: each line's net (ex tax, after
discounts) less what returns credited, plus its share of order-level
discounts and surcharges.  shipped counts the same revenue by shipment date;
collected counts payments less refunds by payment date (tax and shipping
included).  Cancelled and returned sales never count.  Units are kept
units; cost is kept units x the unit cost recorded on the line.

On a terminal: tables with totals and summary statistics.  Piped, or with
--format csv|tsv|json|jsonl|markdown: plain numbers, ISO dates, a currency
column, the same columns every time; the totals row only with --totals.
"""


# --------------------------------------------------------------------------- report customers


def _spec(conn, start, end, *, basis="booked", channel=None, category=None, region=None, salesperson=None,
          customer=None, currency=None):
    from salescrm.reports import common

    f = _filters(conn, channel=channel, category=category, region=region, salesperson=salesperson,
                 customer=customer, currency=currency)
    return common.Spec(basis, common.parse_range(start, end), f)


@customers_app.callback(invoke_without_command=True)
def customers_default(
    ctx: typer.Context,
    *,
    limit: LimitOpt = 20,
    start: FromOpt = None,
    end: ToOpt = None,
    totals: TotalsOpt = False,
    chart: ChartOpt = False,
    fmt: FormatOpt = None,
) -> None:
    """Customers: top, new vs returning, inactive, RFM scores and segments, ABC classes.
    With no subcommand: the top customers (the options here are for that)."""
    if ctx.invoked_subcommand is None:
        customers_top(limit=limit, start=start, end=end, totals=totals, chart=chart, fmt=fmt)


@customers_app.command("top")
def customers_top(
    *,
    limit: LimitOpt = 20,
    start: FromOpt = None,
    end: ToOpt = None,
    sort: SortOpt = None,
    channel: ChannelOpt = None,
    category: CategoryOpt = None,
    region: RegionOpt = None,
    salesperson: SalespersonOpt = None,
    currency: CurrencyOpt = None,
    totals: TotalsOpt = False,
    chart: ChartOpt = False,
    fmt: FormatOpt = None,
) -> None:
    """The top customers by revenue, with their share and running share."""
    from salescrm.reports import common, customers

    common.parse_range(start, end)
    with _db() as conn:
        spec = _spec(conn, start, end, channel=channel, category=category, region=region,
                     salesperson=salesperson, currency=currency)
        report = customers.top(conn, spec, limit=limit, sort=sort)
    show(report, fmt, totals=totals, chart=chart)


@customers_app.command("new")
def customers_new(
    *,
    by: Annotated[str, typer.Option("--by", help="day, week, month, quarter or year.")] = "month",
    start: FromOpt = None,
    end: ToOpt = None,
    channel: ChannelOpt = None,
    region: RegionOpt = None,
    salesperson: SalespersonOpt = None,
    currency: CurrencyOpt = None,
    totals: TotalsOpt = False,
    chart: ChartOpt = False,
    fmt: FormatOpt = None,
) -> None:
    """New customers (first order ever in the period) and returning ones, with their revenue."""
    from salescrm.reports import common, customers

    unit = _choice(by, common.PERIODS, "--by")
    common.parse_range(start, end)
    with _db() as conn:
        spec = _spec(conn, start, end, channel=channel, region=region, salesperson=salesperson, currency=currency)
        report = customers.new_vs_returning(conn, spec, unit)
    show(report, fmt, totals=totals, chart=chart)


@customers_app.command("inactive")
def customers_inactive(
    *,
    days: Annotated[int, typer.Option("--days", help="No order in this many days.")] = 90,
    as_of: AsOfOpt = None,
    limit: LimitOpt = None,
    sort: SortOpt = None,
    channel: ChannelOpt = None,
    region: RegionOpt = None,
    salesperson: SalespersonOpt = None,
    currency: CurrencyOpt = None,
    totals: TotalsOpt = False,
    chart: ChartOpt = False,
    fmt: FormatOpt = None,
) -> None:
    """Customers with no order in N days: last order date and lifetime value."""
    from salescrm.reports import customers

    day = _as_of(as_of)
    with _db() as conn:
        spec = _spec(conn, None, None, channel=channel, region=region, salesperson=salesperson, currency=currency)
        report = customers.inactive(conn, spec, days=days, as_of=day, limit=limit, sort=sort)
    show(report, fmt, totals=totals, chart=chart)


@customers_app.command("rfm")
def customers_rfm(
    *,
    segment: Annotated[list[str] | None, typer.Option("--segment", help="Only these segments (champions, loyal, "
                                                       "at-risk, ...).", show_default=False)] = None,
    as_of: AsOfOpt = None,
    start: FromOpt = None,
    limit: LimitOpt = None,
    sort: SortOpt = None,
    channel: ChannelOpt = None,
    region: RegionOpt = None,
    salesperson: SalespersonOpt = None,
    currency: CurrencyOpt = None,
    totals: TotalsOpt = False,
    fmt: FormatOpt = None,
) -> None:
    """Recency, frequency and monetary scores (1-5, quintiles by rank) and the named segment of every customer."""
    from salescrm.reports import common, customers

    day = _as_of(as_of)
    with _db() as conn:
        spec = _spec(conn, start, None, channel=channel, region=region, salesperson=salesperson, currency=currency)
        report = customers.rfm(conn, spec, as_of=day, segment_filter=common.split_values(segment), limit=limit,
                               sort=sort)
    show(report, fmt, totals=totals)


@customers_app.command("segments")
def customers_segments(
    *,
    as_of: AsOfOpt = None,
    start: FromOpt = None,
    channel: ChannelOpt = None,
    region: RegionOpt = None,
    salesperson: SalespersonOpt = None,
    currency: CurrencyOpt = None,
    totals: TotalsOpt = False,
    chart: ChartOpt = False,
    fmt: FormatOpt = None,
) -> None:
    """Customers, orders and revenue in each RFM segment."""
    from salescrm.reports import customers

    day = _as_of(as_of)
    with _db() as conn:
        spec = _spec(conn, start, None, channel=channel, region=region, salesperson=salesperson, currency=currency)
        report = customers.segments(conn, spec, as_of=day)
    show(report, fmt, totals=totals, chart=chart)


@customers_app.command("abc")
def customers_abc(
    *,
    a: Annotated[str, typer.Option("--a", help="Class A: the customers making the first A% of revenue.")] = "80",
    b: Annotated[str, typer.Option("--b", help="Class B: up to B% of revenue; C the rest.")] = "95",
    summary: Annotated[bool, typer.Option("--summary", help="One row per class instead of per customer.")] = False,
    start: FromOpt = None,
    end: ToOpt = None,
    limit: LimitOpt = None,
    channel: ChannelOpt = None,
    region: RegionOpt = None,
    salesperson: SalespersonOpt = None,
    currency: CurrencyOpt = None,
    totals: TotalsOpt = False,
    chart: ChartOpt = False,
    fmt: FormatOpt = None,
) -> None:
    """ABC (Pareto) classes of customers by revenue."""
    from salescrm import money
    from salescrm.reports import customers

    pa, pb = money.parse_percent(a, field="--a"), money.parse_percent(b, field="--b")
    with _db() as conn:
        spec = _spec(conn, start, end, channel=channel, region=region, salesperson=salesperson, currency=currency)
        report = customers.abc(conn, spec, a=pa, b=pb, limit=limit, summary=summary)
    show(report, fmt, totals=totals, chart=chart)


# --------------------------------------------------------------------------- report orders


@orders_app.callback(invoke_without_command=True)
def orders_default(
    ctx: typer.Context,
    *,
    start: FromOpt = None,
    end: ToOpt = None,
    totals: TotalsOpt = False,
    chart: ChartOpt = False,
    fmt: FormatOpt = None,
) -> None:
    """Orders: status funnel, open orders, cycle times, receivables ageing.
    With no subcommand: the funnel (the options here are for that)."""
    if ctx.invoked_subcommand is None:
        orders_funnel(start=start, end=end, totals=totals, chart=chart, fmt=fmt)


@orders_app.command("funnel")
def orders_funnel(
    *,
    start: FromOpt = None,
    end: ToOpt = None,
    channel: ChannelOpt = None,
    category: CategoryOpt = None,
    region: RegionOpt = None,
    salesperson: SalespersonOpt = None,
    customer: CustomerOpt = None,
    currency: CurrencyOpt = None,
    totals: TotalsOpt = False,
    chart: ChartOpt = False,
    fmt: FormatOpt = None,
) -> None:
    """Orders per status with their value, and how many reached each stage."""
    from salescrm.reports import common, orders

    common.parse_range(start, end)
    with _db() as conn:
        spec = _spec(conn, start, end, channel=channel, category=category, region=region, salesperson=salesperson,
                     customer=customer, currency=currency)
        report = orders.funnel(conn, spec)
    show(report, fmt, totals=totals, chart=chart)


@orders_app.command("open")
def orders_open(
    *,
    as_of: AsOfOpt = None,
    start: FromOpt = None,
    end: ToOpt = None,
    limit: LimitOpt = None,
    sort: SortOpt = None,
    channel: ChannelOpt = None,
    region: RegionOpt = None,
    salesperson: SalespersonOpt = None,
    customer: CustomerOpt = None,
    currency: CurrencyOpt = None,
    totals: TotalsOpt = False,
    fmt: FormatOpt = None,
) -> None:
    """Orders not yet closed: confirmed, shipped in part or whole, delivered but unpaid; oldest first."""
    from salescrm.reports import common, orders

    common.parse_range(start, end)
    day = _as_of(as_of)
    with _db() as conn:
        spec = _spec(conn, start, end, channel=channel, region=region, salesperson=salesperson, customer=customer,
                     currency=currency)
        report = orders.open_orders(conn, spec, as_of=day, limit=limit, sort=sort)
    show(report, fmt, totals=totals)


@orders_app.command("cycle")
def orders_cycle(
    *,
    by: Annotated[str, typer.Option("--by", help="day, week, month, quarter, year, or all.")] = "month",
    start: FromOpt = None,
    end: ToOpt = None,
    channel: ChannelOpt = None,
    region: RegionOpt = None,
    salesperson: SalespersonOpt = None,
    currency: CurrencyOpt = None,
    totals: TotalsOpt = False,
    chart: ChartOpt = False,
    fmt: FormatOpt = None,
) -> None:
    """Average days from confirmation to shipment and to delivery."""
    from salescrm.reports import common, orders

    unit = _choice(by, (*common.PERIODS, "all"), "--by")
    common.parse_range(start, end)
    with _db() as conn:
        spec = _spec(conn, start, end, channel=channel, region=region, salesperson=salesperson, currency=currency)
        report = orders.cycle(conn, spec, None if unit == "all" else unit)
    show(report, fmt, totals=totals, chart=chart)


@orders_app.command("ageing")
def orders_ageing(
    *,
    as_of: AsOfOpt = None,
    by_customer: Annotated[bool, typer.Option("--by-customer", help="One row per customer, a column per "
                                                                   "bucket.")] = False,
    limit: LimitOpt = None,
    channel: ChannelOpt = None,
    region: RegionOpt = None,
    salesperson: SalespersonOpt = None,
    customer: CustomerOpt = None,
    currency: CurrencyOpt = None,
    totals: TotalsOpt = False,
    chart: ChartOpt = False,
    fmt: FormatOpt = None,
) -> None:
    """Receivables by days overdue: current, 1-30, 31-60, 61-90, over 90."""
    from salescrm.reports import orders

    day = _as_of(as_of)
    with _db() as conn:
        spec = _spec(conn, None, None, channel=channel, region=region, salesperson=salesperson, customer=customer,
                     currency=currency)
        report = orders.ageing(conn, spec, as_of=day, by_customer=by_customer, limit=limit)
    show(report, fmt, totals=totals, chart=chart)


# --------------------------------------------------------------------------- the other reports


@app.command("inventory")
def inventory_cmd(
    *,
    category: CategoryOpt = None,
    low: Annotated[bool, typer.Option("--low", help="Only items at or below their reorder level.")] = False,
    services: Annotated[bool, typer.Option("--services", help="Include services (no stock).")] = False,
    window: Annotated[int, typer.Option("--window", help="Days of sales behind days of cover.")] = 90,
    as_of: AsOfOpt = None,
    sort: SortOpt = None,
    limit: LimitOpt = None,
    totals: TotalsOpt = False,
    chart: ChartOpt = False,
    fmt: FormatOpt = None,
) -> None:
    """On hand, reserved, available, stock value at cost, low stock and days of cover."""
    from salescrm import settings
    from salescrm.reports import inventory

    day = _as_of(as_of)
    with _db() as conn:
        cats = _filters(conn, category=category).category
        report = inventory.inventory(conn, as_of=day, window=window, category=cats, low_only=low,
                                     include_services=services, sort=sort, limit=limit,
                                     currency=settings.get(conn, "currency"))
    show(report, fmt, totals=totals, chart=chart)


@app.command("plans")
def plans_cmd(
    *,
    current: Annotated[bool, typer.Option("--current", help="Only plans running today.")] = False,
    as_of: AsOfOpt = None,
    totals: TotalsOpt = False,
    chart: ChartOpt = False,
    fmt: FormatOpt = None,
) -> None:
    """Every plan's attainment: target, achieved, variance, attainment, elapsed, projection."""
    from salescrm.reports import plans_report

    day = _as_of(as_of)
    with _db() as conn:
        report = plans_report.plans(conn, today=day, current_only=current)
    show(report, fmt, totals=totals, chart=chart)


@app.command("stats")
def stats_cmd(
    *,
    field: Annotated[str, typer.Option("--field", help="order_value, line_value, quantity or margin.")] = "order_value",
    by: Annotated[str | None, typer.Option("--by", help="Per period, customer, channel, region, salesperson, "
                                                        "category or product.", show_default=False)] = None,
    start: FromOpt = None,
    end: ToOpt = None,
    channel: ChannelOpt = None,
    category: CategoryOpt = None,
    region: RegionOpt = None,
    salesperson: SalespersonOpt = None,
    customer: CustomerOpt = None,
    currency: CurrencyOpt = None,
    sort: Annotated[str | None, typer.Option("--sort", help="Sort the groups by a figure: -median, count, +p90, "
                                                            "group ...", show_default=False)] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", help="Show the first N groups (after --sort); a "
                                                                   "note says how many more there are.",
                                              show_default=False)] = None,
    chart: ChartOpt = False,
    fmt: FormatOpt = None,
) -> None:
    """Count, sum, mean, median, p25, p75, p90, min and max (with their order and customer), standard deviation."""
    from salescrm.reports import common, stats

    fld = _choice(field, stats.FIELDS, "--field")
    grp = _choice(by, stats.GROUPS, "--by") if by else None
    common.parse_range(start, end)
    with _db() as conn:
        spec = _spec(conn, start, end, channel=channel, category=category, region=region, salesperson=salesperson,
                     customer=customer, currency=currency)
        report = stats.stats(conn, spec, fld, grp, sort=sort, limit=limit)
    show(report, fmt, chart=chart)


@app.command("forecast")
def forecast_cmd(
    *,
    by: Annotated[str, typer.Option("--by", help="month or week.")] = "month",
    periods: Annotated[int, typer.Option("--periods", help="How many periods to forecast (the current one "
                                                           "first).")] = 6,
    basis: BasisOpt = "booked",
    start: Annotated[str | None, typer.Option("--from", help="Use history from this day on.",
                                              show_default=False)] = None,
    as_of: AsOfOpt = None,
    channel: ChannelOpt = None,
    category: CategoryOpt = None,
    region: RegionOpt = None,
    salesperson: SalespersonOpt = None,
    currency: CurrencyOpt = None,
    chart: ChartOpt = False,
    fmt: FormatOpt = None,
) -> None:
    """Revenue forecast: seasonal naive, Holt-Winters or linear trend, chosen by a backtest (MAPE), with an 80%
    interval."""
    from salescrm.reports import common, forecast

    unit = _choice(by, tuple(forecast.UNITS), "--by")
    bas = _choice(basis, common.BASES, "--basis")
    day = _as_of(as_of)
    with _db() as conn:
        spec = _spec(conn, start, None, basis=bas, channel=channel, category=category, region=region,
                     salesperson=salesperson, currency=currency)
        report = forecast.forecast(conn, spec, unit=unit, periods=periods, as_of=day)
    show(report, fmt, chart=chart)


@app.command("reorder")
def reorder_cmd(
    *,
    lead_time: Annotated[int, typer.Option("--lead-time", help="Supplier lead time in days.")] = 14,
    service: Annotated[str, typer.Option("--service", help="Cycle service level: the chance, in percent, of not "
                                                           "running out before a delivery arrives.")] = "95",
    cover: Annotated[int, typer.Option("--cover", help="Order enough for this many days of demand beyond the "
                                                       "reorder point.")] = 30,
    window: Annotated[int, typer.Option("--window", help="Days of sales to measure demand on.")] = 90,
    all_items: Annotated[bool, typer.Option("--all", help="Every stocked product, not only those to reorder.")] = False,
    category: CategoryOpt = None,
    as_of: AsOfOpt = None,
    limit: LimitOpt = None,
    totals: TotalsOpt = False,
    chart: ChartOpt = False,
    fmt: FormatOpt = None,
) -> None:
    """Reorder point and quantity per product from its demand rate and variability, a lead time and a service
    level."""
    from salescrm import money
    from salescrm.reports import advice

    level = money.parse_percent(service, field="--service")
    day = _as_of(as_of)
    with _db() as conn:
        cats = _filters(conn, category=category).category
        report = advice.reorder(conn, as_of=day, lead_time=lead_time, service=level, window=window, cover=cover,
                                category=cats, all_items=all_items, limit=limit)
    show(report, fmt, totals=totals, chart=chart)


@app.command("next-customers")
def next_customers_cmd(
    *,
    as_of: AsOfOpt = None,
    limit: LimitOpt = 20,
    channel: ChannelOpt = None,
    region: RegionOpt = None,
    salesperson: SalespersonOpt = None,
    currency: CurrencyOpt = None,
    totals: TotalsOpt = False,
    chart: ChartOpt = False,
    fmt: FormatOpt = None,
) -> None:
    """Customers past their usual reorder interval or slipping in RFM, ranked by expected value, with their last
    order and open follow-ups."""
    from salescrm.reports import advice

    day = _as_of(as_of)
    with _db() as conn:
        spec = _spec(conn, None, None, channel=channel, region=region, salesperson=salesperson, currency=currency)
        report = advice.next_customers(conn, spec, as_of=day, limit=limit)
    show(report, fmt, totals=totals, chart=chart)


app.add_typer(customers_app, name="customers", help="Customers: top, new vs returning, inactive, RFM, segments, ABC.")
app.add_typer(orders_app, name="orders", help="Orders: funnel, open orders, cycle times, receivables ageing.")


# --------------------------------------------------------------------------- dashboard


def dashboard(*, as_of: AsOfOpt = None, fmt: FormatOpt = None) -> None:
    """Today on one screen: revenue this month (vs plan), open orders, overdue
    receivables, low stock, top customers and a sparkline of 12 months."""
    from salescrm import settings
    from salescrm.output import Col, plain, render, resolve_format
    from salescrm.reports import dashboard as dash

    day = _as_of(as_of)
    with _db() as conn:
        data = dash.dashboard(conn, today=day, currency=settings.get(conn, "currency"))
    opts = out(fmt)
    if resolve_format(opts.fmt) != "table":
        rows = [{**r, "value": plain(r["value"], r["kind"])} for r in dash.rows(data)]
        cols = [Col("section"), Col("metric"), Col("value"), Col("kind"), Col("currency"), Col("detail")]
        render(rows, cols, opts)
        return
    _draw_dashboard(data)


def _draw_dashboard(d: dict) -> None:
    import os
    import sys

    from rich.console import Console
    from rich.table import Table

    from salescrm.output import human
    from salescrm.reports import chart

    console = Console(file=sys.stdout, highlight=False, no_color=bool(os.environ.get("NO_COLOR")) or None)
    cur = d["currency"]
    m = lambda v: human(v, "money")  # noqa: E731
    console.print(f"[bold]salescrm[/bold] · {d['today']} · {cur}")
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(justify="right")
    grid.add_column()
    chg = d["revenue_change_pct"]
    grid.add_row("Revenue this month", m(d["revenue_month"]),
                 f"{d['orders_month']:,} orders; same days last month {m(d['revenue_prev_month_same_days'])}"
                 + (f" ({'+' if chg > 0 else ''}{chg}%)" if chg is not None else ""))
    for p in d["plans"] or []:
        grid.add_row(f"  plan {p['name']}", m(p["achieved"]),
                     f"of {m(p['target'])} ({p['attainment_pct']}%), {p['state']}, ends {p['period_end']}")
    grid.add_row("Open orders", f"{d['open_orders']:,}", f"worth {m(d['open_value'])}; {d['orders_to_ship']:,} to ship")
    grid.add_row("Overdue receivables", m(d["overdue_amount"]),
                 f"{d['overdue_orders']:,} orders" + (f", oldest due {d['oldest_due']}" if d["oldest_due"] else "")
                 + f"; all receivables {m(d['receivables'])}")
    low = d["low_stock"]
    grid.add_row("Low stock", f"{len(low):,}",
                 ", ".join(f"{s['sku']} ({s['available']:,})" for s in low[:5]) + (" ..." if len(low) > 5 else ""))
    console.print(grid)
    if d["top_customers"]:
        t = Table(title="Top customers, last 90 days", title_justify="left", box=None, header_style="bold",
                  pad_edge=False)
        t.add_column("customer")
        t.add_column("orders", justify="right")
        t.add_column("revenue", justify="right")
        for c in d["top_customers"]:
            t.add_row(c["customer"], f"{c['orders']:,}", m(c["revenue"]))
        console.print()
        console.print(t)
    months = d["months"]
    if months:
        console.print()
        console.print(f"[bold]Revenue, 12 months[/bold]  {months[0]['month']} {chart.sparkline([x['revenue'] for x in months])}"
                      f" {months[-1]['month']}  (this month so far {m(months[-1]['revenue'])})")
    if not d["revenue_month"] and not d["open_orders"] and not d["top_customers"]:
        console.print("[dim]No sales yet. Try 'salescrm demo' for a tour, or 'salescrm report --help'.[/dim]")
