"""Database access: the pool, the migration runner, one module per table group."""
