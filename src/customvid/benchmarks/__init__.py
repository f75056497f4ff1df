"""Benchmarks that measure the project's own instruments (e.g. the world probe) against ground truth."""
