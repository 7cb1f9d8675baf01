"""The small kernel shared by every function (DESIGN.md §1)."""
