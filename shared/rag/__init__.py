"""Grounding (SPEC §2.5, §17.3-17.4): chunking parsed files, retrieval, grounded prompts."""
