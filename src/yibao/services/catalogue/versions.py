"""Catalogue versions: import (idempotent per region and version), the version in force on a day, an entry on a day,
the hospitals' paged query."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Connection

from yibao.domain.catalogue import Entry, diff, entry_from_row
from yibao.domain.errors import Conflict, InputError
from yibao.formats.catalogue_csv import CatalogueFile
from yibao.services.agency.policies import require_known_region
from yibao.services.catalogue.views import entry_view
from yibao.store.sql import LIST_CHUNK, Sql, as_date, list_params, with_list
from yibao.store.tables import catalogue_entries as E
from yibao.store.tables import catalogue_versions as CV

_ENTRY_FIELDS = tuple(f.name for f in fields(Entry))


@dataclass(frozen=True)
class Version:
    id: int
    region: str
    ver: str
    begndate: date
    digest: str
    entries: int


@dataclass(frozen=True)
class Imported:
    version: Version
    created: bool  # False: the same version was already imported (nothing written)
    added: int
    changed: int
    removed: int  # against the version it supersedes

    def view(self) -> dict[str, Any]:
        return {"insu_admdvs": self.version.region, "ver": self.version.ver, "begndate": self.version.begndate.isoformat(),
                "entries": self.version.entries, "created": self.created, "added": self.added, "changed": self.changed,
                "removed": self.removed}


def _version(r: Any) -> Version:
    return Version(int(r.id), r.region, r.ver, r.begndate, r.digest, int(r.entries))


def import_file(conn: Connection, now: datetime, *, file: CatalogueFile, region: str | None = None, actor: str,
                progress: Any = None) -> Imported:
    """Import one catalogue file as its region's version ``file.ver`` (all entries or none).

    The same version again with the same content changes nothing; with other content it is refused (a version, once
    published, is what settled lines were priced with). ``progress(n)`` is told how many entries were written."""
    region = region or file.region
    require_known_region(region, "insu_admdvs")
    if region != file.region:
        raise InputError("insu_admdvs", "region_mismatch", f"文件属于统筹区 {file.region}，不是 {region}",
                         f"the file is region {file.region}'s, not {region}'s")
    existing = conn.execute(select(CV).where(CV.c.region == region, CV.c.ver == file.ver)).first()
    if existing is not None:
        if existing.digest != file.digest:
            raise Conflict("ver", "catalogue_version_differs", f"统筹区 {region} 的目录版本 {file.ver} 已导入且内容不同；新内容请用新版本号",
                           f"version {file.ver} of region {region}'s catalogue was imported with other content; give new content a new version")
        return Imported(_version(existing), False, 0, 0, 0)
    # What this version supersedes: the one in force on its first day. An entry whose content is unchanged keeps
    # its updt_time, so "updated since" finds only what changed.
    before = in_force(conn, region, file.begndate)
    old = {e.hilist_code: (e, t) for e, t in _entries_with_time(conn, before.id)} if before else {}
    vid = conn.execute(CV.insert().values(region=region, ver=file.ver, begndate=file.begndate, digest=file.digest, source=file.name[:200],
                                          entries=len(file.entries), imported_by=actor[:80], created_at=now)).inserted_primary_key[0]
    added = changed = 0
    batch = []
    for e in file.entries:
        prior = old.get(e.hilist_code)
        if prior is None:
            added += 1
        elif prior[0] != e:
            changed += 1
        updt = prior[1] if prior is not None and prior[0] == e else now
        batch.append({**e.as_row(), "version_id": vid, "region": region, "updt_time": updt})
        if len(batch) >= 500:
            conn.execute(E.insert(), batch)
            if progress:
                progress(len(batch))
            batch = []
    if batch:
        conn.execute(E.insert(), batch)
        if progress:
            progress(len(batch))
    removed = len(old.keys() - {e.hilist_code for e in file.entries})
    row = conn.execute(select(CV).where(CV.c.id == vid)).one()
    return Imported(_version(row), True, added, changed, removed)


# What every fee line asks (its version in force, its entry there) as prepared SQL (store/sql.py): Core spent ~100 µs
# building and keying each, three times per line uploaded.
_IN_FORCE = Sql("""SELECT id, region, ver, begndate, digest, entries FROM catalogue_versions WHERE region = :region AND begndate <= :day
                   ORDER BY begndate DESC, id DESC LIMIT 1""")
_ENTRY = Sql(f"SELECT {', '.join(f.name for f in fields(Entry))} FROM catalogue_entries WHERE version_id = :version_id AND hilist_code = :code")


def in_force(conn: Connection, region: str, day: date) -> Version | None:
    """The region's version in force on ``day``: the latest to begin on or before it (a later import of the same start wins)."""
    r = _IN_FORCE(conn, {"region": region, "day": day}).first()
    return Version(int(r.id), r.region, r.ver, as_date(r.begndate), r.digest, int(r.entries)) if r else None


