"""Ingest: read sensor and event tables, validate them against the scenario's schema, write Parquet + profile."""
