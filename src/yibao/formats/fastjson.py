"""JSON for the hot paths, by orjson: a settlement's document is serialised for its row, for the
idempotency record and for the response, and json.dumps took ~10% of a settlement's CPU.

Output is compact UTF-8 JSON (what ``json.dumps(ensure_ascii=False, separators=(",", ":"))`` gives);
datetimes and other non-JSON values are written as ``str(value)``, as ``json.dumps(default=str)`` did.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS


def dumps_bytes(obj: Any, *, sort_keys: bool = False) -> bytes:
    try:
        return orjson.dumps(obj, default=str, option=_OPTIONS | orjson.OPT_SORT_KEYS if sort_keys else _OPTIONS)
    except orjson.JSONEncodeError:  # an integer past 64 bits, or a subclass orjson will not take: the slow path
        return json.dumps(obj, default=str, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys).encode("utf-8")


def dumps(obj: Any, *, sort_keys: bool = False) -> str:
    return dumps_bytes(obj, sort_keys=sort_keys).decode("utf-8")


loads = orjson.loads
