"""The apply-patch queue function: an approved ConfigOps patch becomes an artifact version."""
