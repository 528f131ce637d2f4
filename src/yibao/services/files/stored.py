"""Storing a file for an institution and handing it back: `put` answers a `file_qury_no` (unguessable), `fetch` the
file — to the institution it belongs to, before it expires."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from yibao.domain import files as rules
from yibao.domain.errors import Conflict, NotFound
from yibao.formats.fsi import inf_time
from yibao.store.tables import exchange_files as F


@dataclass(frozen=True)
class StoredFile:
    file_qury_no: str
    institution_id: str
    infno: str
    filename: str
    size: int
    sha256: str
    data_cnt: int | None
    expires_at: datetime
    content: bytes = b""


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at  # SQLite hands back naive UTC


def put(conn: Connection, now: datetime, *, institution_id: str, region: str, infno: str, filename: str, content: bytes,
        data_cnt: int | None = None, ttl: timedelta = rules.TTL) -> StoredFile:
    """Store ``content`` for the institution until ``now + ttl``; files expired long ago are dropped on the way."""
    rules.check_filename(filename, "filename")
    if len(content) > rules.MAX_BYTES:
        raise Conflict("file", "file_too_large", f"文件超过 {rules.MAX_BYTES // (1024 * 1024)} MB 上限",
                       f"the file is larger than {rules.MAX_BYTES // (1024 * 1024)} MB")
    conn.execute(delete(F).where(F.c.expires_at < now - rules.KEEP_EXPIRED))
    stored = StoredFile(f"fsi/plc/{secrets.token_hex(12)}", institution_id, infno, filename, len(content),
                        hashlib.sha256(content).hexdigest(), data_cnt, now + ttl)
    conn.execute(F.insert().values(file_qury_no=stored.file_qury_no, institution_id=institution_id, region=region, infno=infno,
                                   filename=filename, content=content, size=stored.size, sha256=stored.sha256, data_cnt=data_cnt,
                                   expires_at=stored.expires_at, created_at=now))
    return stored


def fetch(conn: Connection, now: datetime, *, institution_id: str, file_qury_no: str, filename: str | None = None) -> StoredFile:
    """The file, with its content. Another institution's file is answered as one that does not exist (nothing said
    about it); an expired one is refused saying when it expired. ``filename``, when given, must be the file's own or
    "plc" (the national practice for the files 1301–1319 build [?])."""
    r = conn.execute(select(F).where(F.c.file_qury_no == file_qury_no)).first()
    if r is None or r.institution_id != institution_id:
        raise NotFound("file_qury_no", "file_not_found", "文件不存在或不属于本机构", "no such file for this institution")
    expires = _utc(r.expires_at)
    if now >= expires:
        raise Conflict("file_qury_no", "file_expired", f"文件已于 {inf_time(expires)}（北京时间）过期，请重新下载或上传",
                       f"the file expired at {inf_time(expires)} Beijing time: ask for it again")
    if filename not in (None, "", "plc", r.filename):
        raise NotFound("filename", "filename_mismatch", f"文件名与该文件查询号不符（应为 {r.filename} 或 plc）",
                       f"is not the name of that file ({r.filename}, or plc)")
    return StoredFile(r.file_qury_no, r.institution_id, r.infno, r.filename, int(r.size), r.sha256,
                      None if r.data_cnt is None else int(r.data_cnt), expires, bytes(r.content))
