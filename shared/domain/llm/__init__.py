"""LLM backends: one interface for every function that needs the model or embeddings."""
