"""How a function is built: route tables, the envelope, request ids, logs, the ASGI app."""
