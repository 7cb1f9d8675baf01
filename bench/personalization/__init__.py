"""`make bench-personalization`: simulated users, each with a preference a checker decides,
teach the system through the public API; the figure is each user's satisfaction rate on
held-out prompts with the base and with their trained adapter (docs/benchmarks.md)."""
