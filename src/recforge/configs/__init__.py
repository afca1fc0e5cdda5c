"""Experiment files shipped with the package (the quick start)."""
