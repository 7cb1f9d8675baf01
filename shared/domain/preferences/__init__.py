"""Feedback and what it turns into: preference events (one per user and answer), the persona
adapter with the user's instructions and controls, and the scheduling of training jobs (the
train function consumes them; `jobs` is its contract)."""
