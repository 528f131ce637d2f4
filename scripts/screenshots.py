"""`make screenshots`: start the demo server, use the three pages as demo users, and save what they
show into docs/screenshots/ — each of /app, /cashier and /admin at phone width (390×844, `*-phone.png`)
and at desktop width (1366×900, `*-desktop.png`), /admin/reconciliation and /admin/clearing (desktop), and a few moments of a payment: the receipt, a
completed one-code payment with its refund form, a bill on the phone (待支付), the credit page, the holder's 支付记录,
the cashier's 交班汇总 and the audit log. Chromium is Debian's (/usr/bin/chromium); Chinese text needs a CJK font
(`apt-get install fonts-noto-cjk`), without which the pictures show boxes: the script refuses then.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("YIBAO_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _check_tools() -> None:
    if not os.path.exists(CHROMIUM):
        sys.exit(f"screenshots: no Chromium at {CHROMIUM}; install Debian's package: apt-get install -y chromium")
    fonts = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True).stdout if shutil.which("fc-list") else ""
    if not fonts.strip():
        sys.exit("screenshots: no Chinese font, the pages would show boxes; install one: apt-get install -y fonts-noto-cjk")


def _serve(workdir: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "YIBAO_SECRET_FILE": str(workdir / "secret.key")}
    env.pop("YIBAO_DATABASE_URL", None)
    yibao = Path(sys.executable).with_name("yibao")
    server = subprocess.Popen([str(yibao), "serve", "--demo", "--port", str(port), "--database", f"sqlite:///{workdir}/yibao.db"], cwd=workdir, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"screenshots: the demo server stopped:\n{server.stderr.read()}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    sys.exit("screenshots: the demo server did not start within 60 s")


def _holder(browser, base: str):  # noqa: ANN001, ANN202
    ctx = browser.new_context(viewport=PHONE, base_url=base, is_mobile=True, has_touch=True, device_scale_factor=2, locale="zh-CN")
    page = ctx.new_page()
    page.goto("/app/login")
    page.fill("#phone", "13800138001")
    page.click("#send-code")
    expect(page.locator("#flash")).to_be_visible()
    outbox = ctx.new_page()
    outbox.goto("/sandbox/sms/outbox")  # the sandbox SMS gateway keeps what it sent; the platform keeps no text
    code = re.search(r"验证码为 (\d{6})", outbox.locator("#outbox li").first.inner_text()).group(1)
    outbox.close()
    page.fill("#code", code)
    page.click("#log-in")
    page.click("#show-code")
    expect(page.locator("#qr svg")).to_be_visible()
    return ctx, page


def _scan_and_presettle(cashier, code: str) -> None:  # noqa: ANN001
    """At /cashier: the holder's code scanned (a visit opens), the sample fee lines loaded, the split shown."""
    cashier.fill("#code", code)
    cashier.click("#verify-code")
    cashier.click("#load-sample")
    cashier.click("#presettle")
    expect(cashier.locator("#split")).to_be_visible()


def _both(page, name: str, first: dict) -> None:  # noqa: ANN001
    """The page at the width it was opened with, then at the other one (the same page, resized)."""
    for size in (first, DESKTOP if first is PHONE else PHONE):
        page.set_viewport_size(size)
        page.screenshot(path=OUT / f"{name}-{'phone' if size is PHONE else 'desktop'}.png", full_page=size is DESKTOP)
    page.set_viewport_size(first)


def main() -> None:
    _check_tools()
    OUT.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="yibao-screens-") as tmp:
        server = _serve(Path(tmp), port)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                ctx, phone = _holder(browser, base)
                _both(phone, "app", PHONE)
                code = re.sub(r"\D", "", phone.locator("#barcode text").text_content())

                desk = browser.new_context(viewport=DESKTOP, base_url=base, locale="zh-CN")
                cashier = desk.new_page()
                cashier.goto("/cashier")
                cashier.fill("#credential", "H440300L3.demo-h440300l3")
                cashier.click("#cashier-log-in")
                _scan_and_presettle(cashier, code)
                _both(cashier, "cashier", DESKTOP)
                cashier.click("#confirm-settle")
                expect(cashier.locator("#receipt")).to_be_visible()
                cashier.screenshot(path=OUT / "cashier-receipt-desktop.png", full_page=True)

                # 一码支付 with the scan that opened the visit: the completed payment, its split and the refund form.
                phone.goto("/app")
                phone.click("#show-code" if phone.locator("#show-code").count() else "#qr")  # a new code: the one above was used
                expect(phone.locator("#qr svg")).to_be_visible()
                code = re.sub(r"\D", "", phone.locator("#barcode text").text_content())
                cashier.goto("/cashier")
                _scan_and_presettle(cashier, code)
                cashier.click("#onecode-pay")
                expect(cashier.locator("#pay-status")).to_have_text("支付完成")
                cashier.screenshot(path=OUT / "cashier-payment-desktop.png", full_page=True)

                # 移动支付: a visit's bill sent to the phone, seen in 待支付 with its split and the PIN step.
                cashier.goto("/cashier")
                cashier.locator("#lookup-form").evaluate("f => { const d = f.closest('details'); if (d) d.open = true; }")
                cashier.fill("#card_no", "D44030000011")
                cashier.click("#lookup")
                cashier.click("#load-sample")
                cashier.click("#publish-bill")
                expect(cashier.locator("#bill-waiting")).to_be_visible()

                admin = desk.new_page()
                admin.goto("/admin")
                admin.fill("#token", "demo-operator-token")
                admin.click("#admin-log-in")
                expect(admin.locator("#chart-counts")).to_be_visible()
                _both(admin, "admin", DESKTOP)
                # 对账: yesterday reconciled with every connected payment institution; 清算: last month, Ningbo–Shenzhen netting.
                admin.goto("/admin/reconciliation")
                admin.click("#recon-run")
                expect(admin.locator("#flash")).to_be_visible()
                admin.screenshot(path=OUT / "admin-reconciliation-desktop.png", full_page=True)
                admin.goto("/admin/clearing?region_a=330200&region_b=440300")
                admin.screenshot(path=OUT / "admin-clearing-desktop.png", full_page=True)

                phone.goto("/app/account")
                phone.screenshot(path=OUT / "app-account-phone.png")
                phone.goto("/app/bills")
                expect(phone.locator(".mobile-bill").first).to_be_visible()
                phone.screenshot(path=OUT / "app-bills-phone.png", full_page=True)
                phone.goto("/app/credit")
                phone.screenshot(path=OUT / "app-credit-phone.png", full_page=True)
                # 支付记录: the holder's payments with their refunds and splits; the cashier's 交班汇总; the audit log, named.
                phone.goto("/app/payments")
                phone.screenshot(path=OUT / "app-payments-phone.png", full_page=True)
                cashier.goto("/cashier/shift")
                cashier.screenshot(path=OUT / "cashier-shift-desktop.png", full_page=True)
                admin.goto("/admin/audit")
                admin.screenshot(path=OUT / "admin-audit-desktop.png")
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=10)
    for name in sorted(OUT.glob("*.png")):
        print(f"saved {name.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
