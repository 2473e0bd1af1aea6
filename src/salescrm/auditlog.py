"""Reading the audit trail (written by ``db.audit``): who changed what, when.
The trail holds ids only, never personal data, and is append-only."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator


from salescrm import validate


def entries(
    conn: sqlite3.Connection,
    *,
    entity: str | None = None,
    entity_id: str | None = None,
    since: str | None = None,
    user: str | None = None,
    limit: int | None = None,
) -> Iterator[dict]:
    """Newest first.  ``since`` is a date (ISO, today, -7d ...)."""
    where, params = [], []
    if entity:
        where.append("entity = ?")
        params.append(entity.strip().lower())
    if entity_id:
        where.append("entity_id = ?")
        params.append(str(entity_id).strip())
    if since:
        day = validate.parse_date(since, field="--since")
        where.append("at >= ?")
        params.append(day.isoformat())
    if user:
        where.append("os_user = ?")
        params.append(user)
    sql = "SELECT id, at, os_user, command, action, entity, entity_id FROM audit"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id DESC"
    if limit:
        sql += " LIMIT ?"
        params.append(int(limit))
    for row in conn.execute(sql, params):
        yield dict(row)



