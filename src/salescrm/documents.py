"""Quotes and invoices as Markdown or HTML: printable documents with the
seller's details, the customer, every line with its discount and tax, the
totals, the tax mode (prices incl. or excl. tax) and the payment terms.
No Typer, no Rich.  Every value put into HTML is escaped."""

from __future__ import annotations

import html
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from salescrm import lifecycle, money, orders, products, settings
from salescrm.errors import Conflict, IOFailure


@dataclass
class Document:
    kind: str                      # "quote" or "invoice"
    title: str
    number: str                    # quote: the order number; invoice: the invoice number
    order_number: str
    issued: str                    # ISO date
    currency: str
    seller: dict[str, str]
    customer: dict[str, Any]
    tax_note: str
    lines: list[dict[str, Any]]
    totals: list[tuple[str, int]]  # (label, cents), the last but some is the total
    terms: list[str] = field(default_factory=list)
    notes: str | None = None
    status: str = ""
    promotions: list[str] = field(default_factory=list)  # quotes: every candidate and why


def _terms_days(conn: sqlite3.Connection, customer_id: int) -> int:
    row = conn.execute("SELECT payment_terms_days FROM customers WHERE id = ?", (customer_id,)).fetchone()
    if row and row[0] is not None:
        return int(row[0])
    return int(settings.get(conn, "payment_terms_days"))


def build(conn: sqlite3.Connection, order: int | str, kind: str, invoice: dict | None = None,
          today: date | None = None) -> Document:
    """The document's content from the database."""
    o = orders.get(conn, order)
    if kind == "quote" or invoice is None:
        lifecycle.require(o["status"], kind, number=o["number"])
    # an issued invoice always reprints, whatever happened to the order since
    ls = orders.lines(conn, o["id"])
    adj = orders.adjustments(conn, o["id"])
    today = today or date.today()
    inclusive = o["tax_inclusive"]
    tax_note = ("Prices include tax; the tax each line contains is shown."
                if inclusive else "Prices exclude tax; tax is added per line.")
    lines = []
    for r in ls:
        if r["discount_pct"] is not None:
            disc = f"{products.rate_text(r['discount_pct'])}% (-{money.fmt_human(r['discount_cents'])})"
        elif r["discount_cents"]:
            disc = f"-{money.fmt_human(r['discount_cents'])}"
        else:
            disc = ""
        lines.append({
            "no": r["line_no"], "sku": r["sku"], "description": r["description"], "qty": r["qty"],
            "unit": r["unit"], "unit_price": r["unit_price"], "discount": disc,
            "tax_rate": products.rate_text(r["tax_rate"]), "net": r["net_cents"], "tax": r["tax_cents"],
            "amount": r["total_cents"], "returned": r["returned_qty"],
        })
    totals: list[tuple[str, int]] = []
    if o["discount_cents"]:
        totals.append(("Lines before discounts" + (" (incl. tax)" if inclusive else ""), o["gross_cents"]))
        totals.append(("Line discounts", -o["discount_cents"]))
    if inclusive:
        totals.append(("Lines (incl. tax)", o["subtotal_cents"] + o["tax_cents"]))
        tax_note += (f" Tax included: {money.fmt_human(o['tax_cents'])} {o['currency']}"
                     f" on {money.fmt_human(o['subtotal_cents'])} net.")
    else:
        totals.append(("Subtotal (excl. tax)", o["subtotal_cents"]))
        totals.append(("Tax", o["tax_cents"]))
    for a in adj:
        totals.append((a["description"], a["amount_cents"]))
    if o["shipping_cents"]:
        totals.append(("Shipping", o["shipping_cents"]))
    totals.append(("Total", o["total_cents"]))
    if o["returned_cents"]:
        totals.append(("Returned", -o["returned_cents"]))
        totals.append(("Total after returns", o["net_total_cents"]))
    if kind == "invoice" and o["status"] != "cancelled":
        if o["paid_cents"]:
            totals.append(("Paid", -o["paid_cents"]))
        totals.append(("Balance due", o["balance_cents"]))
    days = _terms_days(conn, o["customer_id"])
    terms = []
    if kind == "quote":
        valid = int(settings.get(conn, "quote_validity_days"))
        terms.append(f"Valid until {(today + timedelta(days=valid)).isoformat()}.")
        terms.append(f"Payment terms: net {days} days from the order date.")
        title, number, issued = "Quote", o["number"], today.isoformat()
    else:
        assert invoice is not None
        due = invoice.get("due_date") or o["due_date"]
        terms.append(f"Payment terms: net {days} days; due {due}." if due else f"Payment terms: net {days} days.")
        title, number, issued = "Invoice", invoice["number"], invoice["issued_at"]
    if kind == "invoice" and o["status"] == "cancelled":
        terms = [f"VOID: order {o['number']} was cancelled on {str(o['cancelled_at'])[:10]}; nothing is due."]
    seller = settings.seller(conn)
    if seller.get("bank") and o["status"] != "cancelled":
        terms.append(f"Pay by transfer to: {seller['bank']}")
    if o["status"] != "cancelled":
        terms.append(f"Please quote {number} with your payment." if kind == "invoice" else
                     f"Please quote {o['number']} when you order.")
    return Document(kind=kind, title=title, number=number, order_number=o["number"], issued=issued,
                    currency=o["currency"], seller=seller, customer=o["customer_details"], tax_note=tax_note,
                    lines=lines, totals=totals, terms=terms, notes=o["notes"], status=o["status"],
                    promotions=_promotion_lines(conn, o["id"]) if kind == "quote" else [])


