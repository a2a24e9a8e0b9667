"""Predictive maintenance: a window model that predicts failure within a horizon and remaining useful life."""
