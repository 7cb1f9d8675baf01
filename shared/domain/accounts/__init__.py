"""Accounts, passwords, tokens and sessions: the perimeter every function relies on."""
