"""Keys and sealing: AES-256-GCM for every stored byte, HMAC-SHA256 blob ids, scrypt-wrapped master keys.

Threat model in one line: the storage is untrusted (it may read, drop, reorder or alter objects), the
client holding the password is trusted. AEAD makes any alteration a decryption error; the keyed blob id
hides content (no confirmation of known plaintext without the key).

Two kinds of wrap (key files, docs/storage-format.md): `scrypt` (a key-encryption key derived from a
password) and `scrypt-x25519` (a recovery key: the master keys sealed to an X25519 public key whose private
half is derived from a passphrase with scrypt, so the service can add the wrap to a new repository
knowing only the public half, and the passphrase alone opens it).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
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


@functools.lru_cache(maxsize=64)
def _opening_kek(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    """`_kek` remembered for opening password-wrapped key files: a worker opens one repository at the start,
    each project and the end of every run, and scrypt is meant to cost ~0.1 s of CPU each time. The
    process already holds what the password derives from (the service secret), so this keeps nothing new;
    recovery passphrases (scrypt-x25519) are never remembered: the service holds their public half only."""
    return _kek(password, salt, n, r, p)


def _payload(keys: MasterKeys) -> bytes:
    return json.dumps({"encryption": _b64(keys.encryption), "mac": _b64(keys.mac)}).encode()


def _master(payload: bytes) -> MasterKeys:
    doc = json.loads(payload)
    return MasterKeys(base64.b64decode(doc["encryption"]), base64.b64decode(doc["mac"]))


def wrap_keys(keys: MasterKeys, password: str, n: int = 2**15, r: int = 8, p: int = 1) -> dict:
    """Make a key file: the master keys sealed under a key derived from the password with scrypt."""
    salt = os.urandom(16)
    kek = _kek(password, salt, n, r, p)
    nonce = os.urandom(NONCE)
    sealed = nonce + AESGCM(kek).encrypt(nonce, _payload(keys), b"keepstone-key")
    return {"version": 1, "kdf": "scrypt", "n": n, "r": r, "p": p, "salt": _b64(salt), "data": _b64(sealed)}


@dataclass(frozen=True)
class RecoveryKey:
    """The public half of a recovery passphrase: an X25519 public key and the scrypt settings that derive
    its private half from the passphrase. Nothing here opens anything; it only wraps."""

    public: bytes
    salt: bytes
    n: int = 2**15
    r: int = 8
    p: int = 1

    @classmethod
    def from_passphrase(cls, passphrase: str, n: int = 2**15, r: int = 8, p: int = 1) -> RecoveryKey:
        """A new recovery key for this passphrase (a fresh salt each time)."""
        salt = os.urandom(16)
        private = X25519PrivateKey.from_private_bytes(_kek(passphrase, salt, n, r, p))
        return cls(private.public_key().public_bytes_raw(), salt, n, r, p)

    @property
    def fingerprint(self) -> str:
        """What names this recovery key without revealing anything: SHA-256 of the public key, 16 hex."""
        return hashlib.sha256(b"keepstone-recovery\0" + self.public).hexdigest()[:16]

    def to_dict(self) -> dict:
        return {"public": _b64(self.public), "salt": _b64(self.salt), "n": self.n, "r": self.r, "p": self.p}

    @classmethod
    def from_dict(cls, doc: dict) -> RecoveryKey:
        return cls(
            base64.b64decode(doc["public"]),
            base64.b64decode(doc["salt"]),
            int(doc["n"]),
            int(doc["r"]),
            int(doc["p"]),
        )


def _recovery_aead(shared: bytes, ephemeral: bytes, public: bytes) -> AESGCM:
    info = b"keepstone-recovery-wrap\0" + ephemeral + public
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared))


def wrap_keys_for_recovery(keys: MasterKeys, recovery: RecoveryKey) -> dict:
    """Make a recovery key file: the master keys sealed to the recovery public key (ephemeral X25519)."""
    ephemeral = X25519PrivateKey.generate()
    epub = ephemeral.public_key().public_bytes_raw()
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recovery.public))
    nonce = os.urandom(NONCE)
    sealed = nonce + _recovery_aead(shared, epub, recovery.public).encrypt(
        nonce, _payload(keys), b"keepstone-key"
    )
    return {
        "version": 2,
        "kdf": "scrypt-x25519",
        **recovery.to_dict(),
        "ephemeral": _b64(epub),
        "data": _b64(sealed),
    }


def unwrap_keys(key_file: dict, password: str) -> MasterKeys:
    """Open a key file with a password (or recovery passphrase); WrongPassword if it does not fit."""
    try:
        kdf = key_file.get("kdf", "scrypt")
        salt = base64.b64decode(key_file["salt"])
        derive = _opening_kek if kdf == "scrypt" else _kek
        kek = derive(password, salt, key_file["n"], key_file["r"], key_file["p"])
        sealed = base64.b64decode(key_file["data"])
        if kdf == "scrypt-x25519":
            private = X25519PrivateKey.from_private_bytes(kek)
            public = private.public_key().public_bytes_raw()
            if public != base64.b64decode(key_file["public"]):
                raise WrongPassword("the password does not open this repository")
            epub = base64.b64decode(key_file["ephemeral"])
            shared = private.exchange(X25519PublicKey.from_public_bytes(epub))
            aead = _recovery_aead(shared, epub, public)
        elif kdf == "scrypt":
            aead = AESGCM(kek)
        else:
            raise IntegrityError(f"the key file's kdf {kdf!r} is not known")
        return _master(aead.decrypt(sealed[:NONCE], sealed[NONCE:], b"keepstone-key"))
    except InvalidTag:
        raise WrongPassword("the password does not open this repository") from None
    except (KeyError, ValueError, TypeError) as e:
        raise IntegrityError(f"the key file is malformed: {e}") from e
