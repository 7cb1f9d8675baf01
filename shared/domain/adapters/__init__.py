"""LoRA adapters as versioned artifacts: files in the object store, records in Postgres."""
