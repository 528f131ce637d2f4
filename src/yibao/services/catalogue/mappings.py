"""对照: an institution's own item codes (medins_list_codg) mapped to national codes (hilist_code), uploaded in bulk by
the institution and resolved when it uploads fee lines with its own codes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from yibao.domain.errors import InputError
from yibao.services.agency.institutions import Institution
from yibao.services.catalogue import versions
from yibao.services.catalogue.views import mapping_view
from yibao.store.sql import LIST_CHUNK, Sql, list_params, with_list
from yibao.store.tables import item_mappings as M


def _text(item: dict, key: str, path: str, most: int) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > most:
        raise InputError(f"{path}.{key}", "invalid_text", f"应为1–{most}个字符", f"must be 1–{most} characters")
    return value.strip()


def put(conn: Connection, now: datetime, *, institution: Institution, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Create or replace the institution's mappings (all or none). Each must point at a code the region's catalogue
    lists (in some version); a code repeated in one upload is refused."""
    if not items:
        raise InputError("mappings", "empty", "对照列表不能为空", "must be a non-empty list")
    seen: set[str] = set()
    rows = []
    for i, item in enumerate(items):
        path = f"mappings[{i}]"
        own = _text(item, "medins_list_codg", path, 50)
        code = _text(item, "med_list_codg", path, 30)
        name = _text(item, "medins_list_name", path, 200) if item.get("medins_list_name") is not None else own
        if own in seen:
            raise InputError(f"{path}.medins_list_codg", "duplicate_code", "同一批次内本院编码重复", "repeats an institution code in this upload")
        seen.add(own)
        if not versions.known_code(conn, institution.region, code):
            raise InputError(f"{path}.med_list_codg", "not_in_catalogue", f"统筹区 {institution.region} 的医保目录中没有编码 {code}",
                             f"{code} is in no version of region {institution.region}'s catalogue")
        rows.append((own, name, code))
    existing = {r.medins_list_codg: r for r in conn.execute(select(M).where(
        M.c.institution_id == institution.id, M.c.medins_list_codg.in_([r[0] for r in rows]))).all()}
    for own, name, code in rows:
        old = existing.get(own)
        if old is None:
            conn.execute(M.insert().values(institution_id=institution.id, medins_list_codg=own, region=institution.region,
                                           medins_list_name=name, hilist_code=code, updated_at=now, created_at=now))
        elif (old.medins_list_name, old.hilist_code) != (name, code):
            conn.execute(update(M).where(M.c.institution_id == institution.id, M.c.medins_list_codg == own)
                         .values(medins_list_name=name, hilist_code=code, updated_at=now))
    return lookup(conn, institution_id=institution.id, codes=[r[0] for r in rows])


def lookup(conn: Connection, *, institution_id: str, codes: list[str] | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    q = select(M).where(M.c.institution_id == institution_id)
    if codes is not None:
        q = q.where(M.c.medins_list_codg.in_(codes))
    return [mapping_view(r) for r in conn.execute(q.order_by(M.c.medins_list_codg).limit(limit)).all()]


# Asked for every fee line an institution uploads with its own code: prepared SQL (store/sql.py), not Core (~100 µs each).
_RESOLVE = Sql("SELECT hilist_code, medins_list_name FROM item_mappings WHERE institution_id = :institution_id AND medins_list_codg = :code")


def resolve(conn: Connection, institution_id: str, medins_list_codg: str) -> tuple[str, str] | None:
    """(hilist_code, medins_list_name) the institution mapped its code to, or None."""
    r = _RESOLVE(conn, {"institution_id": institution_id, "code": medins_list_codg}).first()
    return (r.hilist_code, r.medins_list_name) if r else None


_RESOLVE_MANY = """SELECT medins_list_codg, hilist_code, medins_list_name FROM item_mappings
                   WHERE institution_id = :institution_id AND medins_list_codg IN ({list})"""


def resolve_many(conn: Connection, institution_id: str, codes: set[str]) -> dict[str, tuple[str, str]]:
    """`resolve` for every code of an upload in one statement (a visit's lines in one round trip, not one each);
    a code with no mapping is absent."""
    if len(codes) <= 1:
        found = {code: resolve(conn, institution_id, code) for code in codes}
        return {code: hit for code, hit in found.items() if hit is not None}
    ordered, out = sorted(codes), {}
    for i in range(0, len(ordered), LIST_CHUNK):
        chunk = ordered[i:i + LIST_CHUNK]
        for r in with_list(_RESOLVE_MANY, len(chunk))(conn, list_params(chunk, institution_id=institution_id)):
            out[r.medins_list_codg] = (r.hilist_code, r.medins_list_name)
    return out
