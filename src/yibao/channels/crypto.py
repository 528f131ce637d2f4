"""Keys, signatures and encryption shared by the connectors and the sandbox institutions.

RSA keys are 2048-bit; signatures are RSASSA-PKCS1-v1_5 with SHA-256 ("SHA256withRSA", what
WeChat Pay v3, Alipay RSA2 and UnionPay 5.1 all use). A key's serial is a short digest of its
public key, standing in for a certificate serial number.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from pathlib import Path
from typing import Mapping

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from yibao.crypto.files import create_private


def generate_rsa_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def public_pem(key: RSAPublicKey | RSAPrivateKey) -> bytes:
    pub = key.public_key() if isinstance(key, RSAPrivateKey) else key
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_private_key(pem: bytes | str | RSAPrivateKey) -> RSAPrivateKey:
    if isinstance(pem, RSAPrivateKey):
        return pem
    key = serialization.load_pem_private_key(pem.encode() if isinstance(pem, str) else pem, password=None)
    if not isinstance(key, RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


def load_public_key(pem: bytes | str | RSAPublicKey | RSAPrivateKey) -> RSAPublicKey:
    if isinstance(pem, RSAPrivateKey):
        return pem.public_key()
    if isinstance(pem, RSAPublicKey):
        return pem
    key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    if not isinstance(key, RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def load_or_create_key(path: Path) -> RSAPrivateKey:
    """A sandbox's key pair from a PEM file, made (mode 0600) on first use."""
    if path.exists():
        return load_private_key(path.read_bytes())
    key = generate_rsa_key()
    if not create_private(path, private_pem(key)):  # made meanwhile by another process: theirs is the key
        return load_private_key(path.read_bytes())
    return key


def key_serial(key: RSAPublicKey | RSAPrivateKey) -> str:
    """40 hex digits naming a public key, as a certificate serial names a certificate."""
    der = load_public_key(key).public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:40].upper()


def rsa_sign(key: RSAPrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa_verify(key: RSAPublicKey, message: bytes, signature_b64: str | None) -> bool:
    if not signature_b64:
        return False
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def aes_gcm_encrypt(key: bytes, nonce: bytes, associated_data: bytes, plaintext: bytes) -> str:
    """WeChat Pay's AEAD_AES_256_GCM: base64 of ciphertext followed by the 16-byte tag."""
    return base64.b64encode(AESGCM(key).encrypt(nonce, plaintext, associated_data)).decode()


def aes_gcm_decrypt(key: bytes, nonce: bytes, associated_data: bytes, ciphertext_b64: str) -> bytes | None:
    try:
        return AESGCM(key).decrypt(nonce, base64.b64decode(ciphertext_b64, validate=True), associated_data)
    except (InvalidTag, binascii.Error, ValueError):
        return None


def canonical_kv(params: Mapping[str, str], *, exclude: tuple[str, ...] = (), skip_empty: bool = True) -> str:
    """The string Alipay and UnionPay sign: keys in ASCII order, `k=v` joined by `&`, values raw (not URL-encoded)."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k not in exclude and not (skip_empty and params[k] == ""))


def hmac_sha256_hex(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def hmac_equal(a: str | None, b: str) -> bool:
    return a is not None and hmac.compare_digest(a.encode(), b.encode())
