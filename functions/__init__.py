"""One package per function (DESIGN.md §1): `functions/<name>/main.py` defines `handler`."""
