"""Anomaly detection: a window autoencoder trained on normal operation, alarming on reconstruction error."""
