"""Artifacts (SPEC §2.3): the kinds and their JSON Schemas, the checks a schema cannot express,
and the versioned store behind the artifacts API."""
