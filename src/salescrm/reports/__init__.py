"""Reports and analytics: read-only, aggregated in SQL.  No Typer, no Rich.

``common`` holds the one revenue definition, periods, filters and the
whitelists; each other module answers one family of questions and returns
plain rows (dicts of ints, text, ``Decimal``) for ``salescrm.output``.
"""
