"""Shared building blocks for every step: errors, artifact I/O, scenario config, data profiles.

Nothing here imports KFP, so the logic is testable and usable outside a pipeline.
"""
