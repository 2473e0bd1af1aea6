"""salescrm: a terminal CRM for sales work over one local SQLite file."""

__version__ = "0.1.0"
