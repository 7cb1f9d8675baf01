"""Passwords: a length-first policy (NIST SP 800-63B) and argon2id via argon2-cffi, rehashed
at login when the parameters change."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from shared.platform.errors import ValidationError

MIN_LENGTH, MAX_LENGTH = 10, 256
# The most common passwords that pass the length rule; a breached-password list belongs here.
_COMMON = frozenset(
    {"1234567890", "0123456789", "qwertyuiop", "password123", "password1234", "iloveyou123",
     "abcdefghij", "1111111111", "qwerty123456", "letmein1234"}
)  # fmt: skip

HASHER = PasswordHasher()  # argon2id with argon2-cffi's RFC 9106 low-memory profile


def check_policy(password: str, email: str) -> None:
    problems = []
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        problems.append(f"a password has {MIN_LENGTH} to {MAX_LENGTH} characters")
    if password.lower() in _COMMON or len(set(password)) < 4:
        problems.append("this password is too easy to guess")
    local = email.split("@", 1)[0].lower()
    if len(local) >= 4 and local in password.lower():
        problems.append("a password must not contain the email's name")
    if problems:
        raise ValidationError("password refused", details={"password": problems})


def hash_password(password: str, hasher: PasswordHasher = HASHER) -> str:
    return hasher.hash(password)


def verify_password(
    stored: str | None, password: str, hasher: PasswordHasher = HASHER
) -> tuple[bool, str | None]:
    """(matches, new hash when the stored one used other parameters)."""
    if not stored:
        # Same cost as a real check, so a missing account does not answer faster.
        hasher.hash(password)
        return False, None
    try:
        hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, None
    return True, hasher.hash(password) if hasher.check_needs_rehash(stored) else None
