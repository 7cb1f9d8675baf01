"""The inference service: the one long-lived container (DESIGN.md §1). Not a Lambda, not
mounted in the gateway: `python -m functions.inference` on 127.0.0.1:8090."""
