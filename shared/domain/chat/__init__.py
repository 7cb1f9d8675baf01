"""The chat kernel's storage and shapes: conversations, messages and their structured content."""
