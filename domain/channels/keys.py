"""The providers' RSA public keys, and SHA256withRSA verification.

Both providers sign with RSASSA-PKCS1-v1_5 over SHA-256 ("SHA256withRSA"; Alipay calls it RSA2).
Their keys come in three shapes, all accepted here:

- a PEM public key (`-----BEGIN PUBLIC KEY-----`): WeChat's 微信支付公钥 file, or an Alipay key
  someone wrapped in PEM armour;
- an X.509 certificate PEM: WeChat's 平台证书, Alipay's 支付宝公钥证书 (certificate mode);
- bare base64 of the DER key, which is how the Alipay console shows the 支付宝公钥.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey


def load_public_key(data: bytes | str) -> RSAPublicKey:
    """An RSA public key from a PEM key, a PEM certificate or bare base64 DER.

    Raises ValueError for anything else, a non-RSA key included: both providers only use RSA
    for these signatures, and accepting another type would only defer the error.
    """
    raw = data.encode("ascii") if isinstance(data, str) else data
    raw = raw.strip()
    try:
        if b"-----BEGIN CERTIFICATE-----" in raw:
            key: object = x509.load_pem_x509_certificate(raw).public_key()
        elif raw.startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(raw)
        else:
            der = base64.b64decode(b"".join(raw.split()), validate=True)
            key = serialization.load_der_public_key(der)
    except (ValueError, binascii.Error, UnsupportedAlgorithm) as e:
        raise ValueError(f"not a public key or certificate: {e}") from e
    if not isinstance(key, RSAPublicKey):
        raise ValueError(f"expected an RSA public key, got {type(key).__name__}")
    return key


def load_public_key_file(path: str | os.PathLike[str]) -> RSAPublicKey:
    return load_public_key(Path(path).read_bytes())


def certificate_serial(certificate: x509.Certificate) -> str:
    """The serial as WeChat writes it in `Wechatpay-Serial`: upper-case hex, no leading zeros."""
    return format(certificate.serial_number, "X")


def load_certificate(data: bytes | str) -> tuple[str, RSAPublicKey]:
    """(serial, public key) of a PEM certificate, e.g. a WeChat Pay 平台证书."""
    raw = data.encode("ascii") if isinstance(data, str) else data
    try:
        certificate = x509.load_pem_x509_certificate(raw.strip())
    except ValueError as e:
        raise ValueError(f"not a PEM certificate: {e}") from e
    key = certificate.public_key()
    if not isinstance(key, RSAPublicKey):
        raise ValueError(f"expected an RSA certificate, got {type(key).__name__}")
    return certificate_serial(certificate), key


def verify_sha256_rsa(key: RSAPublicKey, message: bytes, signature_b64: str) -> bool:
    """True when `signature_b64` is a valid base64 SHA256withRSA signature of `message`."""
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True
