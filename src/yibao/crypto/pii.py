"""Personal data at rest: AES-256-GCM ciphertext plus a keyed hash (HMAC-SHA256) for lookups.

The master key comes from YIBAO_SECRET_KEY (64 hex digits). Without it, a key is generated once
into a local file (``.yibao-secret`` beside the SQLite database by default) so a demo keeps its
data readable across restarts (``.yibao/secret.key``, beside the demo database); production sets the
variable (from a KMS) instead.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class Keyring:
    def __init__(self, master: bytes) -> None:
        if len(master) != 32:
            raise ValueError("the master key must be 32 bytes")
        self._aead = AESGCM(hmac.new(master, b"yibao pii encryption v1", hashlib.sha256).digest())
        self._mac = hmac.new(master, b"yibao pii lookup v1", hashlib.sha256).digest()
        self._derive = hmac.new(master, b"yibao purpose keys v1", hashlib.sha256).digest()

    def encrypt(self, text: str, context: str = "") -> bytes:
        nonce = secrets.token_bytes(12)
        return nonce + self._aead.encrypt(nonce, text.encode("utf-8"), context.encode() or None)

    def decrypt(self, blob: bytes, context: str = "") -> str:
        return self._aead.decrypt(bytes(blob[:12]), bytes(blob[12:]), context.encode() or None).decode("utf-8")

    def purpose_key(self, purpose: str) -> bytes:
        """A 32-byte key for one purpose (e.g. payment-code MACs): one key never serves two uses."""
        return hmac.new(self._derive, purpose.encode("utf-8"), hashlib.sha256).digest()

    def lookup_hash(self, text: str) -> str:
        """Deterministic keyed hash: find a row by ID number or phone without storing it in clear."""
        return hmac.new(self._mac, text.strip().upper().encode("utf-8"), hashlib.sha256).hexdigest()


def load_keyring(key_file: str | Path | None = None, *, create: bool = True) -> Keyring:
    """The master key from YIBAO_SECRET_KEY, else the key file; made there on first use unless ``create`` is
    False (a checker such as `yibao audit verify` must not invent a key: FileNotFoundError)."""
    env = os.environ.get("YIBAO_SECRET_KEY")
    if env:
        return Keyring(bytes.fromhex(env))
    path = Path(key_file or os.environ.get("YIBAO_SECRET_FILE", ".yibao/secret.key"))
    if path.exists():
        return Keyring(bytes.fromhex(path.read_text().strip()))
    if not create:
        raise FileNotFoundError(path)
    key = secrets.token_bytes(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(key.hex())
    path.chmod(0o600)
    return Keyring(key)


def mask_id_number(value: str) -> str:
    """440301199001011234 -> 4403**********1234"""
    if len(value) <= 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


def mask_name(value: str) -> str:
    """张三 -> 张*; 欧阳娜娜 -> 欧***"""
    return value[:1] + "*" * max(1, len(value) - 1) if value else value


def mask_phone(value: str) -> str:
    """13812345678 -> 138****5678"""
    if len(value) < 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_card_no(value: str) -> str:
    return value[:2] + "*" * max(0, len(value) - 6) + value[-4:] if len(value) > 6 else "*" * len(value)
