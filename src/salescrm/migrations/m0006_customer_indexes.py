"""Indexes for ``customer show`` on customers with long histories: the five
latest ratings and the rating sum read from one index, without sorting every
rating; the open tasks of one customer in due order."""

SQL = """
CREATE INDEX ratings_customer_at ON ratings(customer_id, at, id, score);
DROP INDEX ratings_customer;  -- a prefix of the new one
CREATE INDEX tasks_customer_open ON tasks(customer_id, due, id) WHERE done_at IS NULL;
"""
