"""The one-machine application: the ``shopfloor`` command line and KFP's local runner around the pipelines."""
