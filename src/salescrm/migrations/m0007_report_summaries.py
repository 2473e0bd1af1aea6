"""Summaries for the slowest reports on large databases.

One summary row per booked line with kept units (``sales_lines``): its
booked revenue and kept units, with indexes on each and per product, so
that ``report stats`` over all history (or by product) walks the values in
order instead of computing and sorting three million of them.  Kept current
like the other summaries (``salescrm.salesfacts``): the triggers of m0005
already mark every order a line change touches.  The shipped basis gets a
covering index by product (the collected basis one by customer), totals
per UTC hour (``sales_shipped_hours``) with an index of the shipments that
follow an earlier one of the same order, and totals per product and per
customer over all history (``sales_shipped_products``,
``sales_shipped_customers``).  By category and period an order counts once
per category: each shipment line carries its product's category and, on
the shipment's first line of that category, the time of the order's
previous shipment of the category (as ``prev_at`` does for the order), with
totals per UTC hour and category (``sales_shipped_category_hours``), an
index of the repeats, and an index in category and time order for the
reports with an order filter (the lines also carry the customer's region,
kept current by a trigger that marks a customer's orders when the region
changes)."""

SQL = """
CREATE TABLE sales_lines (
    order_id   INTEGER NOT NULL,                -- orders.id (derived data: no foreign key)
    line_no    INTEGER NOT NULL,                -- order_lines.line_no
    day        TEXT NOT NULL,                   -- orders.order_date
    currency   TEXT NOT NULL,
    product_id INTEGER NOT NULL,
    value      INTEGER NOT NULL,                -- the line's booked revenue (cents)
    qty        INTEGER NOT NULL,                -- its kept units
    CHECK (qty > 0),
    CHECK (abs(value) < 1000000000000000),     -- signed: a share of an order discount
    -- kept in day order: a period's lines are one range
    PRIMARY KEY (currency, day, order_id, line_no)
) STRICT, WITHOUT ROWID;
CREATE INDEX sales_lines_order ON sales_lines(order_id, line_no);
-- the values in order (each index entry also holds the day, order and line
-- number: a period's values in order, and the lines holding the extremes)
CREATE INDEX sales_lines_value ON sales_lines(currency, value);
CREATE INDEX sales_lines_qty ON sales_lines(currency, qty);
-- per product: its distinct (units, value) in order, each with its count and
-- the lines holding it (stats of line fields by product or category)
CREATE INDEX sales_lines_product ON sales_lines(currency, product_id, qty, value);

-- the shipped basis by product over a long range: every shipment line of a
-- currency in product and order order (the distinct orders of each product
-- counted as they stream, no sort of every line)
CREATE INDEX sales_shipped_product ON sales_shipped(currency, product_id, order_id, shipped_at, units, revenue, cost);

-- the collected basis by customer or region over all history: a currency's
-- payments in customer and order order (the distinct orders of each customer
-- counted as they stream, no sort of every payment)
CREATE INDEX sales_collected_customer ON sales_collected(currency, customer_id, order_id, amount);

-- the shipped basis per UTC hour and currency (a period's local days are
-- whole hours in almost every zone): shipment lines, shipments (their first
-- lines), revenue, units and cost
CREATE TABLE sales_shipped_hours (
    hour     TEXT NOT NULL,                     -- the first 13 characters of shipped_at: '2026-03-05T14'
    currency TEXT NOT NULL,
    lines    INTEGER NOT NULL,
    firsts   INTEGER NOT NULL,                  -- rows of sales_shipped with counts_order = 1
    revenue  INTEGER NOT NULL,
    units    INTEGER NOT NULL,
    cost     INTEGER NOT NULL,
    CHECK (lines > 0 AND firsts >= 0 AND units >= 0 AND cost >= 0),
    CHECK (abs(revenue) < 1000000000000000),
    PRIMARY KEY (hour, currency)
) STRICT, WITHOUT ROWID;
-- the shipments whose order had shipped before: an order shipped twice in a
-- period counts once (see reports.common.shipped_rows_sql)
CREATE INDEX sales_shipped_again ON sales_shipped(prev_at, shipped_at, currency) WHERE prev_at IS NOT NULL;

-- the shipped basis by category (the category of the line's product when
-- computed; '' for none): the shipment's first line of each category, and on
-- it the time of the order's previous shipment of that category.  (Added to
-- m0005's table with defaults; the refresh that follows this migration
-- computes every order's rows, as every order is marked below.)
ALTER TABLE sales_shipped ADD COLUMN category TEXT NOT NULL DEFAULT '';
ALTER TABLE sales_shipped ADD COLUMN counts_category INTEGER NOT NULL DEFAULT 0 CHECK (counts_category IN (0, 1));
ALTER TABLE sales_shipped ADD COLUMN prev_category_at TEXT;
-- and the customer's region (when computed), for the region filter
ALTER TABLE sales_shipped ADD COLUMN region TEXT;
-- per UTC hour, currency and category (an order counts once per category:
-- firsts are the rows with counts_category = 1)
CREATE TABLE sales_shipped_category_hours (
    hour     TEXT NOT NULL,                     -- the first 13 characters of shipped_at
    currency TEXT NOT NULL,
    category TEXT NOT NULL,
    lines    INTEGER NOT NULL,
    firsts   INTEGER NOT NULL,
    revenue  INTEGER NOT NULL,
    units    INTEGER NOT NULL,
    cost     INTEGER NOT NULL,
    CHECK (lines > 0 AND firsts >= 0 AND units >= 0 AND cost >= 0),
    CHECK (abs(revenue) < 1000000000000000),
    PRIMARY KEY (hour, currency, category)
) STRICT, WITHOUT ROWID;
-- the shipments whose order had shipped the category before (as sales_shipped_again)
CREATE INDEX sales_shipped_category_again ON sales_shipped(prev_category_at, shipped_at, currency, category)
    WHERE prev_category_at IS NOT NULL;
-- with an order filter: each category's lines of a period are one range, with
-- what the filters and the figures need (no sort by category, no product join)
CREATE INDEX sales_shipped_category ON sales_shipped(currency, category, shipped_at, channel, salesperson,
    region, customer_id, counts_category, prev_category_at, units, revenue, cost);
-- a customer moved to another region: the shipment lines of their orders
CREATE TRIGGER sales_mark_customer_region AFTER UPDATE OF region ON customers
WHEN OLD.region IS NOT NEW.region
BEGIN
    INSERT OR IGNORE INTO sales_dirty_orders SELECT id FROM orders WHERE customer_id = OLD.id;
END;

-- the shipped basis per product over all history (its orders: the orders with
-- a shipment of it)
CREATE TABLE sales_shipped_products (
    product_id INTEGER NOT NULL,
    currency   TEXT NOT NULL,
    orders     INTEGER NOT NULL,
    units      INTEGER NOT NULL,
    revenue    INTEGER NOT NULL,
    lines      INTEGER NOT NULL,                -- shipment lines
    cost       INTEGER NOT NULL,
    CHECK (orders > 0 AND units >= 0 AND lines > 0 AND cost >= 0),
    CHECK (abs(revenue) < 1000000000000000),
    PRIMARY KEY (product_id, currency)
) STRICT, WITHOUT ROWID;

-- ... and per customer (so per region too)
CREATE TABLE sales_shipped_customers (
    customer_id INTEGER NOT NULL,
    currency    TEXT NOT NULL,
    orders      INTEGER NOT NULL,
    units       INTEGER NOT NULL,
    revenue     INTEGER NOT NULL,
    lines       INTEGER NOT NULL,               -- shipment lines
    cost        INTEGER NOT NULL,
    CHECK (orders > 0 AND units >= 0 AND lines > 0 AND cost >= 0),
    CHECK (abs(revenue) < 1000000000000000),
    PRIMARY KEY (customer_id, currency)
) STRICT, WITHOUT ROWID;

-- what is here already: the shipped totals added up from the shipment lines
-- (which m0005 keeps; a later refresh moves them from there), the lines'
-- rows computed when this migration commits
INSERT INTO sales_shipped_hours (hour, currency, lines, firsts, revenue, units, cost)
    SELECT substr(shipped_at, 1, 13), currency, count(*), sum(counts_order), sum(revenue), sum(units), sum(cost)
    FROM sales_shipped GROUP BY 1, 2;
INSERT INTO sales_shipped_products (product_id, currency, orders, units, revenue, lines, cost)
    SELECT product_id, currency, count(DISTINCT order_id), sum(units), sum(revenue), count(*), sum(cost)
    FROM sales_shipped GROUP BY 1, 2;
INSERT INTO sales_shipped_customers (customer_id, currency, orders, units, revenue, lines, cost)
    SELECT customer_id, currency, count(DISTINCT order_id), sum(units), sum(revenue), count(*), sum(cost)
    FROM sales_shipped GROUP BY 1, 2;
INSERT INTO sales_shipped_category_hours (hour, currency, category, lines, firsts, revenue, units, cost)
    SELECT substr(shipped_at, 1, 13), currency, category, count(*), sum(counts_category), sum(revenue), sum(units),
           sum(cost)
    FROM sales_shipped GROUP BY 1, 2, 3;
INSERT OR IGNORE INTO sales_dirty_orders SELECT order_id FROM sales_orders;
"""
