"""Benchmarks (`make bench`): figures as percentiles and ratios. Never run inside `make test`."""
