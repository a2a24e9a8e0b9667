"""Train: a Keras model on labelled sensor windows, with normalization inside the model."""
