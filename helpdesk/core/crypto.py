"""Encrypting secrets kept in the database, with a key derived from CAREDESK_SECRET_KEY.

Rotating the key: the new one becomes CAREDESK_SECRET_KEY and the old one goes to
CAREDESK_SECRET_KEY_PREVIOUS. What the old key sealed is still opened, everything new is sealed with
the new key, and ``caredesk rotate-secrets`` re-seals what is stored, after which the old key can go.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


def _fernet(secret_key: str) -> Fernet:
    digest = hashlib.sha256(b"caredesk-secret-box:" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


class SecretBox:
    """Authenticated symmetric encryption (Fernet) of small secrets: sealed with ``secret_key``,
    opened with it or any of ``previous_keys``."""

    def __init__(self, secret_key: str, previous_keys: Sequence[str] = ()):
        self._fernet = MultiFernet([_fernet(secret_key), *(_fernet(key) for key in previous_keys
                                                            if key and key != secret_key)])
        self._current = _fernet(secret_key)

    def seal(self, plaintext: str) -> str:
        """The encrypted text."""
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, ciphertext: str) -> str:
        """The decrypted text; ValueError if it was sealed with none of the keys or was altered."""
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("secret cannot be decrypted with CAREDESK_SECRET_KEY (or a "
                             "CAREDESK_SECRET_KEY_PREVIOUS)") from exc

    def sealed_with_current(self, ciphertext: str) -> bool:
        """Whether ``ciphertext`` opens with the current key (a rotation has nothing to do for it)."""
        try:
            self._current.decrypt(ciphertext.encode())
        except InvalidToken:
            return False
        return True

    def reseal(self, ciphertext: str) -> str:
        """The same secret sealed with the current key; ValueError as ``open``."""
        try:
            return self._fernet.rotate(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("secret cannot be decrypted with CAREDESK_SECRET_KEY (or a "
                             "CAREDESK_SECRET_KEY_PREVIOUS)") from exc


def secret_box(settings: object) -> SecretBox:
    """The box of the settings' current and previous secret keys."""
    return SecretBox(settings.secret_key.get_secret_value(),
                     [key.get_secret_value() for key in settings.secret_key_previous])
