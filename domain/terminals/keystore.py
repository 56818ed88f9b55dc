"""The DESFire key store: where the master key lives, and the only code that touches it.

The rest of the server asks the store to encrypt or decrypt a block for a card (by UID); the
store diversifies the card's key from the master key (AN10922) and uses it. Neither the master
key nor a card key is handed out, so an HSM-backed store (the HSM computes the diversification
CMAC and the AES operations) implements the same two calls without changing any caller.

Development store: `MasterKeyStore`, loaded from the environment (never from the repository):

  YIKATONG_DESFIRE_KEY_FILE   a JSON file readable by its owner only (mode 0600):
                              {"masterKey": "<32 hex>", "aid": "F0594B", "keyNo": 1,
                               "systemIdentifier": "<hex>"}
  YIKATONG_DESFIRE_MASTER_KEY the master key in hex (with YIKATONG_DESFIRE_AID,
                              YIKATONG_DESFIRE_KEY_NO, YIKATONG_DESFIRE_SYSTEM_ID optional)

Without either, DESFire cards are not accepted (DESFIRE_NOT_CONFIGURED).
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from domain.terminals import desfire

DEFAULT_AID = "F0594B"  # a proprietary (0xF.....) AID: "YK"
DEFAULT_KEY_NO = 1
DEFAULT_SYSTEM_IDENTIFIER = b"Yikatong"


@dataclass(frozen=True)
class DesfireApplication:
    """The card application the bridge selects and the key it authenticates with.

    `aid` is the 24-bit application id as people write it (F0594B); on the wire and in the
    diversification input it goes least significant byte first (4B 59 F0), as DESFire sends it.
    """

    aid: int
    key_no: int
    system_identifier: bytes

    @property
    def aid_wire(self) -> bytes:
        return self.aid.to_bytes(3, "little")

    @property
    def aid_hex(self) -> str:
        return f"{self.aid:06X}"


class DesfireKeyStore(Protocol):
    @property
    def application(self) -> DesfireApplication: ...

    async def encrypt(self, uid: bytes, data: bytes) -> bytes:
        """AES-128-CBC, zero IV, under the card's diversified key."""
        ...

    async def decrypt(self, uid: bytes, data: bytes) -> bytes: ...


class MasterKeyStore:
    """Holds an AES-128 master key in memory (development and small deployments)."""

    def __init__(self, master_key: bytes, application: DesfireApplication) -> None:
        if len(master_key) != 16:
            raise ValueError("the DESFire master key is 16 bytes (AES-128)")
        desfire.diversification_input(
            b"\x00" * 10, application.aid_wire, application.system_identifier
        )
        self.__master_key = master_key
        self._application = application

    @property
    def application(self) -> DesfireApplication:
        return self._application

    def __repr__(self) -> str:  # never print the key
        return f"MasterKeyStore(aid={self._application.aid_hex})"

    def _card_key(self, uid: bytes) -> bytes:
        app = self._application
        return desfire.diversify_aes128(
            self.__master_key,
            desfire.diversification_input(uid, app.aid_wire, app.system_identifier),
        )

    async def encrypt(self, uid: bytes, data: bytes) -> bytes:
        return desfire.cbc_encrypt(self._card_key(uid), data)

    async def decrypt(self, uid: bytes, data: bytes) -> bytes:
        return desfire.cbc_decrypt(self._card_key(uid), data)


class KeyStoreError(RuntimeError):
    """The configured key store cannot be used; the server must not start with it."""


def _hex(value: str, what: str, length: int | None = None) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except ValueError as exc:
        raise KeyStoreError(f"{what} must be hex") from exc
    if length is not None and len(raw) != length:
        raise KeyStoreError(f"{what} must be {length} bytes")
    return raw


def _application(
    aid: str | None, key_no: int | str | None, system_id: str | None
) -> DesfireApplication:
    aid_bytes = _hex(aid or DEFAULT_AID, "the DESFire AID", 3)
    try:
        number = int(key_no) if key_no is not None and key_no != "" else DEFAULT_KEY_NO
    except ValueError as exc:
        raise KeyStoreError("the DESFire key number must be an integer") from exc
    if not 0 <= number <= 13:
        raise KeyStoreError("the DESFire key number must be 0-13")
    return DesfireApplication(
        aid=int.from_bytes(aid_bytes, "big"),
        key_no=number,
        system_identifier=_hex(system_id, "the system identifier")
        if system_id
        else DEFAULT_SYSTEM_IDENTIFIER,
    )


def from_file(path: Path) -> MasterKeyStore:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyStoreError(f"{path} must be readable by its owner only (chmod 600)")
    data = json.loads(path.read_text())
    return MasterKeyStore(
        _hex(str(data["masterKey"]), "masterKey", 16),
        _application(data.get("aid"), data.get("keyNo"), data.get("systemIdentifier")),
    )


def from_environment(env: dict[str, str] | None = None) -> MasterKeyStore | None:
    env = dict(os.environ) if env is None else env
    if env.get("YIKATONG_DESFIRE_KEY_FILE"):
        return from_file(Path(env["YIKATONG_DESFIRE_KEY_FILE"]))
    if env.get("YIKATONG_DESFIRE_MASTER_KEY"):
        return MasterKeyStore(
            _hex(env["YIKATONG_DESFIRE_MASTER_KEY"], "YIKATONG_DESFIRE_MASTER_KEY", 16),
            _application(
                env.get("YIKATONG_DESFIRE_AID"),
                env.get("YIKATONG_DESFIRE_KEY_NO"),
                env.get("YIKATONG_DESFIRE_SYSTEM_ID"),
            ),
        )
    return None


_UNSET = object()
_store: DesfireKeyStore | object | None = _UNSET


def configure(store: DesfireKeyStore | None) -> None:
    """Use this store (the composition root, or a test); None turns DESFire off."""
    global _store
    _store = store


def get() -> DesfireKeyStore | None:
    """The configured store; the environment's on first use."""
    global _store
    if _store is _UNSET:
        _store = from_environment()
    return _store  # type: ignore[return-value]


def reset() -> None:
    """Forget the configured store; the environment is read again on next use (tests)."""
    global _store
    _store = _UNSET
