"""Benchmarks: `make bench` (python -m bench [NAME ...]). Figures go to docs/benchmarks.md."""
