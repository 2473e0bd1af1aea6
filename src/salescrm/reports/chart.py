"""Text charts from unicode blocks: a horizontal bar chart and a sparkline.
Plain strings, no Rich (the CLI prints them)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

_EIGHTHS = " ▏▎▍▌▋▊▉█"
_SPARKS = "▁▂▃▄▅▆▇█"


def bar(value: float, top: float, width: int) -> str:
    """A bar of ``value / top`` of ``width`` cells, to an eighth of a cell."""
    if top <= 0 or value <= 0:
        return ""
    eighths = round(value / top * width * 8)
    full, part = divmod(eighths, 8)
    return "█" * full + (_EIGHTHS[part] if part else "")


def bars(labels: Sequence[str], values: Sequence[int | Decimal | None], texts: Sequence[str],
         *, width: int = 40) -> list[str]:
    """One line per value: label, bar, the value as text.  Negative values
    draw to the left of a zero line."""
    nums = [float(v or 0) for v in values]
    top = max([abs(v) for v in nums] + [0])
    lw = min(max((_width(lab) for lab in labels), default=0), 30)
    neg = any(v < 0 for v in nums)
    out = []
    for lab, v, t in zip(labels, nums, texts):
        name = _clip(lab, lw)
        pad = " " * (lw - _width(name))
        if neg:
            left = bar(-v, top, width // 2) if v < 0 else ""
            right = bar(v, top, width // 2) if v > 0 else ""
            out.append(f"{name}{pad} {left:>{width // 2}}│{right:<{width // 2}} {t}")
        else:
            out.append(f"{name}{pad} {bar(v, top, width):<{width}} {t}")
    return out


def sparkline(values: Sequence[int | Decimal | None]) -> str:
    """``▁▂▅█`` from the smallest to the largest value; a gap for None."""
    nums = [None if v is None else float(v) for v in values]
    present = [v for v in nums if v is not None]
    if not present:
        return ""
    lo, hi = min(present), max(present)
    span = hi - lo
    out = []
    for v in nums:
        if v is None:
            out.append(" ")
        elif span == 0:
            out.append(_SPARKS[len(_SPARKS) // 2] if hi else _SPARKS[0])
        else:
            out.append(_SPARKS[min(len(_SPARKS) - 1, int((v - lo) / span * (len(_SPARKS) - 1) + 0.5))])
    return "".join(out)


def _width(text: str) -> int:
    """Display cells, counting East Asian wide characters as two."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _clip(text: str, cells: int) -> str:
    out, used = "", 0
    for ch in text:
        w = _width(ch)
        if used + w > cells:
            return out[:-1] + "…" if out else ""
        out += ch
        used += w
    return out
