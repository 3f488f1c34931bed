"""Secrets at rest: Jira API tokens sealed with AES-256-GCM under a key derived from the secret key.

A token is only ever decrypted in the worker that uses it; it is never logged or returned by the API.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def _key(secret_key: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"keepstone", info=purpose).derive(
        secret_key.encode()
    )


def seal(secret_key: str, plaintext: str, context: str) -> str:
    """Encrypt a secret bound to its context (e.g. the organisation), base64 text out."""
    nonce = os.urandom(12)
    sealed = AESGCM(_key(secret_key, b"tokens")).encrypt(nonce, plaintext.encode(), context.encode())
    return base64.b64encode(nonce + sealed).decode()


def unseal(secret_key: str, sealed: str, context: str) -> str:
    raw = base64.b64decode(sealed)
    try:
        return AESGCM(_key(secret_key, b"tokens")).decrypt(raw[:12], raw[12:], context.encode()).decode()
    except InvalidTag:
        raise ValueError("the stored secret cannot be decrypted with this secret key") from None


def repository_password(secret_key: str, cloud_id: str) -> str:
    """The password of an organisation's repository, derived so that losing the database loses nothing."""
    return base64.b64encode(
        hmac.new(_key(secret_key, b"repositories"), cloud_id.encode(), hashlib.sha256).digest()
    ).decode()


def seal_jira_token(secret_key: str, token: str, cloud_id: str) -> str:
    """An organisation's Jira API token, sealed and bound to that organisation."""
    return seal(secret_key, token, f"jira-token:{cloud_id}")


def jira_token(secret_key: str, sealed: str, cloud_id: str) -> str:
    """An organisation's Jira API token, unsealed (its context binds it to that organisation)."""
    return unseal(secret_key, sealed, f"jira-token:{cloud_id}")
