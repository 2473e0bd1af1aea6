"""``report forecast``: revenue for the next periods from the history,
with the method chosen by a backtest.  No Typer, no Rich.

Methods
-------
seasonal naive
    Each period repeats the same period one season earlier (12 months, 52
    weeks).  Needs a full season of history.
Holt-Winters
    Additive exponential smoothing of level, trend and season; the three
    smoothing constants are chosen from a small grid by the smallest
    in-sample one-step squared error.  Needs two full seasons.
linear trend
    An ordinary least-squares line through the history.

The choice: the last ``H`` complete periods (``H`` = the periods asked for,
at most a third of the history) are held out; every method that has enough
history is fitted on the rest and forecasts them; the method with the
smallest mean absolute percentage error (MAPE, over the held-out periods
whose actual is not zero) wins, ties going to the simpler method.  It is
then refitted on the whole history.  With too little history for any of
them (fewer than four periods) the forecast is naive: the last period
repeated, and said so.

The 80% interval is the forecast plus or minus 1.2816 standard deviations,
the standard deviation being the root mean square of the chosen method's
backtest errors (out-of-sample errors at horizons 1..H); the lower bound
is not allowed below zero.

History is complete periods only: the current period is forecast too, and
its revenue so far is shown beside it; a first period the data starts
part-way through is left out.  Revenue is booked revenue unless
another basis is asked for (see ``reports.common``).

Why pure Python
---------------
The series is a few dozen months or a few hundred weeks, so the
arithmetic takes milliseconds.  numpy/statsmodels would add tens of
megabytes of dependencies and most of a second of import time to a
command-line tool whose start-up is a feature, and their results would
move with library versions.  Three transparent methods in a page of code,
tested against hand-computed series, are easier to trust and to explain.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from statistics import NormalDist
from typing import Any

from salescrm.errors import UsageError
from salescrm.output import Col
from salescrm.reports.common import (
    Report,
    Spec,
    Range,
    bucket_label,
    bucket_start,
    buckets,
    next_bucket,
    revenue_series,
)

UNITS = {"month": 12, "week": 52}
Z80 = NormalDist().inv_cdf(0.9)  # two-sided 80%: 1.2816
_ALPHAS = (0.1, 0.3, 0.5, 0.7, 0.9)
_BETAS = (0.01, 0.05, 0.1, 0.2, 0.4)
_GAMMAS = (0.05, 0.1, 0.3, 0.5, 0.7)


# --------------------------------------------------------------------------- methods


def seasonal_naive(y: Sequence[float], h: int, m: int) -> list[float]:
    if len(y) < m:
        raise ValueError("seasonal naive needs a full season")
    return [y[len(y) - m + (i % m)] for i in range(h)]


def linear_trend(y: Sequence[float], h: int) -> list[float]:
    n = len(y)
    if n < 2:
        raise ValueError("a trend needs two points")
    tbar = (n - 1) / 2
    ybar = sum(y) / n
    sxx = sum((t - tbar) ** 2 for t in range(n))
    slope = sum((t - tbar) * (v - ybar) for t, v in enumerate(y)) / sxx
    icpt = ybar - slope * tbar
    return [icpt + slope * (n + i) for i in range(h)]


def holt_winters_fit(y: Sequence[float], m: int, alpha: float, beta: float,
                     gamma: float) -> tuple[float, float, list[float], float]:
    """Additive Holt-Winters: the final level, trend, seasonal terms and
    the in-sample sum of squared one-step errors."""
    if len(y) < 2 * m:
        raise ValueError("Holt-Winters needs two full seasons")
    level = sum(y[:m]) / m
    trend = (sum(y[m:2 * m]) - sum(y[:m])) / (m * m)
    season = [y[i] - level for i in range(m)]
    sse = 0.0
    for t in range(m, len(y)):
        s = season[t % m]
        err = y[t] - (level + trend + s)
        sse += err * err
        new_level = alpha * (y[t] - s) + (1 - alpha) * (level + trend)
        trend = beta * (new_level - level) + (1 - beta) * trend
        season[t % m] = gamma * (y[t] - new_level) + (1 - gamma) * s
        level = new_level
    return level, trend, season, sse


def holt_winters(y: Sequence[float], h: int, m: int) -> list[float]:
    best = None
    for a in _ALPHAS:
        for b in _BETAS:
            for g in _GAMMAS:
                fit = holt_winters_fit(y, m, a, b, g)
                if best is None or fit[3] < best[3]:
                    best = fit
    assert best is not None
    level, trend, season, _ = best
    n = len(y)
    return [level + (i + 1) * trend + season[(n + i) % m] for i in range(h)]


def naive(y: Sequence[float], h: int) -> list[float]:
    return [y[-1] if y else 0.0] * h


METHODS: list[tuple[str, Callable[[Sequence[float], int, int], list[float]], Callable[[int, int], int]]] = [
    # name, forecaster, minimum history for a season m
    ("seasonal naive", lambda y, h, m: seasonal_naive(y, h, m), lambda m, h: m),
    ("linear trend", lambda y, h, m: linear_trend(y, h), lambda m, h: 3),
    ("Holt-Winters", lambda y, h, m: holt_winters(y, h, m), lambda m, h: 2 * m),
]


def mape(actual: Sequence[float], predicted: Sequence[float]) -> float | None:
    errs = [abs(a - p) / abs(a) for a, p in zip(actual, predicted) if a != 0]
    return sum(errs) / len(errs) * 100 if errs else None


def choose(y: Sequence[float], periods: int, m: int) -> dict[str, Any]:
    """Backtest every method with enough history; the winner's name, its
    MAPE and error spread, every candidate's MAPE and the forecast."""
    n = len(y)
    hold = max(1, min(periods, n // 3))
    train, test = list(y[:n - hold]), list(y[n - hold:])
    scores: list[tuple[str, float | None, float]] = []
    for name, fn, need in METHODS:
        if len(train) < max(need(m, hold), 1):
            continue
        pred = fn(train, hold, m)
        rmse = math.sqrt(sum((a - p) ** 2 for a, p in zip(test, pred)) / hold)
        scores.append((name, mape(test, pred), rmse))
    if n >= 4 and scores:
        ranked = sorted(enumerate(scores), key=lambda x: (x[1][1] is None, x[1][1] if x[1][1] is not None else 0,
                                                          x[0]))
        name, err, rmse = ranked[0][1]
        fn = next(f for nm, f, _ in METHODS if nm == name)
        return {"method": name, "mape": err, "sigma": rmse, "holdout": hold,
                "candidates": [(s[0], s[1]) for s in scores], "forecast": fn(list(y), periods, m)}
    sigma = math.sqrt(sum((y[i] - y[i - 1]) ** 2 for i in range(1, n)) / (n - 1)) if n > 1 else 0.0
    return {"method": "naive (too little history)", "mape": None, "sigma": sigma, "holdout": 0,
            "candidates": [], "forecast": naive(y, periods)}


# --------------------------------------------------------------------------- the report


def _cents(v: float) -> int:
    return int(Decimal(repr(v)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def forecast(conn: sqlite3.Connection, spec: Spec, *, unit: str = "month", periods: int = 6,
             as_of: date) -> Report:
    if unit not in UNITS:
        raise UsageError(f"cannot forecast by {unit!r}", "choose month or week")
    if not 1 <= periods <= 60:
        raise UsageError("--periods must be between 1 and 60")
    m = UNITS[unit]
    current = bucket_start(as_of, unit)
    end = current - timedelta(days=1)
    hist_spec = Spec(spec.basis, Range(spec.range.start, min(end, spec.range.end or end)), spec.filters)
    by_day = revenue_series(conn, hist_spec)
    per: dict[date, int] = {}
    for d, v in by_day.items():
        b = bucket_start(d, unit)
        per[b] = per.get(b, 0) + v
    keys = buckets(min(per), bucket_start(hist_spec.range.end, unit), unit) if per else []  # type: ignore[arg-type]
    if keys and min(by_day) > keys[0] and not spec.range.start:
        keys = keys[1:]  # the data starts part-way through its first period: leave that one out
    y = [float(per.get(k, 0)) for k in keys]
    so_far_spec = Spec(spec.basis, Range(current, as_of), spec.filters)
    so_far = sum(revenue_series(conn, so_far_spec).values())
    result = choose(y, periods, m)
    cur = spec.filters.currency
    rows = []
    b = current
    for i, f in enumerate(result["forecast"]):
        pt = max(f, 0.0)
        half = Z80 * result["sigma"]
        rows.append({"period": bucket_label(b, unit), "start": b.isoformat(),
                     "end": (next_bucket(b, unit) - timedelta(days=1)).isoformat(),
                     "forecast": _cents(pt), "low": _cents(max(f - half, 0.0)), "high": _cents(max(f + half, 0.0)),
                     "actual_to_date": so_far if i == 0 else None, "method": result["method"],
                     "backtest_mape_pct": (Decimal(repr(result["mape"])).quantize(Decimal("0.1"), ROUND_HALF_UP)
                                           if result["mape"] is not None else None),
                     "currency": cur})
        b = next_bucket(b, unit)
    cols = [Col("period"), Col("start", "date", "from"), Col("end", "date", "to"), Col("forecast", "money"),
            Col("low", "money", "low (80%)"), Col("high", "money", "high (80%)"),
            Col("actual_to_date", "money", "so far"), Col("method"), Col("backtest_mape_pct", "percent", "MAPE"),
            Col("currency")]
    notes = [f"history: {len(y)} complete {unit}s"
             + (f" from {keys[0].isoformat()}" if keys else "")
             + (f"; backtest on the last {result['holdout']}: " + ", ".join(
                 f"{nm} {'n/a' if e is None else f'{e:.1f}%'}" for nm, e in result["candidates"])
                if result["candidates"] else "")
             + f"; chosen: {result['method']}"]
    mape_txt = "n/a" if result["mape"] is None else f"{result['mape']:.1f}%"
    return Report(f"Revenue forecast by {unit} ({spec.basis}, {cur}): {result['method']}, backtest MAPE {mape_txt},"
                  f" 80% interval", cols, rows, None, measure="forecast", label="period", notes=notes,
                  chart="bars")