def versions(conn: Connection, region: str) -> list[Version]:
    return [_version(r) for r in conn.execute(select(CV).where(CV.c.region == region).order_by(CV.c.begndate, CV.c.id))]


def _entries_with_time(conn: Connection, version_id: int) -> list[tuple[Entry, datetime]]:
    rows = conn.execute(select(E).where(E.c.version_id == version_id).order_by(E.c.hilist_code)).all()
    return [(entry_from_row(r._mapping), r.updt_time) for r in rows]


def entries(conn: Connection, version_id: int) -> list[Entry]:
    return [e for e, _ in _entries_with_time(conn, version_id)]


@dataclass(frozen=True)
class Found:
    entry: Entry | None  # None: not in the version in force
    version: Version | None  # None: no version in force
    later: Version | None = None  # when absent: a later version that lists it (so the reason can say "from …")


def _entry(r: Any) -> Entry:
    row = r._asdict()
    row["begndate"], row["enddate"] = as_date(row["begndate"]), as_date(row["enddate"]) if row["enddate"] is not None else None
    return entry_from_row(row)


def _later(conn: Connection, region: str, hilist_code: str, day: date) -> Version | None:
    """A version beginning after ``day`` that lists the code (so a refusal can say "from …")."""
    later = conn.execute(select(CV).join(E, E.c.version_id == CV.c.id).where(
        CV.c.region == region, CV.c.begndate > day, E.c.hilist_code == hilist_code).order_by(CV.c.begndate).limit(1)).first()
    return _version(later) if later else None


def entry_on(conn: Connection, region: str, hilist_code: str, day: date) -> Found:
    """The entry of ``hilist_code`` in the region's version in force on ``day``."""
    version = in_force(conn, region, day)
    if version is not None:
        r = _ENTRY(conn, {"version_id": version.id, "code": hilist_code}).first()
        if r is not None:
            return Found(_entry(r), version)
    return Found(None, version, _later(conn, region, hilist_code, day))


_ENTRIES = f"SELECT {', '.join(_ENTRY_FIELDS)} FROM catalogue_entries WHERE version_id = :version_id AND hilist_code IN ({{list}})"


class Upload:
    """One upload's view of a region's catalogue: the version in force read once per fee day, and the entries of all
    the upload's codes in one statement per version — instead of two statements per line (a payment's bill of six lines
    asked twelve times)."""

    def __init__(self, conn: Connection, region: str, codes: set[str]) -> None:
        self._conn, self._region, self._codes = conn, region, sorted(codes)
        self._versions: dict[date, Version | None] = {}
        self._entries: dict[int, dict[str, Entry]] = {}

    def entry_on(self, hilist_code: str, day: date) -> Found:
        if day not in self._versions:
            self._versions[day] = in_force(self._conn, self._region, day)
        version = self._versions[day]
        if version is not None:
            if version.id not in self._entries:
                self._entries[version.id] = self._read(version.id)
            entry = self._entries[version.id].get(hilist_code)
            if entry is not None:
                return Found(entry, version)
        return Found(None, version, _later(self._conn, self._region, hilist_code, day))

    def _read(self, version_id: int) -> dict[str, Entry]:
        out: dict[str, Entry] = {}
        for i in range(0, len(self._codes), LIST_CHUNK):
            chunk = self._codes[i:i + LIST_CHUNK]
            out.update((r.hilist_code, _entry(r)) for r in with_list(_ENTRIES, len(chunk))(self._conn, list_params(chunk, version_id=version_id)))
        return out


