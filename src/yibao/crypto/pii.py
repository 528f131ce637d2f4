"""Personal data at rest: AES-256-GCM ciphertext plus a keyed hash (HMAC-SHA256) for lookups.

The master key comes from YIBAO_SECRET_KEY (64 hex digits) or from a key file (YIBAO_SECRET_FILE) that
only its owner may read (mode 600: a group- or world-readable one is refused, naming the chmod to run).
The demo, and only the demo, has one generated once into ``.yibao/secret.key`` (0600, beside the demo
database) so its data stays readable across restarts; production never generates one (`create=False`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from yibao.crypto.files import create_private, readable_by_others
from yibao.domain.errors import InputError

DEFAULT_KEY_FILE = ".yibao/secret.key"


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


def _master(text: str, field: str) -> Keyring:
    try:
        return Keyring(bytes.fromhex(text.strip()))
    except ValueError:
        raise InputError(field, "invalid_master_key", "主密钥应为64位十六进制数字（32字节）", "the master key must be 64 hex digits (32 bytes)") from None


def load_keyring(key_file: str | Path | None = None, *, create: bool = True, environ: Mapping[str, str] | None = None) -> Keyring:
    """The keyring of YIBAO_SECRET_KEY, else of the key file (``key_file``, $YIBAO_SECRET_FILE, else
    .yibao/secret.key), read from ``environ`` (default: the process's). With ``create`` (the demo) a
    missing file is generated; without it (production) a key must be given. Refusals are `InputError`s
    naming the variable and what to do."""
    environ = os.environ if environ is None else environ
    env = environ.get("YIBAO_SECRET_KEY")
    if env:
        return _master(env, "YIBAO_SECRET_KEY")
    named = key_file or environ.get("YIBAO_SECRET_FILE")
    if not named and not create:
        raise InputError("YIBAO_SECRET_KEY", "master_key_required",
                         "需要主密钥：设置 YIBAO_SECRET_KEY（64位十六进制），或 YIBAO_SECRET_FILE（仅属主可读的密钥文件，chmod 600）",
                         "a master key is needed: set YIBAO_SECRET_KEY (64 hex digits) or YIBAO_SECRET_FILE (a key file only its "
                         "owner may read, chmod 600)")
    path = Path(named or DEFAULT_KEY_FILE)
    if path.exists():
        if not path.is_file():
            raise InputError("YIBAO_SECRET_FILE", "key_file_invalid", f"密钥文件 {path} 不是普通文件", f"the key file {path} is not a regular file")
        if readable_by_others(path):
            raise InputError("YIBAO_SECRET_FILE", "key_file_exposed", f"密钥文件 {path} 可被其他用户读取，请先运行：chmod 600 {path}",
                             f"the key file {path} can be read by other users; run: chmod 600 {path}")
        return _master(path.read_text(), "YIBAO_SECRET_FILE")
    if not create:
        raise InputError("YIBAO_SECRET_FILE", "key_file_missing", f"密钥文件 {path} 不存在：请设置 YIBAO_SECRET_KEY，或提供该文件（chmod 600）",
                         f"the key file {path} does not exist: set YIBAO_SECRET_KEY, or provide the file (chmod 600)")
    key = secrets.token_bytes(32)
    if not create_private(path, key.hex().encode()):  # another process made it meanwhile: theirs is the key
        return load_keyring(path, create=False, environ={})
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
