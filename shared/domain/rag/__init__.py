"""Grounding: chunking parsed files, retrieval, grounded prompts."""
