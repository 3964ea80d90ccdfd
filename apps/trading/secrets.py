"""API credentials at rest: Fernet (AES-128-CBC + HMAC-SHA256, cryptography's recipe) with the key
from the environment variable GOGO_SECRETS_KEY (``Fernet.generate_key()``, urlsafe base64 of 32
bytes). Secrets are never logged nor shown: the admin writes them, only the live client reads them.
"""
from __future__ import annotations

import logging
import os

from cryptography.fernet import Fernet, InvalidToken

logger = logging.getLogger(__name__)
ENV_KEY = "GOGO_SECRETS_KEY"


class SecretsKeyMissing(RuntimeError):
    """GOGO_SECRETS_KEY is unset or not a valid Fernet key: credentials cannot be stored or read."""


def _fernet() -> Fernet:
    key = os.environ.get(ENV_KEY, "")
    if not key:
        raise SecretsKeyMissing(f"{ENV_KEY} is not set")
    try:
        return Fernet(key.encode())
    except (ValueError, TypeError) as exc:
        raise SecretsKeyMissing(f"{ENV_KEY} is not a Fernet key (urlsafe base64 of 32 bytes)") from exc


def secret_encrypt(plain: str) -> str:
    """Fernet token (str) of ``plain``. Raises SecretsKeyMissing."""
    return _fernet().encrypt(plain.encode()).decode()


def secret_decrypt(token: str) -> str:
    """The plain text of a token from :func:`secret_encrypt`. Raises SecretsKeyMissing, or
    ValueError when the token was made with another key or altered."""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError("credential token does not match GOGO_SECRETS_KEY") from None
