"""SANDBOX: the institution's own signing page (签约页面), as a real HTML page the holder opens.

A real institution shows the holder, in its own app or site, the merchant, the password-free limit and what
they agree to; the holder confirms or declines there, the institution notifies the merchant (signed) of a
signed agreement and sends the holder back to the merchant's return URL. Each sandbox opens a session in its
own protocol (WeChat's pre-entrust-sign, Alipay's `alipay.user.agreement.page.sign` redirect, UnionPay's
front-end form) and this module serves the page of that session:

    GET  {PATH}/{session}   the page: merchant, limit, 确认签约 / 暂不签约
    POST {PATH}/{session}   the holder's choice (form `decision=confirm|decline`) → 303 to the return URL with
                            `out_agreement_no` and `result=signed|declined|failed` (or a result page without one)

The POST is the holder's browser on the institution's page: the merchant is not a party to it and cannot
make it (nothing the platform calls reaches it). A confirmed signing is notified by the sandbox's notifier
like every other event (its knobs drop, duplicate or mis-sign it); a declined one is not notified.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from yibao.channels.wire import fen_to_yuan
from yibao.sandbox.channels.core import Books, SandboxRefusal, SigningSession

PATH = "/sandbox-page/sign"


def page_url(base_url: str, session_id: str) -> str:
    return f"{base_url.rstrip('/')}{PATH}/{session_id}"


def _with_query(url: str, extra: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = urlencode([*parse_qsl(parts.query, keep_blank_values=True), *extra.items()])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


_STYLE = ("body{font-family:system-ui,'PingFang SC','Noto Sans CJK SC',sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem}"
          "dl{display:grid;grid-template-columns:auto 1fr;gap:.4rem 1rem}dt{color:#555}.en{color:#666;font-size:.9em}"
          "button{font-size:1rem;padding:.6rem 1.2rem;margin-right:.6rem}.sandbox{background:#fff3cd;padding:.4rem .6rem}")


def render(session: SigningSession, institution: str, action: str | None = None) -> str:
    """The page in Simplified Chinese first, English alongside. ``action``: where its form posts, relative to the
    page's own URL (the sandbox may be mounted under a prefix); default: the page is at PATH/{session}."""
    e = html.escape
    head = (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
            f'<title>{e(institution)} 免密支付签约 Password-free payment agreement</title><style>{_STYLE}</style></head><body>'
            f'<p class="sandbox">沙箱页面，并非真实的{e(institution)} <span class="en">SANDBOX page, not the real {e(institution)}</span></p>'
            f'<h1>免密支付签约 <span class="en">Password-free payment agreement</span></h1>')
    facts = (f'<dl><dt>商户 <span class="en">Merchant</span></dt><dd id="merchant">{e(session.merchant)}</dd>'
             f'<dt>账户 <span class="en">Account</span></dt><dd>{e(session.display_name)}</dd>'
             f'<dt>单笔免密限额 <span class="en">Limit per payment</span></dt><dd id="limit">¥{e(fen_to_yuan(session.limit_fen))}</dd>'
             f'<dt>协议号 <span class="en">Agreement</span></dt><dd>{e(session.out_agreement_no)}</dd></dl>')
    if session.status == "open":
        body = ('<p>签约后，该商户可在限额内从您的账户免密扣款；您可随时在本机构解约。'
                '<span class="en">Once signed, the merchant may deduct up to the limit without your password; '
                'you may end the agreement here at any time.</span></p>'
                f'<form method="post" action="{e(action or session.id)}">'
                '<button name="decision" value="confirm" type="submit">确认签约 <span class="en">Sign</span></button>'
                '<button name="decision" value="decline" type="submit">暂不签约 <span class="en">Decline</span></button></form>')
    else:
        zh, en = {"signed": ("已签约", "Signed"), "declined": ("您已拒绝签约", "You declined"),
                  "failed": ("签约未成功", "The signing did not succeed")}[session.status]
        body = f'<p id="result" data-result="{e(session.status)}">{zh} <span class="en">{en}</span></p>'
    return head + facts + body + "</body></html>"


def install(app: FastAPI, books: Books, *, institution: str) -> None:
    @app.get(PATH + "/{session_id}", tags=["SANDBOX holder page"], response_class=HTMLResponse,
             summary="SANDBOX: the institution's signing page the holder opens")
    async def page(session_id: str) -> Response:
        try:
            session = books.signing(session_id)
        except SandboxRefusal as exc:
            return HTMLResponse(f"<!doctype html><p>签约会话不存在或已过期 <span>{html.escape(exc.code)}</span></p>", status_code=404)
        return HTMLResponse(render(session, institution))

    @app.post(PATH + "/{session_id}", tags=["SANDBOX holder page"], summary="SANDBOX: the holder confirms or declines on the page")
    async def choose(session_id: str, request: Request) -> Response:
        form: dict[str, Any] = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        decision = form.get("decision")
        if decision not in ("confirm", "decline"):
            return HTMLResponse("<!doctype html><p>请选择确认或拒绝 Choose confirm or decline</p>", status_code=400)
        try:
            session = books.finish_signing(session_id, confirm=decision == "confirm")
        except SandboxRefusal:
            return HTMLResponse("<!doctype html><p>签约会话不存在或已过期 No such signing session</p>", status_code=404)
        if session.return_url:
            return RedirectResponse(_with_query(session.return_url, {"out_agreement_no": session.out_agreement_no,
                                                                      "result": session.status}), status_code=303)
        return HTMLResponse(render(session, institution))
