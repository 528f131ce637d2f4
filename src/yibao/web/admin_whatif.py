"""/admin/whatif — the policy what-if on a page (docs/whatif.md): the operator uploads a new policy file and names a
period; the page answers with the change in fund spend per layer (with a chart: stored beside re-priced), per insurance
type and institution level, the persons most affected and what could not be priced. The same service as
`yibao whatif` (services/care/whatif.py); it reads only, so the post is answered with the figures (nothing to redirect
to, nothing to do twice).
"""

from __future__ import annotations

import asyncio
import re
from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from yibao.domain.errors import InputError, PolicyError, YibaoError
from yibao.domain.money import format_yuan
from yibao.policies.loader import load_policy_bytes
from yibao.services.books import volumes
from yibao.services.care import whatif
from yibao.web import charts, forms, i18n, render
from yibao.web.admin import AREA, _page, region_name
from yibao.web.auth import operator, platform

router = APIRouter(include_in_schema=False)
MAX_POLICY_BYTES = 256 * 1024  # the shipped files are ~6 KB
KEEP = ("from", "to", "top")
STORED, REPRICED = "#8ab8ec", "#0b5cad"  # the stored figure light, the what-if's dark: each pair reads old → new


def _date(form: forms.Form, name: str, zh: str, en: str) -> date:
    try:
        return date.fromisoformat(form.require(name, zh, en))
    except ValueError:
        raise InputError(name, "invalid_date", f"{zh}应为 YYYY-MM-DD", f"{en} must be a date as YYYY-MM-DD") from None


def _top(form: forms.Form) -> int:
    value = form.get("top") or "10"
    if not value.isdigit() or not 1 <= int(value) <= whatif.MAX_TOP:
        raise InputError("top", "out_of_range", f"人数应在1–{whatif.MAX_TOP}之间", f"must be between 1 and {whatif.MAX_TOP}")
    return int(value)


@router.get("/admin/whatif")
async def whatif_page(request: Request) -> Response:
    who = await operator(request)
    today = volumes.local_day(platform(request).now())
    return _page(request, who, "admin/whatif.html", nav="whatif", report=None, default_from=date(today.year, 1, 1).isoformat(),
                 default_to=(today - timedelta(days=1)).isoformat(), max_kb=MAX_POLICY_BYTES // 1024)


@router.post("/admin/whatif")
async def run_whatif(request: Request) -> Response:
    """Price the period again under the uploaded policy and show the figures (a long history takes a while: the work runs
    on a thread of its own, in one read unit, never on the server's event loop)."""
    who = await operator(request)
    p = platform(request)
    lang = render.lang_of(request)
    try:
        form = await forms.read(request, AREA, who.cookie)
    except YibaoError as exc:
        return render.redirect(request, "/admin/whatif", error=exc)
    upload = form.files.get("policy")
    raw, name = b"", ""
    if upload is not None:  # an empty file input still sends a part (no name, no bytes)
        try:
            raw, name = await upload.read(MAX_POLICY_BYTES + 1), (upload.filename or "")[:100]
        finally:
            await upload.close()  # its spooled temporary file, now, not whenever it is collected
    try:
        if not name:
            raise InputError("policy", "required", "请选择新的策略文件（YAML）", "choose the new policy file (YAML)")
        if len(raw) > MAX_POLICY_BYTES:
            raise InputError("policy", "too_large", f"策略文件不能超过 {MAX_POLICY_BYTES // 1024} KB",
                             f"the policy file must not exceed {MAX_POLICY_BYTES // 1024} KB")
        try:
            policy = load_policy_bytes(raw, name)
        except PolicyError as exc:  # the page shows a message only: where in the file goes into it, as the CLI says it
            raise PolicyError(exc.field, exc.code, f"{exc.field}：{exc.message_zh}", f"{exc.field}: {exc.message_en}") from None
        start, end = _date(form, "from", "开始日期", "the first day"), _date(form, "to", "结束日期", "the last day")
        top = _top(form)
        whatif.check_period(policy, start, end, None)
        report = await asyncio.to_thread(p.db.run, lambda c: whatif.replay(c, policy, start=start, end=end, top=top), write=False)
    except YibaoError as exc:
        return render.redirect(request, "/admin/whatif", error=exc, values=form.values(*KEEP))

    def t(key: str, **kw: Any) -> str:
        return i18n.text(lang, key, **kw)

    def label(zh: str, en: str) -> str:
        return zh if lang == "zh" else en

    def pairs(rows: list[tuple[str, int, int]]) -> list[tuple[str, int]]:
        # A chart's label without its parenthesis (the tables beside it give the full names): it must fit the chart's width.
        def short(name: str) -> str:
            return re.sub(r"\s*[（(].*?[）)]", "", name)
        return [item for name, old, new in rows
                for item in ((f"{short(name)} · {t('whatif_stored')}", old), (f"{short(name)} · {t('whatif_new')}", new))]

    money = lambda fen: f"¥{format_yuan(fen)}"  # noqa: E731
    layers = charts.bar_chart(pairs([(label(r["zh"], r["en"]), r["old"], r["new"]) for r in report.layer_rows()]), chart_id="chart-whatif-layers",
                              title=t("whatif_chart_layers"), empty=t("whatif_nothing"), fmt=money, colours=(STORED, REPRICED))
    levels = charts.bar_chart(pairs([(label(g.zh, g.en), g.fund_old, g.fund_new) for g in report.levels()]), chart_id="chart-whatif-levels",
                              title=t("whatif_chart_levels"), empty=t("whatif_nothing"), fmt=money, colours=(STORED, REPRICED))
    return _page(request, who, "admin/whatif.html", nav="whatif", report=report, default_from=start.isoformat(), default_to=end.isoformat(),
                 top=top, max_kb=MAX_POLICY_BYTES // 1024, layers_svg=render.markup_svg(layers), levels_svg=render.markup_svg(levels),
                 not_repriced=whatif.NOT_REPRICED, region_label=region_name(report.region, report.policy.year, lang),
                 policy_name=name)
