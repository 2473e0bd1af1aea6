"""Ordered schema migrations.  Each module holds ``SQL``; the database's
``PRAGMA user_version`` is the number of migrations applied.  Never edit a
migration that has shipped: append a new one."""

MIGRATIONS = [
    "m0001_core",
    "m0002_orders",
    "m0003_imports",
    "m0004_plans",
    "m0005_sales_facts",
    "m0006_customer_indexes",
    "m0007_report_summaries",
    "m0008_lines_by_customer",
    "m0009_customer_figures",
]
