"""Explain: global and per-window attributions of the failure risk, as HTML plots and a Markdown summary."""
