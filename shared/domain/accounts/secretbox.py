"""Encryption of small secrets at rest (TOTP seeds): AES-256-GCM from `cryptography`, the key
derived from AUTH_ENCRYPTION_KEY with HKDF per purpose, the owner's id bound as associated
data so a ciphertext copied to another user's row does not decrypt."""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shared.platform.settings import Settings

_VERSION = b"v1"


def _cipher(settings: Settings, purpose: str) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(
        settings.auth_encryption_key.get_secret_value().encode()
    )
    return AESGCM(key)


def seal(settings: Settings, purpose: str, plaintext: str, *, owner: str) -> str:
    nonce = os.urandom(12)
    sealed = _cipher(settings, purpose).encrypt(nonce, plaintext.encode(), owner.encode())
    return (_VERSION + b":" + base64.b64encode(nonce + sealed)).decode()


def open_sealed(settings: Settings, purpose: str, token: str, *, owner: str) -> str:
    version, _, payload = token.encode().partition(b":")
    if version != _VERSION:
        raise ValueError("unknown sealed-secret version")
    raw = base64.b64decode(payload)
    return _cipher(settings, purpose).decrypt(raw[:12], raw[12:], owner.encode()).decode()
