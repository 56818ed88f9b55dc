"""Our own RSA private keys, and SHA256withRSA signing with them.

Both providers authenticate what we send with RSASSA-PKCS1-v1_5 over SHA-256, base64-encoded:
WeChat Pay with the merchant API private key (商户API证书私钥, `apiclient_key.pem`), Alipay with
the application private key (应用私钥). The key files come in the shapes the providers' tools
write, all accepted here:

- PEM, PKCS#8 (`-----BEGIN PRIVATE KEY-----`, WeChat's apiclient_key.pem) or PKCS#1
  (`-----BEGIN RSA PRIVATE KEY-----`);
- bare base64 of the DER key, PKCS#8 or PKCS#1, which is what Alipay's key tool prints.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

# Both providers require RSA 2048 (WeChat's signature type is literally ...-RSA2048).
MIN_KEY_BITS = 2048


def load_private_key(data: bytes | str) -> RSAPrivateKey:
    """An unencrypted RSA private key from PEM or bare base64 DER; ValueError otherwise."""
    raw = data.encode("ascii") if isinstance(data, str) else data
    raw = raw.strip()
    try:
        if raw.startswith(b"-----BEGIN"):
            key: object = serialization.load_pem_private_key(raw, password=None)
        else:
            der = base64.b64decode(b"".join(raw.split()), validate=True)
            key = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError, binascii.Error, UnsupportedAlgorithm) as e:
        # (TypeError: the key is encrypted; the providers' keys are used unencrypted)
        raise ValueError(f"not an unencrypted private key: {e}") from e
    if not isinstance(key, RSAPrivateKey):
        raise ValueError(f"expected an RSA private key, got {type(key).__name__}")
    if key.key_size < MIN_KEY_BITS:
        raise ValueError(f"the RSA key has {key.key_size} bits; at least {MIN_KEY_BITS} needed")
    return key


def load_private_key_file(path: str | os.PathLike[str]) -> RSAPrivateKey:
    return load_private_key(Path(path).read_bytes())


def sign_sha256_rsa(key: RSAPrivateKey, message: bytes) -> str:
    """base64 of the SHA256withRSA (PKCS#1 v1.5) signature of `message`."""
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()
