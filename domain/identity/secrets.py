"""Password hashing (argon2), keyed hashes for tokens and codes, phone numbers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.fernet import Fernet

from domain import config

_hasher = PasswordHasher()
# Verified against when the username does not exist, so timing does not reveal that.
_DUMMY_HASH = _hasher.hash("yikatong-dummy-password")

_PHONE = re.compile(r"^1[3-9]\d{9}$")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


def keyed_hash(value: str, purpose: str) -> str:
    """HMAC-SHA256 under the server secret: for values that are random or short-lived."""
    key = hashlib.sha256(f"{purpose}:{config.get().secret_key}".encode()).digest()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def _fernet() -> Fernet:
    key = hashlib.sha256(f"personal-data:{config.get().secret_key}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt_personal(value: str) -> str:
    """Personal data the business must read back (a bank account for a payout), encrypted
    under the server secret (AES-CBC + HMAC, Fernet)."""
    return _fernet().encrypt(value.encode()).decode()


def decrypt_personal(token: str) -> str:
    return _fernet().decrypt(token.encode()).decode()


def token_hash(token: str) -> str:
    """Plain SHA-256 for high-entropy tokens (terminal keys, refresh tokens)."""
    return hashlib.sha256(token.encode()).hexdigest()


def normalize_phone(phone: str) -> str | None:
    """A mainland mobile number in 11 digits, or None."""
    digits = re.sub(r"[\s-]", "", phone)
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    return digits if _PHONE.match(digits) else None


def mask_phone(phone: str | None) -> str | None:
    """138****5678."""
    if not phone:
        return phone
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else "****"


def mask_id_number(value: str | None) -> str | None:
    """110***********1234."""
    if not value:
        return value
    return value[:3] + "*" * max(len(value) - 7, 4) + value[-4:]
