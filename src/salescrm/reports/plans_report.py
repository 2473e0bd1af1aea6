"""``report plans``: every plan's attainment, from ``salescrm.plans``
(which owns the plan arithmetic).  No Typer, no Rich."""

from __future__ import annotations

import sqlite3
from datetime import date
from typing import Any

from salescrm.errors import NotFound
from salescrm.output import Col
from salescrm.reports.common import Report


def plans(conn: sqlite3.Connection, *, today: date, current_only: bool = False) -> Report:
    has = conn.execute("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'plans'").fetchone()
    if not has:
        raise NotFound("this database has no plans yet", "add one with 'salescrm plan add'")
    from salescrm import plans as plans_mod

    rows: list[dict[str, Any]] = []
    for s in plans_mod.status_all(conn, today=today, current_only=current_only):
        money = s["metric"] == "revenue"
        rows.append({
            "plan": s["name"], "metric": s["metric"], "basis": s["basis"], "period_start": s["period_start"],
            "period_end": s["period_end"], "scope": s["scope"] or None,
            "target": s["target"], "achieved": s["achieved"], "variance": s["variance"],
            "attainment_pct": s["attainment_pct"], "elapsed_pct": s["elapsed_pct"], "expected": s["expected"],
            "projected": s["projected"], "state": s["state"], "unit": "money" if money else "count",
        })
    cols = [Col("plan"), Col("metric"), Col("basis"), Col("period_start", "date", "from"),
            Col("period_end", "date", "to"), Col("scope"), Col("target", "decimal"), Col("achieved", "decimal"),
            Col("variance", "decimal"), Col("attainment_pct", "percent", "attained"),
            Col("elapsed_pct", "percent", "elapsed"), Col("expected", "decimal"), Col("projected", "decimal"),
            Col("state"), Col("unit")]
    # money metrics (cents) are shown as amounts with two decimals; counts as they are
    for r in rows:
        if r["unit"] == "money":
            for k in ("target", "achieved", "variance", "expected", "projected"):
                if r[k] is not None:
                    from decimal import Decimal

                    r[k] = (Decimal(r[k]) / 100).quantize(Decimal("0.01"))
    return Report(f"Plans as of {today}", cols, rows, None, measure="attainment_pct", label="plan")
