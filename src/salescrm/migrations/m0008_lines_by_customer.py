"""Each line's customer, channel and salesperson on its summary row, and an
index of every customer's lines in value order, for ``report stats`` of a
line field by customer: fifty thousand customers' three million lines
stream off the index, each customer's values already in order, with what
the filters need (days, channel, salesperson, product) in the entries,
instead of every line being joined to its order and sorted by customer.

``sales_lines`` (m0007) is rebuilt with the new columns, filled from the
orders (a marked order's rows are recomputed by the refresh that follows,
as always); its indexes are made again."""

SQL = """
CREATE TABLE sales_lines_m0008 (
    order_id    INTEGER NOT NULL,               -- orders.id (derived data: no foreign key)
    line_no     INTEGER NOT NULL,               -- order_lines.line_no
    day         TEXT NOT NULL,                  -- orders.order_date
    currency    TEXT NOT NULL,
    product_id  INTEGER NOT NULL,
    value       INTEGER NOT NULL,               -- the line's booked revenue (cents)
    qty         INTEGER NOT NULL,               -- its kept units
    customer_id INTEGER NOT NULL,               -- the order's
    channel     TEXT NOT NULL,
    salesperson TEXT,
    CHECK (qty > 0),
    CHECK (abs(value) < 1000000000000000),     -- signed: a share of an order discount
    -- kept in day order: a period's lines are one range
    PRIMARY KEY (currency, day, order_id, line_no)
) STRICT, WITHOUT ROWID;
INSERT INTO sales_lines_m0008 (order_id, line_no, day, currency, product_id, value, qty, customer_id, channel,
                               salesperson)
    SELECT l.order_id, l.line_no, l.day, l.currency, l.product_id, l.value, l.qty, o.customer_id, o.channel,
           o.salesperson
    FROM sales_lines l JOIN orders o ON o.id = l.order_id
    ORDER BY l.currency, l.day, l.order_id, l.line_no;
DROP TABLE sales_lines;
ALTER TABLE sales_lines_m0008 RENAME TO sales_lines;
-- m0007's indexes, as they were
CREATE INDEX sales_lines_order ON sales_lines(order_id, line_no);
CREATE INDEX sales_lines_value ON sales_lines(currency, value);
CREATE INDEX sales_lines_qty ON sales_lines(currency, qty);
CREATE INDEX sales_lines_product ON sales_lines(currency, product_id, qty, value);
-- per customer, the values in order, ties in (order, line) order: the first
-- entry of a customer's value is the lowest line holding it, the last the
-- highest; with what the filters need
CREATE INDEX sales_lines_customer ON sales_lines(currency, customer_id, value, order_id, line_no, qty, product_id,
                                                 channel, salesperson);
"""
