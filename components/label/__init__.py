"""Label: join sensor readings with failure events into per-asset windows with failure and RUL targets."""
