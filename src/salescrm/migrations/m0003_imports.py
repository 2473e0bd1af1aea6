"""Import runs (idempotency by file hash) and automation hooks."""

SQL = """
-- One row per committed import: the file's SHA-256 is written in the same
-- transaction as the data, so importing the same file again is a no-op.
CREATE TABLE import_runs (
    id          INTEGER PRIMARY KEY,
    entity      TEXT NOT NULL CHECK (entity IN ('customers', 'products', 'orders', 'payments')),
    sha256      TEXT NOT NULL CHECK (length(sha256) = 64),
    source      TEXT NOT NULL,                 -- file name as given, '-' for stdin
    format      TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('committed', 'partial')),  -- partial: --rejects left rows out
    rows_read   INTEGER NOT NULL CHECK (rows_read >= 0),
    inserted    INTEGER NOT NULL CHECK (inserted >= 0),
    updated     INTEGER NOT NULL CHECK (updated >= 0),
    unchanged   INTEGER NOT NULL CHECK (unchanged >= 0),
    rejected    INTEGER NOT NULL CHECK (rejected >= 0),
    created     INTEGER NOT NULL DEFAULT 0 CHECK (created >= 0),  -- missing customers/products made
    detail      TEXT,                          -- JSON: per-entity counts, options (no personal data)
    started_at  TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    os_user     TEXT NOT NULL
) STRICT;
CREATE INDEX import_runs_sha ON import_runs(sha256, entity);

-- Commands run after a change commits; the event is JSON on their stdin.
CREATE TABLE hooks (
    id         INTEGER PRIMARY KEY,
    event      TEXT NOT NULL CHECK (event IN ('order.confirmed', 'order.shipped', 'order.paid',
                   'order.cancelled', 'customer.created', 'import.finished')),
    command    TEXT NOT NULL CHECK (length(command) BETWEEN 1 AND 4000),
    enabled    INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created_at TEXT NOT NULL,
    os_user    TEXT NOT NULL
) STRICT;
CREATE INDEX hooks_event ON hooks(event, enabled);
"""