def _promotion_lines(conn: sqlite3.Connection, order_id: int) -> list[str]:
    """Every candidate promotion with why it applied or not, then the
    "spend N more" hints (the same evaluation as ``promo explain``)."""
    from salescrm import promotions

    outcome = promotions.explain(conn, order_id)
    out = [f"{c.name}: {'applied' if c.applied else 'not applied'}"
           + (f" ({c.reason})" if c.reason else "") for c in outcome.candidates]
    return out + list(outcome.hints)


def _address(d: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    out = []
    for k in keys:
        v = d.get(k)
        if v:
            out += [part.strip() for part in str(v).splitlines() if part.strip()]
    return out


def _customer_lines(c: dict[str, Any]) -> list[str]:
    place = " ".join(x for x in (c.get("city"), c.get("region")) if x)
    rows = _address(c, ("name", "company", "address"))
    if place:
        rows.append(place)
    rows += _address(c, ("country", "email"))
    return rows or ["(customer details erased)"]


def _seller_lines(s: dict[str, str]) -> list[str]:
    rows = _address(s, ("name", "address", "email", "phone"))
    if s.get("tax_id"):
        rows.append(f"Tax id: {s['tax_id']}")
    return rows or ["(set the seller's details with 'salescrm settings set seller.name ...')"]


def _m(cents: int) -> str:
    return money.fmt_human(cents)


# --------------------------------------------------------------------------- Markdown


def _md(text: Any) -> str:
    s = " ".join(str(text).split())
    for ch in "\\|*_`[]<>#":
        s = s.replace(ch, "\\" + ch)
    return s


def markdown(doc: Document) -> str:
    out = [f"# {doc.title} {_md(doc.number)}", ""]
    meta = [f"**Date:** {doc.issued}", f"**Order:** {_md(doc.order_number)}", f"**Currency:** {doc.currency}"]
    out += ["  \n".join(meta), ""]
    out += ["## From", "", "  \n".join(_md(x) for x in _seller_lines(doc.seller)), ""]
    out += ["## To", "", "  \n".join(_md(x) for x in _customer_lines(doc.customer)), ""]
    out.append("| # | SKU | Description | Qty | Unit price | Discount | Tax % | Net | Tax | Amount |")
    out.append("|--:|-----|-------------|----:|-----------:|---------:|------:|----:|----:|-------:|")
    for ln in doc.lines:
        desc = _md(ln["description"])
        if ln["returned"]:
            desc += f" (returned: {ln['returned']:,})"
        out.append(f"| {ln['no']} | {_md(ln['sku'])} | {desc} | {ln['qty']:,} {_md(ln['unit'])} | "
                   f"{_m(ln['unit_price'])} | {_md(ln['discount'])} | {ln['tax_rate']} | {_m(ln['net'])} | "
                   f"{_m(ln['tax'])} | {_m(ln['amount'])} |")
    out += ["", "| | |", "|---|---:|"]
    for label, cents in doc.totals:
        strong = label in ("Total", "Balance due")
        lab, val = _md(label), f"{_m(cents)} {doc.currency}"
        out.append(f"| **{lab}** | **{val}** |" if strong else f"| {lab} | {val} |")
    out += ["", f"_{doc.tax_note}_", ""]
    if doc.promotions:
        out += ["## Promotions", ""] + [f"- {_md(p)}" for p in doc.promotions] + [""]
    out.append("  \n".join(_md(t) for t in doc.terms))
    if doc.notes:
        out += ["", f"Notes: {_md(doc.notes)}"]
    return "\n".join(out).rstrip() + "\n"


# --------------------------------------------------------------------------- HTML

_CSS = """
body { font-family: "Helvetica Neue", Arial, "Noto Sans CJK SC", "PingFang SC", sans-serif;
       margin: 2.5em; color: #222; font-size: 11pt; }
h1 { font-size: 20pt; margin-bottom: 0.2em; }
.meta { color: #555; margin-bottom: 1.5em; }
.parties { display: flex; gap: 4em; margin-bottom: 1.5em; }
.parties h2 { font-size: 10pt; text-transform: uppercase; color: #777; margin: 0 0 0.3em; }
table { border-collapse: collapse; width: 100%; }
th, td { padding: 0.35em 0.5em; border-bottom: 1px solid #ddd; text-align: left; vertical-align: top; }
th { background: #f4f4f4; font-size: 9pt; text-transform: uppercase; }
td.n, th.n { text-align: right; white-space: nowrap; }
table.totals { width: auto; margin-left: auto; margin-top: 1em; }
table.totals tr.strong td { font-weight: bold; border-top: 2px solid #222; }
.note { color: #555; font-style: italic; margin-top: 1em; }
@media print { body { margin: 1cm; } }
"""


def _h(text: Any) -> str:
    return html.escape(str(text), quote=True)


def html_document(doc: Document) -> str:
    e = _h
    rows = []
    for ln in doc.lines:
        desc = e(ln["description"])
        if ln["returned"]:
            desc += f" <small>(returned: {ln['returned']:,})</small>"
        rows.append(
            f"<tr><td class=n>{ln['no']}</td><td>{e(ln['sku'])}</td><td>{desc}</td>"
            f"<td class=n>{ln['qty']:,} {e(ln['unit'])}</td><td class=n>{_m(ln['unit_price'])}</td>"
            f"<td class=n>{e(ln['discount'])}</td><td class=n>{e(ln['tax_rate'])}</td>"
            f"<td class=n>{_m(ln['net'])}</td><td class=n>{_m(ln['tax'])}</td><td class=n>{_m(ln['amount'])}</td></tr>"
        )
    totals = []
    for label, cents in doc.totals:
        cls = ' class="strong"' if label in ("Total", "Balance due") else ""
        totals.append(f"<tr{cls}><td>{e(label)}</td><td class=n>{_m(cents)} {e(doc.currency)}</td></tr>")
    seller = "<br>".join(e(x) for x in _seller_lines(doc.seller))
    customer = "<br>".join(e(x) for x in _customer_lines(doc.customer))
    terms = "".join(f"<p>{e(t)}</p>" for t in doc.terms)
    notes = f"<p>Notes: {e(doc.notes)}</p>" if doc.notes else ""
    if doc.promotions:
        notes += "<h2>Promotions</h2><ul>" + "".join(f"<li>{e(p)}</li>" for p in doc.promotions) + "</ul>"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{e(doc.title)} {e(doc.number)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{e(doc.title)} {e(doc.number)}</h1>
<div class="meta">Date {e(doc.issued)} &middot; Order {e(doc.order_number)} &middot; Currency {e(doc.currency)}</div>
<div class="parties">
<div><h2>From</h2>{seller}</div>
<div><h2>To</h2>{customer}</div>
</div>
<table class="lines">
<thead><tr><th class=n>#</th><th>SKU</th><th>Description</th><th class=n>Qty</th><th class=n>Unit price</th>
<th class=n>Discount</th><th class=n>Tax %</th><th class=n>Net</th><th class=n>Tax</th><th class=n>Amount</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody>
</table>
<table class="totals">
{chr(10).join(totals)}
</table>
<p class="note">{e(doc.tax_note)}</p>
{terms}{notes}
</body>
</html>
"""


# --------------------------------------------------------------------------- writing


def write(text: str, dest: str | Path, *, force: bool = False) -> None:
    """Write atomically (a temporary file, then rename), 0600; an existing
    file is refused unless ``force``."""
    from salescrm.validate import file_to_write

    dest, tmp = file_to_write(dest)
    if dest.exists() and not force:
        raise Conflict(f"{dest} exists", "use --force to overwrite it")
    try:
        fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, dest)
    except OSError as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise IOFailure(f"cannot write {dest}: {exc.strerror or exc}") from None
