"""ConfigOps (issue 20): behaviour changes as patches: proposed, validated, dry-run, approved,
applied."""
