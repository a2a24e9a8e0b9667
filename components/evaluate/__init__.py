"""Evaluate: test-split metrics, a quality gate that decides deployability, a report and a model card."""
