"""Summary tables for the reports, kept current in every write transaction,
and an index for the shipped basis.

Booked basis: ``sales_orders`` (one row per booked order: units, revenue,
discounts, cost), ``sales_customers`` (customer x currency over all
history), ``sales_products`` (product x day x currency),
``sales_categories`` (category x day x currency; its orders are the orders
with any product of the category) and ``sales_days`` (day x currency x
channel x salesperson).  Shipped basis: ``sales_shipped``, one row per
shipment line.  Collected basis: ``sales_collected``, one row per payment.

The triggers here only *mark* the orders a write changed
(``sales_dirty_orders``); ``salescrm.salesfacts.refresh`` recomputes those
orders' rows with the reports' own SQL before each write transaction
commits and moves the per-product, per-category and per-day totals by the
difference (``sales_order_products`` holds each order's part of them).  A report reads the
summaries only when nothing is marked, so a change made outside salescrm's
transactions is never read stale: the report falls back to the
line-by-line queries.

Booked means neither draft nor cancelled (``lifecycle.BOOKED``).
"""

SQL = """
CREATE INDEX shipments_shipped_at ON shipments(shipped_at);

CREATE TABLE sales_orders (
    order_id    INTEGER PRIMARY KEY,            -- orders.id (derived data: no foreign key)
    day         TEXT NOT NULL,                  -- orders.order_date
    currency    TEXT NOT NULL,
    customer_id INTEGER NOT NULL,
    channel     TEXT NOT NULL,
    salesperson TEXT,
    units       INTEGER NOT NULL,
    revenue     INTEGER NOT NULL,               -- cents
    discounts   INTEGER NOT NULL,
    cost        INTEGER NOT NULL,
    CHECK (units >= 0 AND discounts >= 0 AND cost >= 0),
    CHECK (abs(revenue) < 1000000000000000)  -- signed: a line's share of an order discount
) STRICT;
CREATE INDEX sales_orders_day ON sales_orders(day, currency, channel, salesperson, customer_id,
                                              units, revenue, discounts, cost);
CREATE INDEX sales_orders_customer ON sales_orders(customer_id, day, currency, channel, salesperson,
                                                   units, revenue, discounts, cost);
-- the order values in order (report stats over all history: no sort of a million values)
CREATE INDEX sales_orders_value ON sales_orders(currency, revenue, order_id);

CREATE TABLE sales_products (
    product_id INTEGER NOT NULL,
    day        TEXT NOT NULL,
    currency   TEXT NOT NULL,
    orders     INTEGER NOT NULL,                -- orders with the product that day
    units      INTEGER NOT NULL,
    revenue    INTEGER NOT NULL,
    discounts  INTEGER NOT NULL,
    cost       INTEGER NOT NULL,
    CHECK (units >= 0 AND discounts >= 0 AND cost >= 0 AND orders > 0),
    CHECK (abs(revenue) < 1000000000000000),  -- signed: a line's share of an order discount
    PRIMARY KEY (product_id, day, currency)
) STRICT, WITHOUT ROWID;

CREATE TABLE sales_categories (
    category   TEXT NOT NULL,                   -- '' for products without one
    day        TEXT NOT NULL,
    currency   TEXT NOT NULL,
    orders     INTEGER NOT NULL,                -- orders with the category that day
    units      INTEGER NOT NULL,
    revenue    INTEGER NOT NULL,
    discounts  INTEGER NOT NULL,
    cost       INTEGER NOT NULL,
    CHECK (units >= 0 AND discounts >= 0 AND cost >= 0 AND orders > 0),
    CHECK (abs(revenue) < 1000000000000000),  -- signed: a line's share of an order discount
    PRIMARY KEY (category, day, currency)
) STRICT, WITHOUT ROWID;

CREATE TABLE sales_days (
    day         TEXT NOT NULL,
    currency    TEXT NOT NULL,
    channel     TEXT NOT NULL,
    salesperson TEXT NOT NULL,                  -- '' for none
    orders      INTEGER NOT NULL,
    units       INTEGER NOT NULL,
    revenue     INTEGER NOT NULL,
    discounts   INTEGER NOT NULL,
    cost        INTEGER NOT NULL,
    CHECK (units >= 0 AND discounts >= 0 AND cost >= 0 AND orders > 0),
    CHECK (abs(revenue) < 1000000000000000),  -- signed: a line's share of an order discount
    PRIMARY KEY (day, currency, channel, salesperson)
) STRICT, WITHOUT ROWID;

-- shipped basis: one row per shipment line of a booked order, in time order
CREATE TABLE sales_shipped (
    shipped_at  TEXT NOT NULL,                  -- shipments.shipped_at (UTC)
    shipment_id INTEGER NOT NULL,
    line_id     INTEGER NOT NULL,
    order_id    INTEGER NOT NULL,
    currency    TEXT NOT NULL,
    customer_id INTEGER NOT NULL,
    channel     TEXT NOT NULL,
    salesperson TEXT,
    product_id  INTEGER NOT NULL,
    units       INTEGER NOT NULL,
    revenue     INTEGER NOT NULL,               -- the line's revenue carried by these units
    cost        INTEGER NOT NULL,
    counts_order INTEGER NOT NULL CHECK (counts_order IN (0, 1)),  -- the shipment's first line
    prev_at     TEXT,                           -- on that line: the order's previous shipment, if any
    CHECK (units >= 0 AND cost >= 0),
    CHECK (abs(revenue) < 1000000000000000),
    PRIMARY KEY (shipped_at, shipment_id, line_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX sales_shipped_order ON sales_shipped(order_id);

-- collected basis: one row per payment or refund of a booked order
CREATE TABLE sales_collected (
    paid_at     TEXT NOT NULL,                  -- payments.paid_at (UTC)
    payment_id  INTEGER NOT NULL,
    order_id    INTEGER NOT NULL,
    currency    TEXT NOT NULL,
    customer_id INTEGER NOT NULL,
    channel     TEXT NOT NULL,
    salesperson TEXT,
    amount      INTEGER NOT NULL,               -- cents; a refund is negative
    CHECK (amount <> 0),
    PRIMARY KEY (paid_at, payment_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX sales_collected_order ON sales_collected(order_id);

-- per customer and currency over all history (the customer reports without a
-- date range or order filters read these instead of every order)
CREATE TABLE sales_customers (
    customer_id INTEGER NOT NULL,
    currency    TEXT NOT NULL,
    orders      INTEGER NOT NULL,
    units       INTEGER NOT NULL,
    revenue     INTEGER NOT NULL,
    discounts   INTEGER NOT NULL,
    cost        INTEGER NOT NULL,
    first_day   TEXT NOT NULL,
    last_day    TEXT NOT NULL,
    CHECK (units >= 0 AND discounts >= 0 AND cost >= 0 AND orders > 0),
    CHECK (abs(revenue) < 1000000000000000),
    PRIMARY KEY (customer_id, currency)
) STRICT, WITHOUT ROWID;

-- each booked order's part of sales_products and sales_categories (its lines
-- of one product together), so that a change to an order moves the totals by
-- its difference instead of recomputing the day
CREATE TABLE sales_order_products (
    order_id   INTEGER NOT NULL,
    product_id INTEGER NOT NULL,
    day        TEXT NOT NULL,
    currency   TEXT NOT NULL,
    category   TEXT NOT NULL,                   -- the product's category when computed ('' for none)
    units      INTEGER NOT NULL,
    revenue    INTEGER NOT NULL,
    discounts  INTEGER NOT NULL,
    cost       INTEGER NOT NULL,
    CHECK (units >= 0 AND discounts >= 0 AND cost >= 0),
    CHECK (abs(revenue) < 1000000000000000),
    PRIMARY KEY (order_id, product_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE sales_dirty_orders (order_id INTEGER PRIMARY KEY) STRICT;

-- a product moved to another category: every order with it
CREATE TRIGGER sales_mark_product_category AFTER UPDATE OF category ON products
WHEN OLD.category IS NOT NEW.category
BEGIN
    INSERT OR IGNORE INTO sales_dirty_orders
        SELECT order_id FROM sales_order_products WHERE product_id = OLD.id;
END;

-- orders: a new or removed order; a change to what its sales figures depend on
CREATE TRIGGER sales_mark_order_insert AFTER INSERT ON orders
BEGIN
    INSERT OR IGNORE INTO sales_dirty_orders VALUES (NEW.id);
END;
CREATE TRIGGER sales_mark_order_delete AFTER DELETE ON orders
BEGIN
    INSERT OR IGNORE INTO sales_dirty_orders VALUES (OLD.id);
END;
CREATE TRIGGER sales_mark_order_update AFTER UPDATE ON orders
WHEN OLD.id IS NOT NEW.id OR OLD.order_date IS NOT NEW.order_date OR OLD.currency IS NOT NEW.currency
  OR OLD.customer_id IS NOT NEW.customer_id OR OLD.channel IS NOT NEW.channel
  OR OLD.salesperson IS NOT NEW.salesperson OR OLD.adjustment_cents IS NOT NEW.adjustment_cents
  OR OLD.returned_cents IS NOT NEW.returned_cents OR OLD.subtotal_cents IS NOT NEW.subtotal_cents
  OR (OLD.status IN ('draft', 'cancelled')) IS NOT (NEW.status IN ('draft', 'cancelled'))
BEGIN
    INSERT OR IGNORE INTO sales_dirty_orders VALUES (OLD.id), (NEW.id);
END;

-- order lines and the returns that credit them: their order
CREATE TRIGGER sales_mark_line_insert AFTER INSERT ON order_lines
BEGIN
    INSERT OR IGNORE INTO sales_dirty_orders VALUES (NEW.order_id);
END;
CREATE TRIGGER sales_mark_line_delete AFTER DELETE ON order_lines
BEGIN
    INSERT OR IGNORE INTO sales_dirty_orders VALUES (OLD.order_id);
END;
CREATE TRIGGER sales_mark_line_update AFTER UPDATE ON order_lines
WHEN OLD.order_id IS NOT NEW.order_id OR OLD.product_id IS NOT NEW.product_id
  OR OLD.line_no IS NOT NEW.line_no OR OLD.qty IS NOT NEW.qty OR OLD.returned_qty IS NOT NEW.returned_qty
  OR OLD.shipped_qty IS NOT NEW.shipped_qty OR OLD.net_cents IS NOT NEW.net_cents
  OR OLD.total_cents IS NOT NEW.total_cents OR OLD.discount_cents IS NOT NEW.discount_cents
  OR OLD.unit_cost IS NOT NEW.unit_cost
BEGIN
    INSERT OR IGNORE INTO sales_dirty_orders VALUES (OLD.order_id), (NEW.order_id);
END;
CREATE TRIGGER sales_mark_return_insert AFTER INSERT ON return_lines
BEGIN
    INSERT OR IGNORE INTO sales_dirty_orders SELECT order_id FROM order_lines WHERE id = NEW.line_id;
END;
CREATE TRIGGER sales_mark_return_delete AFTER DELETE ON return_lines
BEGIN
    INSERT OR IGNORE INTO sales_dirty_orders SELECT order_id FROM order_lines WHERE id = OLD.line_id;
END;
CREATE TRIGGER sales_mark_return_update AFTER UPDATE ON return_lines
WHEN OLD.line_id IS NOT NEW.line_id OR OLD.net_cents IS NOT NEW.net_cents
  OR OLD.total_cents IS NOT NEW.total_cents OR OLD.qty IS NOT NEW.qty
BEGIN
    INSERT OR IGNORE INTO sales_dirty_orders
        SELECT order_id FROM order_lines WHERE id IN (OLD.line_id, NEW.line_id);
END;

-- shipments and payments: their order
CREATE TRIGGER sales_mark_shipment_insert AFTER INSERT ON shipments
BEGIN
    INSERT OR IGNORE INTO sales_dirty_orders VALUES (NEW.order_id);
END;
CREATE TRIGGER sales_mark_shipment_update AFTER UPDATE ON shipments
WHEN OLD.order_id IS NOT NEW.order_id OR OLD.shipped_at IS NOT NEW.shipped_at OR OLD.id IS NOT NEW.id
BEGIN
    INSERT OR IGNORE INTO sales_dirty_orders VALUES (OLD.order_id), (NEW.order_id);
END;
CREATE TRIGGER sales_mark_shipment_delete AFTER DELETE ON shipments
BEGIN
    INSERT OR IGNORE INTO sales_dirty_orders VALUES (OLD.order_id);
END;
CREATE TRIGGER sales_mark_shipment_line_insert AFTER INSERT ON shipment_lines
BEGIN
    INSERT OR IGNORE INTO sales_dirty_orders SELECT order_id FROM shipments WHERE id = NEW.shipment_id;
END;
CREATE TRIGGER sales_mark_shipment_line_update AFTER UPDATE ON shipment_lines
BEGIN
    INSERT OR IGNORE INTO sales_dirty_orders
        SELECT order_id FROM shipments WHERE id IN (OLD.shipment_id, NEW.shipment_id);
END;
CREATE TRIGGER sales_mark_shipment_line_delete AFTER DELETE ON shipment_lines
BEGIN
    INSERT OR IGNORE INTO sales_dirty_orders SELECT order_id FROM shipments WHERE id = OLD.shipment_id;
END;
CREATE TRIGGER sales_mark_payment_insert AFTER INSERT ON payments
BEGIN
    INSERT OR IGNORE INTO sales_dirty_orders VALUES (NEW.order_id);
END;
CREATE TRIGGER sales_mark_payment_update AFTER UPDATE ON payments
BEGIN
    INSERT OR IGNORE INTO sales_dirty_orders VALUES (OLD.order_id), (NEW.order_id);
END;
CREATE TRIGGER sales_mark_payment_delete AFTER DELETE ON payments
BEGIN
    INSERT OR IGNORE INTO sales_dirty_orders VALUES (OLD.order_id);
END;

-- what is here already: everything, computed when this migration commits
INSERT INTO sales_dirty_orders SELECT id FROM orders;
"""
