"""Scrubbing personal data from text before it is chunked and embedded (the `pii_scrub` option).

Each kind of identifier is replaced by a fixed label. Precision matters more than recall: a
false positive silently destroys a fact the user wanted to ask about (a date, a version, an
order total), so anything with a checksum (cards, IBANs) must pass it, and phone numbers need
a phone-like shape, not merely enough digits.

The passes run in a fixed order, most specific first, so a longer identifier is labelled
whole before a looser pattern can claim part of it: an IBAN's digits could pass for a card, a
card's for a phone number. Labels hold no digits, so later passes cannot match inside them.
"""

from __future__ import annotations

import re
from collections.abc import Callable

LABELS = ("EMAIL", "IBAN", "CARD", "SSN", "IP", "PHONE")

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
)
# Country code, check digits, then up to 30 letters/digits, optionally in groups of four.
_IBAN = re.compile(r"(?<![\w-])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?!\w)")
# Card layouts: 4-4-4-4(-3), 4-6-5 (Amex), 4-6-4 (Diners), or unbroken; one separator kind.
# Not right after "+" (an international phone number) or "DE89 " (a mistyped IBAN).
_CARD = re.compile(
    r"(?<![\w+-])(?<![A-Z]{2}\d{2} )\d{4}([ -]?)\d{4,6}\1\d{4,5}(?:\1\d{1,4}){0,2}(?!\w)(?!-\d)"
)
# Never-issued areas (000, 666, 9xx), groups (00) and serials (0000) are left alone.
_SSN = re.compile(r"(?<![\w-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
# Not part of a longer dotted run such as "1.2.3.4.5" or "v1.2.3.4".
_IPV4 = re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?!\w)(?!\.\d)")
_PHONE = re.compile(
    r"(?<![\w+./-])(?:"
    # international: +CC or 00CC then groups, e.g. +44 20 7946 0958, +1 (555) 123-4567,
    # +44 (0)20 7946 0958. Possessive (`++`, `{0,6}+`): a digit run splits only one way, so a
    # long run cannot make the engine try every split, and at most 6 groups keep a match short.
    r"(?:\+|00)[1-9]\d*+(?:[ .-]?\(\d++\)\d*+|[ .-]\d++){0,6}+"
    # national with a trunk 0 (area codes never start 0), e.g. 020 7946 0958, (030) 123456
    r"|(?:\(0[1-9]\d{0,3}\)|0[1-9]\d{0,3})[ /-]?\d{2,8}(?:[ -]\d{2,8}){0,3}"
    # North American, e.g. (555) 123-4567, 555.123.4567, 1-800-555-0199
    r"|(?:1[ .-])?(?:\(\d{3}\) ?|\d{3}[.-])\d{3}[.-]\d{4}"
    r")(?!\w)(?!-\d)"
)
# Dates a national phone pattern could mistake: 05 01 2024, 01-05-2024, 01/05/24.
_DATE_LIKE = re.compile(r"\d{1,2}([ ./-])\d{1,2}\1(?:\d{2}|\d{4})")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _card_ok(candidate: str) -> bool:
    digits = re.sub(r"\D", "", candidate)
    return 13 <= len(digits) <= 19 and _luhn(digits)


def _iban_ok(candidate: str) -> bool:
    iban = candidate.replace(" ", "")
    if not 15 <= len(iban) <= 34:
        return False
    # ISO 13616: move the first four characters to the end, letters become 10..35, mod 97 == 1.
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _phone_ok(candidate: str) -> bool:
    digits = sum(ch.isdigit() for ch in candidate)
    # E.164 allows at most 15 digits; fewer than 8 is an extension, a PIN or a quantity.
    if not 8 <= digits <= 15:
        return False
    # A number starting 0 must show a separator: an unbroken 0123456789 is as likely an order
    # or account number. "+" and North American shapes are phone-like already.
    if candidate[0] in "0(" and not re.search(r"[ ./)-]", candidate):
        return False
    return not _DATE_LIKE.fullmatch(candidate)


def _longest_valid(candidate: str, ok: Callable[[str], bool]) -> int:
    """Length of the longest prefix of `candidate` that ends at a group boundary and passes
    `ok`; 0 if none. A greedy match can swallow a following number ("4111 1111 1111 1111
    2024"), so shorter prefixes get a chance before the whole candidate is given up."""
    ends = [m.start() for m in re.finditer(r"[ -]", candidate)] + [len(candidate)]
    return next((end for end in reversed(ends) if ok(candidate[:end])), 0)


def _replacer(
    label: str, ok: Callable[[str], bool] | None, counts: dict[str, int]
) -> Callable[[re.Match[str]], str]:
    def replace(match: re.Match[str]) -> str:
        found = match.group(0)
        end = len(found) if ok is None else _longest_valid(found, ok)
        if not end:
            return found
        counts[label] += 1
        return f"[{label}]{found[end:]}"

    return replace


_PASSES: tuple[tuple[str, re.Pattern[str], Callable[[str], bool] | None], ...] = (
    ("EMAIL", _EMAIL, None),
    ("IBAN", _IBAN, _iban_ok),
    ("CARD", _CARD, _card_ok),
    ("SSN", _SSN, None),
    ("IP", _IPV4, None),
    ("PHONE", _PHONE, _phone_ok),
)


def scrub(text: str) -> tuple[str, dict[str, int]]:
    """`text` with personal data replaced by labels ("[EMAIL]", "[PHONE]", "[CARD]", "[SSN]",
    "[IBAN]", "[IP]"), and how many of each were replaced: only labels found, so an empty
    dict means nothing was scrubbed."""
    counts = dict.fromkeys(LABELS, 0)
    for label, pattern, ok in _PASSES:
        text = pattern.sub(_replacer(label, ok, counts), text)
    return text, {label: n for label, n in counts.items() if n}
