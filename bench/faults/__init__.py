"""Fault harness (``python -m bench.faults``): see ``harness.py``."""
