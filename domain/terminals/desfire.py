"""MIFARE DESFire EV2/EV3 cryptography the server needs, and nothing the bridge needs.

Key diversification (NXP AN10922 §2.2, AES-128): the card's key is a CMAC under the master key
of D = 0x01 || M, M = UID || AID || system identifier (1-31 bytes). The note always pads D to
32 bytes: 0x80 then zeros, the last block XORed with CMAC's subkey K2; a D of exactly 32 bytes is
not padded and takes K1. For 17-32 bytes that is exactly standard CMAC (RFC 4493), so the
`cryptography` package's CMAC computes it; for a D of 16 bytes or fewer the note's two-block
padding differs from CMAC's one-block padding, and the same steps are done by hand.
Checked against the note's published example (§2.2.1) in tests/domain/test_desfire.py.

AuthenticateEV2First (cmd 0x71), AES, as the PCD side computes it; every message is AES-128-CBC
with a zero IV:
  card   -> E(K, RndB)                                       16 bytes, status 91 AF
  reader -> E(K, RndA || RndB<<<8)                            32 bytes (sent with 90 AF)
  card   -> E(K, TI || RndA<<<8 || PDcap2 || PCDcap2)        32 bytes, status 91 00
Here the "reader" half is the server: the bridge only relays, so the key never reaches it.
"""

from __future__ import annotations

import hmac

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

BLOCK = 16
_RB = 0x87  # CMAC's constant for 128-bit blocks


def _ecb(key: bytes, block: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 (one block)
    return encryptor.update(block) + encryptor.finalize()


def _shift_left(block: bytes) -> bytes:
    value = (int.from_bytes(block, "big") << 1) & ((1 << 128) - 1)
    return value.to_bytes(BLOCK, "big")


def cmac_subkeys(key: bytes) -> tuple[bytes, bytes]:
    """CMAC's K1 and K2 (RFC 4493 §2.3)."""
    el = _ecb(key, bytes(BLOCK))
    k1 = _shift_left(el)
    if el[0] & 0x80:
        k1 = k1[:-1] + bytes([k1[-1] ^ _RB])
    k2 = _shift_left(k1)
    if k1[0] & 0x80:
        k2 = k2[:-1] + bytes([k2[-1] ^ _RB])
    return k1, k2


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def diversify_aes128(master_key: bytes, diversification_input: bytes) -> bytes:
    """AN10922 AES-128 key diversification of `master_key` with M = `diversification_input`."""
    if len(master_key) != 16:
        raise ValueError("an AES-128 master key is 16 bytes")
    if not 1 <= len(diversification_input) <= 31:
        raise ValueError("the diversification input is 1-31 bytes")
    d = b"\x01" + diversification_input
    if len(d) > BLOCK:
        mac = CMAC(algorithms.AES(master_key))
        mac.update(d)
        return mac.finalize()
    padded = d + b"\x80" + bytes(2 * BLOCK - len(d) - 1)
    _, k2 = cmac_subkeys(master_key)
    message = padded[:BLOCK] + _xor(padded[BLOCK:], k2)
    return cbc_encrypt(master_key, message)[BLOCK:]


def diversification_input(uid: bytes, aid: bytes, system_identifier: bytes) -> bytes:
    """M = UID || AID || system identifier (the note's example: 7 + 3 + 7 bytes)."""
    m = uid + aid + system_identifier
    if not 1 <= len(m) <= 31:
        raise ValueError("UID, AID and system identifier together must be 1-31 bytes")
    return m


def cbc_encrypt(key: bytes, data: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.CBC(bytes(BLOCK))).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def cbc_decrypt(key: bytes, data: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.CBC(bytes(BLOCK))).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def rotate_left(data: bytes) -> bytes:
    """RndB' / RndA': the 16 bytes rotated left by one byte."""
    return data[1:] + data[:1]


def reader_response(rnd_a: bytes, rnd_b: bytes) -> bytes:
    """The plaintext of the PCD's answer in AuthenticateEV2First part 2: RndA || RndB'."""
    if len(rnd_a) != BLOCK or len(rnd_b) != BLOCK:
        raise ValueError("RndA and RndB are 16 bytes")
    return rnd_a + rotate_left(rnd_b)


def card_proved_key(rnd_a: bytes, card_final_plain: bytes) -> bool:
    """The card's last message, decrypted (TI || RndA' || PDcap2 || PCDcap2), carries RndA
    rotated: only a card holding the key could have decrypted RndA to rotate it."""
    if len(card_final_plain) != 2 * BLOCK:
        return False
    return hmac.compare_digest(card_final_plain[4:20], rotate_left(rnd_a))
