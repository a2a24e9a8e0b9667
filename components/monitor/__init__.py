"""Monitor: drift and model performance from payload logs against the training reference, and the retrain decision."""
