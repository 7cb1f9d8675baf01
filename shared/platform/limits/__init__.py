"""Rate limits (Redis token buckets) and per-user concurrency caps."""
