"""Training filters (SPEC §15.1): a content check decides whether an event may ever be trained
on. A refused event is still stored (the user sees it, and may delete or replace it) but no
job takes it, and its notes do not become an instruction.

`ContentCheck` is the port; `RuleContentCheck` the default: it refuses personal identifiers
(the PII scrubber's e-mail, IBAN, card, SSN and phone patterns, each with its checksum or shape
test) and credentials (private keys, cloud and API keys, bearer tokens and JWTs, `password=`
assignments), which an adapter must never learn to reproduce, plus any configured blocked
terms. A deployment plugs in another check (a moderation model, say) through `Services`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Protocol

from shared.domain.rag.pii import scrub

# Personal identifiers an adapter must not learn; IPv4 addresses are left alone (networking
# answers are full of them and they rarely name a person).
PERSONAL = frozenset({"EMAIL", "IBAN", "CARD", "SSN", "PHONE"})

_CREDENTIALS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("private key", re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----")),
    ("cloud access key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("API key", re.compile(r"\b(?:sk|pk|rk)[-_](?:live[-_]|test[-_]|proj[-_])?[A-Za-z0-9]{20,}")),
    ("access token", re.compile(r"\b(?:ghp|gho|ghs|ghu|glpat|xox[abpr])[-_][A-Za-z0-9-]{16,}")),
    ("JWT", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("password", re.compile(r"(?i)\b(?:password|passwd|pwd|secret)\s*[:=]\s*\S{4,}")),
)


class ContentCheck(Protocol):
    async def refuse(self, text: str) -> str | None:
        """Why `text` must not be trained on, or None when it may be."""
        ...


class RuleContentCheck:
    def __init__(self, *, blocked_terms: Iterable[str] = ()):
        terms = sorted({t.strip().lower() for t in blocked_terms if t.strip()})
        self._blocked = (
            re.compile(r"(?<!\w)(?:" + "|".join(re.escape(t) for t in terms) + r")(?!\w)", re.I)
            if terms
            else None
        )

    async def refuse(self, text: str) -> str | None:
        return refusal(text, self._blocked)


def refusal(text: str, blocked: re.Pattern[str] | None = None) -> str | None:
    """The rule check itself, synchronous (what `RuleContentCheck.refuse` answers)."""
    if not text:
        return None
    _, found = scrub(text)
    personal = sorted(PERSONAL & found.keys())
    if personal:
        return "personal data (" + ", ".join(label.lower() for label in personal) + ")"
    for name, pattern in _CREDENTIALS:
        if pattern.search(text):
            return f"credential ({name})"
    if blocked is not None and blocked.search(text):
        return "blocked term"
    return None


async def check_event(check: ContentCheck, texts: Mapping[str, str | None]) -> str | None:
    """The first refusal among an event's texts (`{"message": ..., "correction": ...}`), as
    `"<which>: <why>"`, or None when all may be trained on."""
    for which, text in texts.items():
        if text:
            why = await check.refuse(text)
            if why:
                return f"{which}: {why}"[:300]
    return None
