"""Files exchanged with institutions (the national interface's 9101 upload and 9102 download): how big, how long they
are kept, what a file name may be, and an upload's bytes from its base64 text. Pure."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import timedelta

from yibao.domain.errors import InputError

MAX_BYTES = 5 * 1024 * 1024  # an upload's most (a month's 3202 detail file is far smaller)
TTL = timedelta(hours=24)  # a file may be fetched until then (dld_endtime); the national practice keeps downloads a day [?]
KEEP_EXPIRED = timedelta(days=7)  # an expired file is still known (refused "expired", not "not found") this long, then deleted
_NAME_RE = re.compile(r"^[^\x00-\x1f/\\:*?\"<>|]{1,200}$")  # no path, no control characters


def check_filename(value: object, field: str) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value) or value.strip(" .") == "":
        raise InputError(field, "invalid_filename", "文件名应为1–200个字符，不含路径分隔符和控制字符",
                         "must be 1–200 characters, without path separators or control characters")
    return value


def decode_upload(value: object, field: str, most: int = MAX_BYTES) -> bytes:
    """An upload's bytes from its base64 text (standard alphabet, padded). Too long a text is refused before decoding."""
    if not isinstance(value, str) or not value:
        raise InputError(field, "required", "缺少文件内容（base64）", "the file's content (base64) is required")
    if len(value) > 4 * -(-most // 3):
        raise InputError(field, "file_too_large", f"文件超过 {most // (1024 * 1024)} MB 上限", f"the file is larger than {most // (1024 * 1024)} MB")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(field, "invalid_base64", "文件内容不是有效的 base64 编码", "the file's content is not valid base64") from None
    if not data:
        raise InputError(field, "empty_file", "文件为空", "the file is empty")
    if len(data) > most:
        raise InputError(field, "file_too_large", f"文件超过 {most // (1024 * 1024)} MB 上限", f"the file is larger than {most // (1024 * 1024)} MB")
    return data
