"""The architect function: the model proposes ConfigOps patches from recent metrics."""
