"""Password hashing and opaque access tokens."""

from __future__ import annotations

import hashlib
import os
import secrets

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

_password_hash = PasswordHash((Argon2Hasher(),))

#: password hashes computed at the same time in one process (each is CPU- and memory-hard on purpose)
PASSWORD_HASHING_CONCURRENCY = max(1, (os.cpu_count() or 2) // 2)


def hash_password(password: str) -> str:
    """An argon2id hash of the password."""
    return _password_hash.hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    """Whether the password matches the stored hash."""
    try:
        return _password_hash.verify(password, password_hash)
    except Exception:  # a malformed stored hash must not turn into a 500
        return False


# A fixed hash to verify against when the email is unknown, so timing does not reveal accounts.
DUMMY_PASSWORD_HASH = hash_password(secrets.token_urlsafe(16))


def new_token() -> str:
    """A fresh random token to hand to a client."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What is stored for a token: its SHA-256, so a database leak reveals no usable token."""
    return hashlib.sha256(token.encode()).hexdigest()
