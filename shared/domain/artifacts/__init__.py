"""Artifacts: the kinds and their JSON Schemas, the checks a schema cannot express,
and the versioned store behind the artifacts API."""
