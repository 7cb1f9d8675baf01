"""The preferences function: feedback, the persona's instructions, learning controls."""
