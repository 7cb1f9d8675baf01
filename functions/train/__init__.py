"""The train function: a user's persona LoRA from their feedback (issue 18; docs/model.md)."""
