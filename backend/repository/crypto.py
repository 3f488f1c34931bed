"""Keys and sealing: AES-256-GCM for every stored byte, HMAC-SHA256 blob ids, scrypt-wrapped master keys.

Threat model in one line: the storage is untrusted (it may read, drop, reorder or alter objects), the
client holding the password is trusted. AEAD makes any alteration a decryption error; the keyed blob id
hides content (no confirmation of known plaintext without the key).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

NONCE = 12


class IntegrityError(Exception):
    """Stored bytes failed authentication: they were altered, truncated or sealed with another key."""


class WrongPassword(Exception):
    """No key file of the repository opens with this password."""


@dataclass(frozen=True)
class MasterKeys:
    """The repository's random keys: one encrypts, one derives blob ids."""

    encryption: bytes
    mac: bytes

    @classmethod
    def generate(cls) -> MasterKeys:
        return cls(os.urandom(32), os.urandom(32))

    def blob_id(self, plaintext: bytes) -> str:
        """The content address of plaintext: a keyed hash, so equal content dedups and ids leak nothing."""
        return hmac.new(self.mac, plaintext, hashlib.sha256).hexdigest()

    def seal(self, plaintext: bytes, associated: bytes) -> bytes:
        nonce = os.urandom(NONCE)
        return nonce + AESGCM(self.encryption).encrypt(nonce, plaintext, associated)

    def open(self, sealed: bytes, associated: bytes) -> bytes:
        if len(sealed) < NONCE + 16:
            raise IntegrityError("sealed data is too short")
        try:
            return AESGCM(self.encryption).decrypt(sealed[:NONCE], sealed[NONCE:], associated)
        except InvalidTag:
            raise IntegrityError("authentication failed") from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _kek(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(password.encode())


def wrap_keys(keys: MasterKeys, password: str, n: int = 2**15, r: int = 8, p: int = 1) -> dict:
    """Make a key file: the master keys sealed under a key derived from the password with scrypt."""
    salt = os.urandom(16)
    kek = _kek(password, salt, n, r, p)
    payload = json.dumps({"encryption": _b64(keys.encryption), "mac": _b64(keys.mac)}).encode()
    nonce = os.urandom(NONCE)
    sealed = nonce + AESGCM(kek).encrypt(nonce, payload, b"keepstone-key")
    return {"version": 1, "kdf": "scrypt", "n": n, "r": r, "p": p, "salt": _b64(salt), "data": _b64(sealed)}


def unwrap_keys(key_file: dict, password: str) -> MasterKeys:
    """Open a key file with a password; WrongPassword if it does not fit."""
    try:
        kek = _kek(password, base64.b64decode(key_file["salt"]), key_file["n"], key_file["r"], key_file["p"])
        sealed = base64.b64decode(key_file["data"])
        payload = json.loads(AESGCM(kek).decrypt(sealed[:NONCE], sealed[NONCE:], b"keepstone-key"))
    except InvalidTag:
        raise WrongPassword("the password does not open this repository") from None
    except (KeyError, ValueError, TypeError) as e:
        raise IntegrityError(f"the key file is malformed: {e}") from e
    return MasterKeys(base64.b64decode(payload["encryption"]), base64.b64decode(payload["mac"]))
