"""shopfloor pipelines."""
