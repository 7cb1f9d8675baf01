"""Local infrastructure: the embedded stack, the gateway, the queue dispatcher, `make run`."""
