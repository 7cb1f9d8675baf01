"""The config function: ConfigOps patches, proposed, listed, decided and applied."""
