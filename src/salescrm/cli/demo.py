"""``salescrm demo`` (being written)."""

from __future__ import annotations


def demo() -> None:
    """Build a demo database and show what salescrm can do."""
