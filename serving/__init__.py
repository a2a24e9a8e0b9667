"""Serving: KServe predictors, explainers and payload logging for shopfloor models."""
