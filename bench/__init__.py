"""Benchmarks, run as scripts: `python bench/rules.py` (see bench/README.md)."""
