"""Password hashing and opaque access tokens."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

_password_hash = PasswordHash((Argon2Hasher(),))

#: password hashes computed at the same time in one process (each is CPU- and memory-hard on purpose)
PASSWORD_HASHING_CONCURRENCY = max(1, (os.cpu_count() or 2) // 2)
#: how much lower the hashing threads' CPU priority is than the rest of the process (Linux nice steps)
PASSWORD_HASHING_NICE = 10


def hash_password(password: str) -> str:
    """An argon2id hash of the password."""
    return _password_hash.hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    """Whether the password matches the stored hash."""
    try:
        return _password_hash.verify(password, password_hash)
    except Exception:  # a malformed stored hash must not turn into a 500
        return False


def _lower_thread_priority() -> None:
    # On Linux the nice value is per thread (and argon2's lane threads inherit it), so the event loop
    # and the request threads get the CPU first while a burst of logins hashes in the background.
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), PASSWORD_HASHING_NICE)
    except (AttributeError, OSError):
        pass  # elsewhere it is only slower to stay responsive under a login burst


class PasswordHashing:
    """Threads of their own, at a lower CPU priority, for hashing and verifying passwords."""

    def __init__(self, workers: int = PASSWORD_HASHING_CONCURRENCY):
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="caredesk-password",
                                        initializer=_lower_thread_priority)

    async def verify(self, password: str, password_hash: str) -> bool:
        """``verify_password`` in a hashing thread."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, verify_password, password,
                                                                password_hash)

    def close(self) -> None:
        """Let the threads end once their work is done."""
        self._pool.shutdown(wait=False, cancel_futures=True)


# A fixed hash to verify against when the email is unknown, so timing does not reveal accounts.
DUMMY_PASSWORD_HASH = hash_password(secrets.token_urlsafe(16))


def new_token() -> str:
    """A fresh random token to hand to a client."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What is stored for a token: its SHA-256, so a database leak reveals no usable token."""
    return hashlib.sha256(token.encode()).hexdigest()
