"""The artifacts function: versioned, validated workflows, policies, tools and more."""
