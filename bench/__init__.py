"""Benchmarks (`make bench`): each `bench/bench_*.py` measures side by side and reports ratios, never asserts."""
