"""Core schema: settings, audit trail, customers and their records."""

SQL = """
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- Append-only trail of every write: ids only, never personal data.
CREATE TABLE audit (
    id        INTEGER PRIMARY KEY,
    at        TEXT NOT NULL,
    os_user   TEXT NOT NULL,
    command   TEXT NOT NULL,
    action    TEXT NOT NULL,
    entity    TEXT NOT NULL,
    entity_id TEXT NOT NULL
) STRICT;
CREATE INDEX audit_entity ON audit(entity, entity_id);
CREATE INDEX audit_at ON audit(at);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;

CREATE TABLE customers (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    name_key     TEXT NOT NULL,            -- casefolded, spaces collapsed: search and dupes
    company      TEXT,
    company_key  TEXT,                     -- casefolded like name_key: search and dupes
    email        TEXT,
    email_key    TEXT UNIQUE,              -- casefolded, trimmed: uniqueness and lookup
    phone        TEXT,                     -- normalised: digits with optional leading +
    address      TEXT,
    city         TEXT,
    region       TEXT,
    country      TEXT,
    segment      TEXT,
    source       TEXT,                     -- source channel
    owner        TEXT,                     -- salesperson
    notes        TEXT,
    external_id  TEXT UNIQUE,              -- id in another system (imports)
    credit_limit INTEGER CHECK (credit_limit IS NULL OR credit_limit >= 0),  -- cents
    payment_terms_days INTEGER CHECK (payment_terms_days IS NULL OR payment_terms_days >= 0),
    archived_at  TEXT,
    forgotten_at TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
) STRICT;
CREATE INDEX customers_name_key ON customers(name_key);
CREATE INDEX customers_phone ON customers(phone);
CREATE INDEX customers_segment ON customers(segment);
CREATE INDEX customers_region ON customers(region);
CREATE INDEX customers_city ON customers(city);
CREATE INDEX customers_owner ON customers(owner);
CREATE INDEX customers_created ON customers(created_at);

CREATE TABLE customer_tags (
    customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    tag         TEXT NOT NULL,
    PRIMARY KEY (customer_id, tag)
) STRICT, WITHOUT ROWID;
CREATE INDEX customer_tags_tag ON customer_tags(tag, customer_id);

CREATE TABLE interactions (
    id          INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('call', 'email', 'meeting', 'visit', 'note')),
    text        TEXT NOT NULL,
    at          TEXT NOT NULL,
    os_user     TEXT NOT NULL,
    created_at  TEXT NOT NULL
) STRICT;
CREATE INDEX interactions_customer ON interactions(customer_id, at);

CREATE TABLE ratings (
    id          INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    score       INTEGER NOT NULL CHECK (score BETWEEN 1 AND 5),
    comment     TEXT,
    at          TEXT NOT NULL
) STRICT;
CREATE INDEX ratings_customer ON ratings(customer_id);

CREATE TABLE tasks (
    id             INTEGER PRIMARY KEY,
    customer_id    INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    due            TEXT NOT NULL,          -- ISO date
    text           TEXT NOT NULL,
    interaction_id INTEGER REFERENCES interactions(id) ON DELETE SET NULL,
    created_at     TEXT NOT NULL,
    done_at        TEXT
) STRICT;
CREATE INDEX tasks_open ON tasks(done_at, due);
CREATE INDEX tasks_customer ON tasks(customer_id);

-- A merge moved every record of merged_id onto kept_id (merged_id is gone).
-- Deleting the kept customer later removes its merge history too (the audit
-- trail keeps the ids).
CREATE TABLE customer_merges (
    id        INTEGER PRIMARY KEY,
    kept_id   INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    merged_id INTEGER NOT NULL,
    at        TEXT NOT NULL,
    os_user   TEXT NOT NULL,
    moved     TEXT NOT NULL                -- JSON: counts of records moved per table
) STRICT;
CREATE INDEX customer_merges_kept ON customer_merges(kept_id);
CREATE INDEX customer_merges_merged ON customer_merges(merged_id);
"""
