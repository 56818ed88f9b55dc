"""DESFire key diversification (NXP AN10922) and the server's half of AuthenticateEV2First."""

from __future__ import annotations

import json
import os

import pytest

from devices import card as cardio
from domain.terminals import desfire, keystore
from tests.devices.cards import DesfireEV2, Direct

MASTER = bytes.fromhex("00112233445566778899AABBCCDDEEFF")


def test_an10922_published_aes128_example():
    """AN10922 §2.2.1: UID 04782E21801D80, AID 3042F5, system identifier "NXP Abu"."""
    m = bytes.fromhex("04782E21801D80") + bytes.fromhex("3042F5") + b"NXP Abu"
    assert desfire.diversify_aes128(MASTER, m).hex().upper() == "A8DD63A3B89D54B37CA802473FDA9175"
    k1, k2 = desfire.cmac_subkeys(MASTER)
    assert k1.hex().upper() == "FBC9F75C9413C041DFEE452D3F0706D1"
    assert k2.hex().upper() == "F793EEB928278083BFDC8A5A7E0E0D25"


@pytest.mark.parametrize(
    ("length", "expected"),
    [
        (1, "281049D52ECBC8F60961993D34DE3D54"),
        (7, "E8B7F67C78C34AF1446E331EF7E6D3FF"),
        (15, "5A3C7F6F0687F24F82DEE7EDA0970D08"),
        (16, "FEED9FBD36CDB16819A72D30BCF9240B"),
        (31, "21C28CD89BB3147F66C7DBD4851CAB20"),
    ],
)
def test_padding_boundaries_match_an_independent_implementation(length, expected):
    """M = 00 01 02 ...: short inputs take the note's two-block padding (not CMAC's one block),
    16-31 bytes are plain CMAC with K2, 31 bytes fill 32 exactly and take K1. The values come
    from another open-source AN10922 implementation's test suite, not from NXP."""
    assert desfire.diversify_aes128(MASTER, bytes(range(length))).hex().upper() == expected


def test_short_inputs_are_not_plain_cmac_and_bad_lengths_are_refused():
    from cryptography.hazmat.primitives.ciphers import algorithms
    from cryptography.hazmat.primitives.cmac import CMAC

    mac = CMAC(algorithms.AES(MASTER))
    mac.update(b"\x01" + bytes(range(7)))
    assert mac.finalize() != desfire.diversify_aes128(MASTER, bytes(range(7)))
    for bad in (b"", bytes(32)):
        with pytest.raises(ValueError):
            desfire.diversify_aes128(MASTER, bad)
    with pytest.raises(ValueError):
        desfire.diversify_aes128(MASTER[:8], b"x")


def _application() -> keystore.DesfireApplication:
    return keystore.DesfireApplication(aid=0xF0594B, key_no=1, system_identifier=b"Yikatong")


def _card_for(master: bytes, uid: bytes, app: keystore.DesfireApplication) -> DesfireEV2:
    key = desfire.diversify_aes128(
        master, desfire.diversification_input(uid, app.aid_wire, app.system_identifier)
    )
    return DesfireEV2(uid, app.aid_wire, app.key_no, key)


async def _relay(store: keystore.MasterKeyStore, card: DesfireEV2) -> tuple[bytes, bytes]:
    """What the bridge and the server do together; returns (RndA, the card's final plain)."""
    app = store.application
    connection = Direct(card)
    enc_rnd_b = cardio.desfire_challenge(connection, app.aid_wire, app.key_no)
    assert enc_rnd_b is not None
    rnd_b = await store.decrypt(card.uid, enc_rnd_b)
    rnd_a = os.urandom(16)
    answer = await store.encrypt(card.uid, desfire.reader_response(rnd_a, rnd_b))
    final = cardio.desfire_finish(connection, answer)
    return rnd_a, await store.decrypt(card.uid, final)


async def test_ev2_first_with_the_diversified_key_proves_the_card():
    master = os.urandom(16)
    store = keystore.MasterKeyStore(master, _application())
    card = _card_for(master, bytes.fromhex("04A1B2C3D4E5F6"), store.application)
    rnd_a, plain = await _relay(store, card)
    assert desfire.card_proved_key(rnd_a, plain)
    assert not desfire.card_proved_key(os.urandom(16), plain)
    assert card.authenticated == 1


async def test_a_card_with_another_key_fails_on_the_card_itself():
    master = os.urandom(16)
    store = keystore.MasterKeyStore(master, _application())
    clone = _card_for(os.urandom(16), bytes.fromhex("04A1B2C3D4E5F6"), store.application)
    with pytest.raises(cardio.CardError, match="91AE"):
        await _relay(store, clone)
    # Keys are per card: a genuine card's key copied to a card showing another UID fails.
    genuine = _card_for(master, bytes.fromhex("04A1B2C3D4E5F6"), store.application)
    copied = DesfireEV2(bytes.fromhex("04A1B2C3D4E5F7"), genuine.aid_wire, 1, genuine.key)
    with pytest.raises(cardio.CardError, match="91AE"):
        await _relay(store, copied)


def test_key_store_from_file_and_environment(tmp_path):
    path = tmp_path / "desfire.json"
    secret = os.urandom(16).hex()
    path.write_text(json.dumps({"masterKey": secret, "aid": "F0594B", "keyNo": 2}))
    path.chmod(0o644)
    with pytest.raises(keystore.KeyStoreError, match="chmod 600"):
        keystore.from_file(path)
    path.chmod(0o600)
    store = keystore.from_environment({"YIKATONG_DESFIRE_KEY_FILE": str(path)})
    assert store is not None and store.application.key_no == 2
    assert store.application.aid_wire == bytes.fromhex("4B59F0")
    assert secret not in repr(store) and secret.upper() not in repr(store)
    env_store = keystore.from_environment(
        {"YIKATONG_DESFIRE_MASTER_KEY": "00" * 16, "YIKATONG_DESFIRE_SYSTEM_ID": "4E585020416275"}
    )
    assert env_store is not None and env_store.application.system_identifier == b"NXP Abu"
    assert keystore.from_environment({}) is None
    with pytest.raises(keystore.KeyStoreError):
        keystore.from_environment({"YIKATONG_DESFIRE_MASTER_KEY": "00" * 8})
