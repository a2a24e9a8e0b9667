"""shopfloor components: KFP v2 steps that take ML models into production in plants."""

__version__ = "0.1.0"
