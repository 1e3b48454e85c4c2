"""Benchmarks of the figures issue #2 asks for. Run each with `python -m benchmarks.<name>`."""
