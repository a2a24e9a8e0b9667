"""shopfloor.components: the KFP v2 steps (one folder per step: plain logic plus a thin ``@dsl.component``)."""
