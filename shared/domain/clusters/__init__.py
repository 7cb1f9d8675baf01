"""Emergent domains (issue 20): clusters of feedback embeddings, their labels, and the
nearest ones to a turn."""
