"""The platform's SM2 key for the encrypted mode: it signs every answer's output (`cainfo`).

Derived from the master key (`keyring.purpose_key`), so every serving process has the same key with nothing more
to store or distribute, and it changes with the master key. Institutions get its public half from
`yibao fsi issue` (printed with an encrypted credential) to check answers."""

from __future__ import annotations

import weakref

from yibao.crypto import gm
from yibao.crypto.pii import Keyring

_KEYS: "weakref.WeakKeyDictionary[Keyring, gm.Sm2PrivateKey]" = weakref.WeakKeyDictionary()


def platform_key(keyring: Keyring) -> gm.Sm2PrivateKey:
    key = _KEYS.get(keyring)
    if key is None:
        seed = int.from_bytes(keyring.purpose_key("fsi platform sm2 v1"), "big")
        key = _KEYS[keyring] = gm.Sm2PrivateKey(seed % (gm.SM2_CURVE.n - 2) + 1)
    return key
