"""Connect shared secrets at rest: AES-256-GCM under a key derived from the connector's secret key.

The format mirrors the backend's vault (`backend/vault.py`): HKDF-SHA256 (salt "keepstone", info = the
purpose) turns the secret key into the AES key; a sealed value is base64(12-byte nonce + ciphertext +
tag), with the tenant's cloudId as associated data, so a sealed secret copied onto another tenant's row
does not open. Stored values carry a version prefix, `aesgcm1:`, so that plaintext rows written before
sealing existed are told apart and sealed (see `TenantStore`).
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "aesgcm1:"
PURPOSE = b"connect-shared-secrets"


class SealError(ValueError):
    """A sealed value does not open: another key, another tenant, or damaged."""


class Sealer:
    """Seal and open short secrets bound to a context (the tenant's cloudId)."""

    def __init__(self, secret_key: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"keepstone", info=PURPOSE).derive(
            secret_key.encode()
        )
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return PREFIX + base64.b64encode(nonce + sealed).decode()

    def open(self, sealed: str, context: str) -> str:
        if not is_sealed(sealed):
            raise SealError("not a sealed value")
        try:
            raw = base64.b64decode(sealed[len(PREFIX) :], validate=True)
            return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except (InvalidTag, binascii.Error, ValueError):
            raise SealError("the stored secret cannot be opened with this key for this tenant") from None


def is_sealed(value: str) -> bool:
    return value.startswith(PREFIX)
