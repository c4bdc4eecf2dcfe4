"""Encrypting secrets kept in the database, with a key derived from CAREDESK_SECRET_KEY."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken


class SecretBox:
    """Authenticated symmetric encryption (Fernet) of small secrets."""

    def __init__(self, secret_key: str):
        digest = hashlib.sha256(b"caredesk-secret-box:" + secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def seal(self, plaintext: str) -> str:
        """The encrypted text."""
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, ciphertext: str) -> str:
        """The decrypted text; ValueError if it was not sealed with this key or was altered."""
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("secret cannot be decrypted with the current CAREDESK_SECRET_KEY") from exc
