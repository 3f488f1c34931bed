"""Opaque public ids: what URLs and API answers name objects by, instead of sequential primary keys.

A public id is a prefix naming the kind (`pln_`, `run_`, `stg_`) and 20 random base-32 characters (100 bits),
so ids neither count objects nor can be guessed; the integer primary keys stay inside the database.
"""

from __future__ import annotations

import base64
import re
import secrets

PREFIXES = {"plan": "pln", "run": "run", "storage": "stg"}
PREFIXES.update({"member": "mbr", "invitation": "inv"})  # accounts and roles (issue 16)
PREFIXES.update({"channel": "chn"})  # notification channels (issue 16)
PREFIXES.update({"restore": "rst"})  # restores started from the management UI (issue 17)
_BODY = 20
PATTERN = re.compile(rf"^[a-z]{{3}}_[a-z2-7]{{{_BODY}}}$")


def new_id(kind: str) -> str:
    """A fresh public id for an object of this kind."""
    body = base64.b32encode(secrets.token_bytes(15)).decode().lower()[:_BODY]
    return f"{PREFIXES[kind]}_{body}"


def is_id(kind: str, value: str) -> bool:
    """Whether `value` has the shape of a public id of this kind (cheap: checked before any look-up)."""
    return isinstance(value, str) and value.startswith(PREFIXES[kind] + "_") and bool(PATTERN.match(value))
