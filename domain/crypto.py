"""Encryption at rest for the most sensitive fields (national ID, bank account).

Each tenant has its own key, derived with HKDF from the process secret and the tenant's
id, so a row copied into another tenant's schema cannot be read there. Fernet gives
authenticated encryption (AES-128-CBC with HMAC-SHA256).
"""

from __future__ import annotations

import base64
import functools
import uuid

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from renshi.settings import get_settings


@functools.lru_cache(maxsize=1024)
def _fernet(secret: str, tenant_id: uuid.UUID) -> Fernet:
    key = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=tenant_id.bytes,
        info=b"renshi field encryption v1",
    ).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def _for(tenant_id: uuid.UUID) -> Fernet:
    return _fernet(get_settings().secret_key.get_secret_value(), tenant_id)


def encrypt(tenant_id: uuid.UUID, plaintext: str | None) -> bytes | None:
    if plaintext is None or plaintext == "":
        return None
    return _for(tenant_id).encrypt(plaintext.encode())


def decrypt(tenant_id: uuid.UUID, ciphertext: bytes | None) -> str | None:
    """The plaintext, or None when absent. Raises `InvalidToken` if tampered with."""
    if ciphertext is None:
        return None
    return _for(tenant_id).decrypt(bytes(ciphertext)).decode()


__all__ = ["InvalidToken", "decrypt", "encrypt"]
