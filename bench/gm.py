"""SM3, SM4 and SM2 (yibao.crypto.gm) per second on this machine, one JSON line (docs/fsi-crypto.md quotes it).

What is timed, each the best of 5 rounds (the machine is shared: the best round is the least disturbed):
- sm3_4k: SM3 of a 4 KiB envelope body;
- sm4_encrypt_4k / sm4_decrypt_4k: SM4-ECB/PKCS#7 of a 4 KiB body (a large 2204 fee-detail upload is of that order);
- sm2_sign: SM3withSM2 of a 4 KiB body (Z, e, one k·G from G's table);
- sm2_verify_kept_key: verification with a public key object kept across calls (it has built its table);
- sm2_verify_fresh_key: the key parsed from hex for every verification (no table: the windowed k·P).
"""

from __future__ import annotations

import json
import secrets
import time

from yibao.crypto.gm import Sm2PrivateKey, Sm2PublicKey, sm2_sign, sm2_verify, sm3, sm4_decrypt, sm4_encrypt


def per_second(operation, count: int, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for i in range(count):
            operation(i)
        best = min(best, time.perf_counter() - started)
    return round(count / best, 1)


def main() -> None:
    body = secrets.token_bytes(4096)
    key = secrets.token_bytes(16)
    ciphertext = sm4_encrypt(key, body)
    private = Sm2PrivateKey.generate()
    public = private.public_key()
    public_hex = public.to_hex()
    signatures = [sm2_sign(private, body) for _ in range(50)]
    for signature in signatures:  # the kept key builds its table on the way
        assert sm2_verify(public, body, signature)

    results = {
        "sm3_4k": per_second(lambda i: sm3(body), 2000),
        "sm4_encrypt_4k": per_second(lambda i: sm4_encrypt(key, body), 2000),
        "sm4_decrypt_4k": per_second(lambda i: sm4_decrypt(key, ciphertext), 2000),
        "sm2_sign": per_second(lambda i: sm2_sign(private, body), 300),
        "sm2_verify_kept_key": per_second(lambda i: sm2_verify(public, body, signatures[i % 50]), 300),
        "sm2_verify_fresh_key": per_second(lambda i: sm2_verify(Sm2PublicKey.from_hex(public_hex), body, signatures[i % 50]), 100),
    }
    print(json.dumps({"bench": "gm", "unit": "operations/s", **results}))


if __name__ == "__main__":
    main()