def known_code(conn: Connection, region: str, hilist_code: str) -> bool:
    """Whether any version of the region's catalogue lists the code (a mapping may point only at such a code)."""
    return conn.execute(select(E.c.id).where(E.c.region == region, E.c.hilist_code == hilist_code).limit(1)).first() is not None


def query(conn: Connection, *, region: str, day: date, hilist_code: str | None = None, updated_since: datetime | None = None,
          page_num: int = 1, page_size: int = 100, list_types: tuple[str, ...] | None = None, begins_from: date | None = None,
          having: str | None = None) -> dict[str, Any]:
    """The version in force on ``day``, a page of its entries (by code), optionally one code, those changed since a time,
    of some list types, beginning on or after a date, or only those with a price cap (``having="cap"``, 1318) or their
    own class-B self-pay ratio (``having="ratio"``, 1319)."""
    version = in_force(conn, region, day)
    if version is None:
        return {"insu_admdvs": region, "ver": None, "begndate": None, "page_num": page_num, "page_size": page_size, "recordCounts": 0,
                "pages": 0, "data": []}
    cond = [E.c.version_id == version.id]
    if hilist_code is not None:
        cond.append(E.c.hilist_code == hilist_code)
    if list_types is not None:
        cond.append(E.c.list_type.in_(list_types))
    if begins_from is not None:
        cond.append(E.c.begndate >= begins_from)
    if having == "cap":
        cond.append(E.c.pric_uplmt_amt.is_not(None))
    elif having == "ratio":
        cond.append(E.c.selfpay_prop.is_not(None))
    elif having is not None:
        raise ValueError(having)
    if updated_since is not None:  # stored in UTC (SQLite keeps no offset): compare in UTC
        cond.append(E.c.updt_time > updated_since.astimezone(timezone.utc))
    total = conn.execute(select(func.count()).select_from(E).where(and_(*cond))).scalar_one()
    rows = conn.execute(select(E).where(and_(*cond)).order_by(E.c.hilist_code).offset((page_num - 1) * page_size).limit(page_size)).all()
    return {"insu_admdvs": region, "ver": version.ver, "begndate": version.begndate.isoformat(), "page_num": page_num,
            "page_size": page_size, "recordCounts": int(total), "pages": -(-int(total) // page_size),
            "data": [entry_view(entry_from_row(r._mapping), r.updt_time) for r in rows]}


def by_ver(conn: Connection, region: str, ver: str) -> Version | None:
    r = conn.execute(select(CV).where(CV.c.region == region, CV.c.ver == ver)).first()
    return _version(r) if r else None


@dataclass(frozen=True)
class Change:
    entry: Entry
    updt_time: datetime
    valid: bool  # False: listed in the version the caller has, gone from the one in force (vali_flag 0)


@dataclass(frozen=True)
class Changes:
    version: Version  # in force
    since: Version | None
    rows: tuple[Change, ...]  # by code


def changes(conn: Connection, *, region: str, day: date, list_types: tuple[str, ...], since: Version | None = None) -> Changes | None:
    """The entries of ``list_types`` in the version in force on ``day`` — all of them, or, against ``since`` (a version
    the caller already has), those added or changed since, and those removed (valid False, timed at the import of the
    version in force). None: no version in force."""
    version = in_force(conn, region, day)
    if version is None:
        return None
    now = [(e, t) for e, t in _entries_with_time(conn, version.id) if e.list_type in list_types]
    if since is None:
        return Changes(version, None, tuple(Change(e, t, True) for e, t in now))
    old = [e for e in entries(conn, since.id) if e.list_type in list_types]
    d = diff(old, [e for e, _ in now])
    wanted = {e.hilist_code for e in d.added} | {new.hilist_code for _, new, _ in d.changed}
    rows = [Change(e, t, True) for e, t in now if e.hilist_code in wanted]
    if d.removed:
        imported = conn.execute(select(CV.c.created_at).where(CV.c.id == version.id)).scalar_one()
        rows += [Change(e, imported, False) for e in d.removed]
    return Changes(version, since, tuple(sorted(rows, key=lambda c: c.entry.hilist_code)))
