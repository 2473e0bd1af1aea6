"""Products, the stock ledger, orders and everything that happens to them.

Money is INTEGER cents with CHECK constraints; quantities are INTEGER.
Stock on hand and reserved are cached on ``products`` by a trigger on the
append-only ``stock_movements`` ledger (``db check`` recomputes them).
Order events, stock movements and invoices are append-only; invoice
numbers come from a gap-free sequence enforced by a trigger.
"""

SQL = """
CREATE TABLE products (
    id            INTEGER PRIMARY KEY,
    sku           TEXT NOT NULL,
    sku_key       TEXT NOT NULL UNIQUE,         -- casefolded: SKUs are unique case-insensitively
    name          TEXT NOT NULL,
    name_key      TEXT NOT NULL,                -- for search
    category      TEXT,
    kind          TEXT NOT NULL DEFAULT 'goods' CHECK (kind IN ('goods', 'service')),
    unit          TEXT NOT NULL DEFAULT 'pcs',
    unit_cost     INTEGER NOT NULL DEFAULT 0 CHECK (unit_cost >= 0),       -- cents
    list_price    INTEGER NOT NULL CHECK (list_price >= 0),                -- cents
    tax_rate      TEXT NOT NULL DEFAULT '0',    -- percent, a plain decimal ('13', '7.5')
    reorder_level INTEGER NOT NULL DEFAULT 0 CHECK (reorder_level >= 0),
    active        INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    on_hand       INTEGER NOT NULL DEFAULT 0 CHECK (on_hand >= 0),          -- ledger cache
    reserved      INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),         -- ledger cache
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    CHECK (kind = 'goods' OR (on_hand = 0 AND reserved = 0))
) STRICT;
CREATE INDEX products_category ON products(category);
CREATE INDEX products_name_key ON products(name_key);

CREATE TABLE orders (
    id               INTEGER PRIMARY KEY,
    number           TEXT NOT NULL UNIQUE,      -- SO-000123
    customer_id      INTEGER NOT NULL REFERENCES customers(id),
    status           TEXT NOT NULL DEFAULT 'draft' CHECK (status IN
                     ('draft', 'confirmed', 'partially_shipped', 'shipped', 'delivered',
                      'closed', 'cancelled')),
    channel          TEXT NOT NULL,
    salesperson      TEXT,
    order_date       TEXT NOT NULL,             -- ISO date
    currency         TEXT NOT NULL,
    tax_inclusive    INTEGER NOT NULL DEFAULT 0 CHECK (tax_inclusive IN (0, 1)),
    notes            TEXT,
    gross_cents      INTEGER NOT NULL DEFAULT 0 CHECK (gross_cents >= 0),     -- sum qty x price
    discount_cents   INTEGER NOT NULL DEFAULT 0 CHECK (discount_cents >= 0),  -- sum line discounts
    subtotal_cents   INTEGER NOT NULL DEFAULT 0 CHECK (subtotal_cents >= 0),  -- sum line nets (ex tax)
    tax_cents        INTEGER NOT NULL DEFAULT 0 CHECK (tax_cents >= 0),
    shipping_cents   INTEGER NOT NULL DEFAULT 0 CHECK (shipping_cents >= 0),
    adjustment_cents INTEGER NOT NULL DEFAULT 0,                              -- order level, signed
    total_cents      INTEGER NOT NULL DEFAULT 0 CHECK (total_cents >= 0),
    returned_cents   INTEGER NOT NULL DEFAULT 0 CHECK (returned_cents >= 0),  -- credited by returns
    paid_cents       INTEGER NOT NULL DEFAULT 0 CHECK (paid_cents >= 0),      -- payments - refunds
    due_date         TEXT,                      -- set at confirm from the payment terms
    confirmed_at     TEXT,
    shipped_at       TEXT,                      -- first shipment
    delivered_at     TEXT,
    closed_at        TEXT,
    cancelled_at     TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    CHECK (total_cents = subtotal_cents + tax_cents + shipping_cents + adjustment_cents),
    CHECK (returned_cents <= total_cents),
    -- never overpaid: the last line of defence behind the check in orders.pay
    CHECK (paid_cents <= total_cents - returned_cents)
) STRICT;
CREATE INDEX orders_date ON orders(order_date);
CREATE INDEX orders_status_date ON orders(status, order_date);
CREATE INDEX orders_customer_date ON orders(customer_id, order_date);
CREATE INDEX orders_channel_date ON orders(channel, order_date);
CREATE INDEX orders_salesperson_date ON orders(salesperson, order_date);
CREATE INDEX orders_due ON orders(due_date) WHERE due_date IS NOT NULL;
CREATE INDEX orders_total ON orders(total_cents - returned_cents);     -- order list --sort total
CREATE INDEX orders_unpaid_date ON orders(order_date)
    WHERE status NOT IN ('draft', 'cancelled') AND paid_cents < total_cents - returned_cents;

CREATE TABLE order_lines (
    id             INTEGER PRIMARY KEY,
    order_id       INTEGER NOT NULL REFERENCES orders(id),
    line_no        INTEGER NOT NULL CHECK (line_no > 0),
    product_id     INTEGER NOT NULL REFERENCES products(id),
    sku            TEXT NOT NULL,               -- as at the time of sale
    description    TEXT NOT NULL,
    qty            INTEGER NOT NULL CHECK (qty > 0),
    unit_price     INTEGER NOT NULL CHECK (unit_price >= 0),  -- cents, as entered (ex or incl tax)
    unit_cost      INTEGER NOT NULL DEFAULT 0 CHECK (unit_cost >= 0),
    discount_pct   TEXT,                        -- percent as entered, or NULL
    gross_cents    INTEGER NOT NULL CHECK (gross_cents >= 0),     -- qty x unit_price
    discount_cents INTEGER NOT NULL CHECK (discount_cents >= 0 AND discount_cents <= gross_cents),
    tax_rate       TEXT NOT NULL,
    net_cents      INTEGER NOT NULL CHECK (net_cents >= 0),       -- ex tax
    tax_cents      INTEGER NOT NULL CHECK (tax_cents >= 0),
    total_cents    INTEGER NOT NULL CHECK (total_cents >= 0),     -- incl tax
    shipped_qty    INTEGER NOT NULL DEFAULT 0 CHECK (shipped_qty >= 0 AND shipped_qty <= qty),
    returned_qty   INTEGER NOT NULL DEFAULT 0 CHECK (returned_qty >= 0 AND returned_qty <= shipped_qty),
    CHECK (gross_cents = qty * unit_price),
    CHECK (net_cents + tax_cents = total_cents),
    UNIQUE (order_id, line_no)
) STRICT;
CREATE INDEX order_lines_product ON order_lines(product_id);

CREATE TABLE order_adjustments (
    id           INTEGER PRIMARY KEY,
    order_id     INTEGER NOT NULL REFERENCES orders(id),
    kind         TEXT NOT NULL CHECK (kind IN ('discount', 'surcharge')),
    description  TEXT NOT NULL,
    percent      TEXT,                          -- of the lines' total, or NULL for an amount
    amount_cents INTEGER NOT NULL,              -- signed: a discount is negative
    CHECK ((kind = 'discount' AND amount_cents <= 0) OR (kind = 'surcharge' AND amount_cents >= 0))
) STRICT;
CREATE INDEX order_adjustments_order ON order_adjustments(order_id);

CREATE TABLE stock_movements (
    id         INTEGER PRIMARY KEY,
    product_id INTEGER NOT NULL REFERENCES products(id),
    kind       TEXT NOT NULL CHECK (kind IN ('receive', 'adjust', 'reserve', 'release', 'ship', 'return')),
    qty        INTEGER NOT NULL CHECK (qty <> 0 AND (kind = 'adjust' OR qty > 0)),
    order_id   INTEGER REFERENCES orders(id),
    line_id    INTEGER REFERENCES order_lines(id),
    reason     TEXT,
    at         TEXT NOT NULL,
    os_user    TEXT NOT NULL
) STRICT;
CREATE INDEX stock_movements_product ON stock_movements(product_id, id);
CREATE INDEX stock_movements_order ON stock_movements(order_id) WHERE order_id IS NOT NULL;
CREATE TRIGGER stock_movements_apply AFTER INSERT ON stock_movements
BEGIN
    UPDATE products SET
        on_hand = on_hand + CASE NEW.kind
            WHEN 'receive' THEN NEW.qty WHEN 'adjust' THEN NEW.qty
            WHEN 'return' THEN NEW.qty WHEN 'ship' THEN -NEW.qty ELSE 0 END,
        reserved = reserved + CASE NEW.kind
            WHEN 'reserve' THEN NEW.qty WHEN 'release' THEN -NEW.qty
            WHEN 'ship' THEN -NEW.qty ELSE 0 END
    WHERE id = NEW.product_id;
END;
CREATE TRIGGER stock_movements_no_update BEFORE UPDATE ON stock_movements
BEGIN SELECT RAISE(ABORT, 'the stock ledger is append-only'); END;
CREATE TRIGGER stock_movements_no_delete BEFORE DELETE ON stock_movements
BEGIN SELECT RAISE(ABORT, 'the stock ledger is append-only'); END;

CREATE TABLE shipments (
    id           INTEGER PRIMARY KEY,
    order_id     INTEGER NOT NULL REFERENCES orders(id),
    shipped_at   TEXT NOT NULL,
    carrier      TEXT,
    tracking     TEXT,
    delivered_at TEXT,
    created_at   TEXT NOT NULL
) STRICT;
CREATE INDEX shipments_order ON shipments(order_id);

CREATE TABLE shipment_lines (
    shipment_id INTEGER NOT NULL REFERENCES shipments(id),
    line_id     INTEGER NOT NULL REFERENCES order_lines(id),
    qty         INTEGER NOT NULL CHECK (qty > 0),
    PRIMARY KEY (shipment_id, line_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX shipment_lines_line ON shipment_lines(line_id);

-- A return credits the order: amount_cents is the returned lines' value plus
-- their share of order-level adjustments (shipping is not refunded).
CREATE TABLE returns (
    id           INTEGER PRIMARY KEY,
    order_id     INTEGER NOT NULL REFERENCES orders(id),
    returned_at  TEXT NOT NULL,
    reason       TEXT,
    amount_cents INTEGER NOT NULL CHECK (amount_cents >= 0),
    created_at   TEXT NOT NULL
) STRICT;
CREATE INDEX returns_order ON returns(order_id);

CREATE TABLE return_lines (
    return_id   INTEGER NOT NULL REFERENCES returns(id),
    line_id     INTEGER NOT NULL REFERENCES order_lines(id),
    qty         INTEGER NOT NULL CHECK (qty > 0),
    net_cents   INTEGER NOT NULL CHECK (net_cents >= 0),
    tax_cents   INTEGER NOT NULL CHECK (tax_cents >= 0),
    total_cents INTEGER NOT NULL CHECK (total_cents >= 0),
    CHECK (net_cents + tax_cents = total_cents),
    PRIMARY KEY (return_id, line_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX return_lines_line ON return_lines(line_id);

CREATE TABLE payments (
    id           INTEGER PRIMARY KEY,
    order_id     INTEGER NOT NULL REFERENCES orders(id),
    kind         TEXT NOT NULL CHECK (kind IN ('payment', 'refund')),
    amount_cents INTEGER NOT NULL,               -- a refund is negative
    method       TEXT NOT NULL,
    paid_at      TEXT NOT NULL,
    reference    TEXT,
    return_id    INTEGER REFERENCES returns(id),
    created_at   TEXT NOT NULL,
    CHECK ((kind = 'payment' AND amount_cents > 0) OR (kind = 'refund' AND amount_cents < 0))
) STRICT;
CREATE INDEX payments_order ON payments(order_id);
CREATE INDEX payments_paid_at ON payments(paid_at);
CREATE TRIGGER payments_no_update BEFORE UPDATE ON payments
BEGIN SELECT RAISE(ABORT, 'payments are append-only: record a refund instead'); END;
CREATE TRIGGER payments_no_delete BEFORE DELETE ON payments
BEGIN SELECT RAISE(ABORT, 'payments are append-only: record a refund instead'); END;

CREATE TABLE order_events (
    id          INTEGER PRIMARY KEY,
    order_id    INTEGER NOT NULL REFERENCES orders(id),
    at          TEXT NOT NULL,
    os_user     TEXT NOT NULL,
    kind        TEXT NOT NULL,                  -- create, line, edit, confirm, ship, pay, ...
    from_status TEXT,
    to_status   TEXT,
    detail      TEXT
) STRICT;
CREATE INDEX order_events_order ON order_events(order_id, id);
CREATE TRIGGER order_events_no_update BEFORE UPDATE ON order_events
BEGIN SELECT RAISE(ABORT, 'order events are append-only'); END;
CREATE TRIGGER order_events_no_delete BEFORE DELETE ON order_events
BEGIN SELECT RAISE(ABORT, 'order events are append-only'); END;

-- Invoice numbers: a gap-free sequence (each seq is the previous + 1), one per order.
CREATE TABLE invoices (
    id          INTEGER PRIMARY KEY,
    seq         INTEGER NOT NULL UNIQUE CHECK (seq > 0),
    number      TEXT NOT NULL UNIQUE,
    order_id    INTEGER NOT NULL UNIQUE REFERENCES orders(id),
    issued_at   TEXT NOT NULL,                  -- ISO date
    due_date    TEXT,
    total_cents INTEGER NOT NULL CHECK (total_cents >= 0),
    tax_cents   INTEGER NOT NULL CHECK (tax_cents >= 0),
    os_user     TEXT NOT NULL
) STRICT;
CREATE TRIGGER invoices_gap_free BEFORE INSERT ON invoices
WHEN NEW.seq <> (SELECT coalesce(max(seq), 0) + 1 FROM invoices)
BEGIN SELECT RAISE(ABORT, 'invoice numbers must be gap-free'); END;
CREATE TRIGGER invoices_no_update BEFORE UPDATE ON invoices
BEGIN SELECT RAISE(ABORT, 'an issued invoice cannot change'); END;
CREATE TRIGGER invoices_no_delete BEFORE DELETE ON invoices
BEGIN SELECT RAISE(ABORT, 'an issued invoice cannot be deleted'); END;
"""
