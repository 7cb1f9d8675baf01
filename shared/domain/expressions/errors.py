"""Errors of the policy expression language (DESIGN.md §6.6: one errors module per package)."""

from __future__ import annotations


class ExpressionError(ValueError):
    """An expression that cannot be compiled or evaluated; the message says why.

    A ValueError so callers validating policy data can treat it as bad input; the message is
    meant for the person or LLM that wrote the expression (e.g. "'**' is not allowed").
    """
