"""The local API gateway: mounts each function at the routes template.yaml declares."""
