"""Each customer's figures of ``report stats`` over all history, kept: for
``report stats --by customer`` with no filter but the customer's own (its
id, its region) and no date range, fifty thousand customers' figures are
then read as fifty thousand rows, instead of computed from their million
orders and three million lines on every run.

``sales_customer_figures`` holds, per currency, field and customer, the
figures as ``report stats`` computes them (a quantity's in hundredths), the
(order, line) keys of the extremes and their orders' numbers (a trigger
marks the customer when a number changes); a customer with very many orders
has its key alone, and the report computes its figures (each write would
recompute them all).  ``salescrm.salesfacts.refresh`` recomputes a
customer's rows whenever one of its summary rows changes, and those of the
customers marked in ``sales_dirty_customers``: here, every customer with a
booked order, so the upgrade fills the table (in Python: percentiles and an
exact integer square root are not SQL's)."""

SQL = """
CREATE TABLE sales_customer_figures (
    currency    TEXT NOT NULL,
    field       TEXT NOT NULL CHECK (field IN ('order_value', 'line_value', 'quantity', 'margin')),
    customer_id INTEGER NOT NULL,               -- customers.id (derived data: no foreign key)
    -- the figures: all NULL when not kept (more than reports.stats.KEEP_ORDERS orders, or a figure past
    -- 64 bits): the report computes them afresh
    count       INTEGER CHECK (count > 0),
    sum         INTEGER,
    mean        INTEGER,                        -- money in cents, a quantity in hundredths
    median      INTEGER,
    p25         INTEGER,
    p75         INTEGER,
    p90         INTEGER,
    stdev       INTEGER,                        -- also NULL for a single value
    min         INTEGER,
    min_key     INTEGER,                        -- the lowest (order, line) holding the minimum
    min_number  TEXT,                           -- and its order's number
    max         INTEGER,
    max_key     INTEGER,                        -- the highest holding the maximum
    max_number  TEXT,
    -- a field's customers together, in customer order: one range for the report
    PRIMARY KEY (currency, field, customer_id)
) STRICT, WITHOUT ROWID;
-- a customer's rows, rewritten when its orders change
CREATE INDEX sales_customer_figures_customer ON sales_customer_figures(customer_id);
-- customers whose figures are to be recomputed by the next refresh
CREATE TABLE sales_dirty_customers (
    customer_id INTEGER PRIMARY KEY
) STRICT;
INSERT INTO sales_dirty_customers SELECT DISTINCT customer_id FROM sales_customers;
-- an order's number is kept with its customer's figures: a new number (privacy forget rewrites it, or another
-- tool) marks the customer (the reports do not read the kept figures while it is marked)
CREATE TRIGGER sales_mark_order_number AFTER UPDATE OF number ON orders
WHEN OLD.number IS NOT NEW.number
BEGIN
    INSERT OR IGNORE INTO sales_dirty_customers VALUES (OLD.customer_id);
    INSERT OR IGNORE INTO sales_dirty_customers VALUES (NEW.customer_id);
END;
"""
