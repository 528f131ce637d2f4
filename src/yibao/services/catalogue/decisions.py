"""What the platform decides for an uploaded fee line: the code it stands for (the institution's mapping when it
sent its own code), the entry in force on the fee's date in the treatment region, and the decision
(domain.catalogue.decide) — class, cap, ratio, or own expense with the reason."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from yibao.domain import catalogue as rules
from yibao.domain.errors import InputError
from yibao.services.catalogue import mappings, versions


@dataclass(frozen=True)
class Code:
    hilist_code: str | None  # None: the institution's code is not mapped
    name: str | None  # the mapping's name for it, if any
    unmapped: rules.Decision | None = None


def resolve(conn: Connection, institution_id: str, *, med_list_codg: str | None, medins_list_codg: str | None, path: str,
            mapped_codes: Mapping[str, tuple[str, str]] | None = None) -> Code:
    """The national code a line stands for. Both codes given must agree with the institution's mapping.
    ``mapped_codes``: the institution's mappings already read for the whole upload (`mappings.resolve_many`)."""
    if medins_list_codg is None:
        return Code(med_list_codg, None)
    mapped = mapped_codes.get(medins_list_codg) if mapped_codes is not None else mappings.resolve(conn, institution_id, medins_list_codg)
    if mapped is None:
        if med_list_codg is not None:  # the national code is given: the missing mapping does not matter
            return Code(med_list_codg, None)
        return Code(None, None, rules.unmapped(medins_list_codg))
    if med_list_codg is not None and med_list_codg != mapped[0]:
        raise InputError(f"{path}.med_list_codg", "codes_disagree", f"本院编码 {medins_list_codg} 已对照为 {mapped[0]}，与上传的 {med_list_codg} 不符",
                         f"your code {medins_list_codg} is mapped to {mapped[0]}, not {med_list_codg}")
    return Code(mapped[0], mapped[1])


@dataclass(frozen=True)
class Decided:
    decision: rules.Decision
    catalogue_version: str | None
    entry_name: str | None


def decide(conn: Connection, *, region: str, hilist_code: str, facts: rules.LineFacts, default_b_ratio: int,
           catalogue: versions.Upload | None = None) -> Decided:
    """The decision for ``hilist_code`` on ``facts.day`` under the region's catalogue (``catalogue``: the upload's view
    of it, which reads each version and the upload's entries once)."""
    found = catalogue.entry_on(hilist_code, facts.day) if catalogue is not None else versions.entry_on(conn, region, hilist_code, facts.day)
    if found.entry is None:
        if found.later is not None:
            return Decided(rules.own_expense(
                "not_yet_valid", f"{hilist_code} 自 {found.later.begndate} 起（目录版本 {found.later.ver}）纳入医保目录，费用发生日 {facts.day} 尚未生效，全自费",
                f"{hilist_code} enters the catalogue on {found.later.begndate} (version {found.later.ver}), after the fee's date "
                f"{facts.day}: own expense"), found.later.ver, None)
        if found.version is None:
            return Decided(rules.no_catalogue(region, facts.day), None, None)
        return Decided(rules.unknown_code(hilist_code), found.version.ver, None)
    assert found.version is not None
    return Decided(rules.decide(found.entry, facts, default_b_ratio), found.version.ver, found.entry.hilist_name)
