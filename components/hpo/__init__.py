"""HPO: Optuna drives the search; model builders write their space once in keras-tuner's ``hp`` API."""
