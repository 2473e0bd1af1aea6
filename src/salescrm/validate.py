"""Small validators shared by the logic modules (no Typer, no Rich)."""

from __future__ import annotations

import os
import re
import unicodedata
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from salescrm.errors import UsageError, ValidationError

# Pragmatic e-mail syntax: one @, a dotted domain, no spaces or control chars.
_EMAIL_RE = re.compile(r"^[^@\s\x00-\x1f]+@[^@\s\x00-\x1f.]+(\.[^@\s\x00-\x1f.]+)+$")


def text(value: str | None, *, field: str, max_len: int = 2000, required: bool = False) -> str | None:
    """Trim; refuse control characters (NUL, etc.) and over-long values."""
    if value is None:
        if required:
            raise ValidationError(f"{field} is required")
        return None
    v = unicodedata.normalize("NFC", str(value)).strip()
    if not v:
        if required:
            raise ValidationError(f"{field} must not be empty")
        return None
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in v):
        raise ValidationError(f"{field} contains control characters")
    if len(v) > max_len:
        raise ValidationError(f"{field} is longer than {max_len} characters")
    return v


def email(value: str | None) -> str | None:
    v = text(value, field="email", max_len=254)
    if v is None:
        return None
    if not _EMAIL_RE.match(v):
        raise ValidationError(f"not a valid e-mail address: {v!r}", "write it like name@example.com")
    return v


def email_key(value: str | None) -> str | None:
    """The form used for uniqueness and lookup: trimmed and casefolded."""
    return value.strip().casefold() if value else None


def phone(value: str | None) -> str | None:
    """Normalise to digits with an optional leading +; spaces, dots, dashes
    and brackets are dropped; anything else is refused."""
    v = text(value, field="phone", max_len=40)
    if v is None:
        return None
    if not re.fullmatch(r"\+?[\d\s().\-/]+", v):
        raise ValidationError(f"not a valid phone number: {v!r}", "use digits, spaces and an optional leading +")
    digits = re.sub(r"\D", "", v)
    if not 3 <= len(digits) <= 20:
        raise ValidationError(f"a phone number needs 3 to 20 digits, not {len(digits)}")
    return ("+" if v.startswith("+") else "") + digits


def name_key(value: str) -> str:
    """Casefolded, NFKC-normalised, single-spaced: for search and duplicates."""
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split())


def parse_date(value: str | date, *, field: str = "date", today: date | None = None) -> date:
    """ISO date (2026-03-01) or today / yesterday / tomorrow / +Nd / -Nd."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    v = str(value).strip().lower()
    base = today or date.today()
    if v == "today":
        return base
    if v == "yesterday":
        return base - timedelta(days=1)
    if v == "tomorrow":
        return base + timedelta(days=1)
    m = re.fullmatch(r"([+-]\d{1,4})d", v)
    if m:
        return base + timedelta(days=int(m.group(1)))
    try:
        return date.fromisoformat(v) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", v) else _bad_date(field, value)
    except ValueError:
        return _bad_date(field, value)


def _bad_date(field: str, value: object) -> date:
    raise ValidationError(f"{field} is not a date: {value!r}", "use YYYY-MM-DD (ISO 8601), today, or +3d")


def parse_datetime(value: str, *, field: str = "time") -> str:
    """ISO date or date-time -> normalised ISO-8601 UTC text ('...Z').
    A time without a zone is taken as local time."""
    v = str(value).strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", v) or v.lower() in ("today", "yesterday", "tomorrow"):
        d = parse_date(v, field=field)
        dt = datetime(d.year, d.month, d.day).astimezone()
    else:
        try:
            dt = datetime.fromisoformat(v.replace("Z", "+00:00").replace(" ", "T", 1))
        except ValueError:
            raise ValidationError(
                f"{field} is not a date-time: {value!r}", "use ISO 8601, e.g. 2026-03-01T14:30"
            ) from None
        if dt.tzinfo is None:
            dt = dt.astimezone()
    dt = dt.astimezone(timezone.utc).replace(microsecond=0)
    return dt.isoformat().replace("+00:00", "Z")


def positive_int(value: int, *, field: str) -> int:
    if value <= 0:
        raise ValidationError(f"{field} must be a positive whole number")
    return value


def file_to_write(path: str | Path, *, option: str = "--output") -> tuple[Path, Path]:
    """A file that a command will write atomically, and the temporary file
    beside it that is written first and then renamed over it (hidden, one per
    process).  Refused, as a usage error, when it names a directory or no
    file at all (an empty name is the current directory)."""
    p = Path(path)
    if not str(path) or not p.name or p.is_dir():
        raise UsageError(f"{option} names {'a directory' if str(path) else 'nothing'}: {str(path)!r}",
                         f"give a file name to {option}")
    return p, p.with_name(f".{p.name}.tmp-{os.getpid()}")
