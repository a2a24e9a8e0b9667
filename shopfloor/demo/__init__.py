"""Deterministic demo data generators for the shopfloor scenarios."""
