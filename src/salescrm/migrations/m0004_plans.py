"""Sales plans, pricing history, market prices and promotions.

Money is INTEGER cents; a plan's target is cents for the revenue metric and
a count otherwise.  Promotions reach orders through ``order_promotions``:
each row links one promotion to the order adjustment (a discount) or the
free order line it produced, so that recomputing a draft's promotions can
remove exactly what promotions added.
"""

SQL = """
CREATE TABLE plans (
    id                 INTEGER PRIMARY KEY,
    name               TEXT NOT NULL,
    name_key           TEXT NOT NULL UNIQUE,      -- casefolded: names are unique in any case
    period_start       TEXT NOT NULL,             -- ISO date, inclusive
    period_end         TEXT NOT NULL,             -- ISO date, inclusive
    period_label       TEXT,                      -- as given: 2026-Q1, 2026-03, 2026
    metric             TEXT NOT NULL CHECK (metric IN ('revenue', 'units', 'orders', 'new_customers')),
    target             INTEGER NOT NULL CHECK (target > 0),   -- cents for revenue, else a count
    basis              TEXT NOT NULL DEFAULT 'booked' CHECK (basis IN ('booked', 'shipped', 'collected')),
    scope_channel      TEXT,                      -- comma-separated values; NULL: any
    scope_category     TEXT,
    scope_sku          TEXT,
    scope_region       TEXT,
    scope_segment      TEXT,
    scope_salesperson  TEXT,
    strategy           TEXT,
    marketing_channel  TEXT,                      -- how the plan is pursued (newsletter, fair, ...)
    budget             INTEGER CHECK (budget IS NULL OR budget >= 0),  -- cents
    distribution       TEXT NOT NULL DEFAULT 'none'
                       CHECK (distribution IN ('none', 'even', 'weights', 'seasonal')),
    split              TEXT CHECK (split IS NULL OR split IN ('week', 'month', 'quarter')),
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    CHECK (period_start <= period_end)
) STRICT;

-- The target spread over sub-periods (computed when the plan is saved).
CREATE TABLE plan_targets (
    plan_id      INTEGER NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL CHECK (seq > 0),
    period_start TEXT NOT NULL,
    period_end   TEXT NOT NULL,
    weight       TEXT NOT NULL,                   -- a plain decimal
    target       INTEGER NOT NULL CHECK (target >= 0),
    PRIMARY KEY (plan_id, seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE plan_spend (
    id           INTEGER PRIMARY KEY,
    plan_id      INTEGER NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
    spent_on     TEXT NOT NULL,                   -- ISO date
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    note         TEXT,
    os_user      TEXT NOT NULL,
    created_at   TEXT NOT NULL
) STRICT;
CREATE INDEX plan_spend_plan ON plan_spend(plan_id);

-- Every change of a list price.  The triggers catch every change (product
-- edit, imports); 'product price' then names its strategy on the row.
CREATE TABLE price_history (
    id         INTEGER PRIMARY KEY,
    product_id INTEGER NOT NULL REFERENCES products(id),
    at         TEXT NOT NULL,
    os_user    TEXT,                              -- NULL: from the change's audit row (after audit_mark)
    old_price  INTEGER CHECK (old_price IS NULL OR old_price >= 0),  -- cents; NULL when created
    new_price  INTEGER NOT NULL CHECK (new_price >= 0),
    strategy   TEXT NOT NULL,                     -- initial, manual, cost-plus 30%, ...
    detail     TEXT,
    audit_mark INTEGER                            -- the last audit id before the change
) STRICT;
CREATE INDEX price_history_product ON price_history(product_id, id);
CREATE TRIGGER price_history_insert AFTER INSERT ON products
BEGIN
    INSERT INTO price_history (product_id, at, old_price, new_price, strategy, audit_mark)
    VALUES (NEW.id, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), NULL, NEW.list_price, 'initial',
            (SELECT coalesce(max(id), 0) FROM audit));
END;
CREATE TRIGGER price_history_update AFTER UPDATE OF list_price ON products
WHEN OLD.list_price IS NOT NEW.list_price
BEGIN
    INSERT INTO price_history (product_id, at, old_price, new_price, strategy, audit_mark)
    VALUES (NEW.id, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), OLD.list_price, NEW.list_price, 'manual',
            (SELECT coalesce(max(id), 0) FROM audit));
END;

-- Competitors' prices as observed.
CREATE TABLE market_prices (
    id          INTEGER PRIMARY KEY,
    product_id  INTEGER NOT NULL REFERENCES products(id),
    source      TEXT NOT NULL,
    source_key  TEXT NOT NULL,                    -- casefolded
    price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
    observed_on TEXT NOT NULL,                    -- ISO date
    os_user     TEXT NOT NULL,
    created_at  TEXT NOT NULL
) STRICT;
CREATE INDEX market_prices_product ON market_prices(product_id, source_key, observed_on);

CREATE TABLE promotions (
    id                 INTEGER PRIMARY KEY,
    name               TEXT NOT NULL,
    name_key           TEXT NOT NULL UNIQUE,
    description        TEXT,
    kind               TEXT NOT NULL CHECK (kind IN ('percent', 'amount', 'fixed_price', 'free_items', 'gift')),
    percent            TEXT,                      -- percent off (kind percent)
    amount_cents       INTEGER CHECK (amount_cents IS NULL OR amount_cents >= 0),  -- amount off / fixed price
    buy_qty            INTEGER CHECK (buy_qty IS NULL OR buy_qty > 0),
    get_qty            INTEGER CHECK (get_qty IS NULL OR get_qty > 0),   -- free units / gift units
    get_product_id     INTEGER REFERENCES products(id),                  -- free or gift product
    repeat             INTEGER NOT NULL DEFAULT 1 CHECK (repeat IN (0, 1)),
    min_qty            INTEGER CHECK (min_qty IS NULL OR min_qty > 0),
    min_amount         INTEGER CHECK (min_amount IS NULL OR min_amount > 0),  -- cents
    channels           TEXT,                      -- comma-separated; NULL: any
    segments           TEXT,                      -- comma-separated, casefolded; NULL: any
    starts_on          TEXT,                      -- ISO date, inclusive; NULL: open
    ends_on            TEXT,                      -- ISO date, inclusive; NULL: open
    coupon             TEXT,
    coupon_key         TEXT UNIQUE,               -- casefolded
    usage_limit        INTEGER CHECK (usage_limit IS NULL OR usage_limit > 0),
    per_customer_limit INTEGER CHECK (per_customer_limit IS NULL OR per_customer_limit > 0),
    active             INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    exclusive          INTEGER NOT NULL DEFAULT 0 CHECK (exclusive IN (0, 1)),
    priority           INTEGER NOT NULL DEFAULT 0,
    ended_at           TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    CHECK (starts_on IS NULL OR ends_on IS NULL OR starts_on <= ends_on)
) STRICT;

-- What a promotion applies to: SKUs and categories (none: every line).
CREATE TABLE promotion_targets (
    promotion_id INTEGER NOT NULL REFERENCES promotions(id) ON DELETE CASCADE,
    product_id   INTEGER REFERENCES products(id),
    category     TEXT,                            -- casefolded
    CHECK ((product_id IS NULL) <> (category IS NULL))
) STRICT;
CREATE INDEX promotion_targets_promo ON promotion_targets(promotion_id);

-- A coupon code entered on an order.
CREATE TABLE order_coupons (
    order_id   INTEGER PRIMARY KEY REFERENCES orders(id),
    coupon     TEXT NOT NULL,
    coupon_key TEXT NOT NULL
) STRICT;

-- What promotions did to an order: a discount adjustment or a free line.
CREATE TABLE order_promotions (
    id            INTEGER PRIMARY KEY,
    order_id      INTEGER NOT NULL REFERENCES orders(id),
    promotion_id  INTEGER NOT NULL REFERENCES promotions(id),
    adjustment_id INTEGER REFERENCES order_adjustments(id) ON DELETE CASCADE,
    line_id       INTEGER REFERENCES order_lines(id) ON DELETE CASCADE,
    saving_cents  INTEGER NOT NULL CHECK (saving_cents >= 0),
    detail        TEXT,
    CHECK ((adjustment_id IS NULL) <> (line_id IS NULL))
) STRICT;
CREATE INDEX order_promotions_order ON order_promotions(order_id);
CREATE INDEX order_promotions_promo ON order_promotions(promotion_id);

-- A promotion used by a confirmed order; released when the order is cancelled.
CREATE TABLE promotion_usage (
    id           INTEGER PRIMARY KEY,
    promotion_id INTEGER NOT NULL REFERENCES promotions(id),
    order_id     INTEGER NOT NULL REFERENCES orders(id),
    saving_cents INTEGER NOT NULL CHECK (saving_cents >= 0),
    used_at      TEXT NOT NULL,
    released_at  TEXT,
    UNIQUE (promotion_id, order_id)
) STRICT;
CREATE INDEX promotion_usage_order ON promotion_usage(order_id);
"""
