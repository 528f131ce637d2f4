"""`yibao sandbox NAME` runs one sandbox institution alone; the platform reaches it with keys from the same folder."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.channels import sign_on_page
from yibao.channels import AgreementRequest, PaymentRequest, holder_token
from yibao.sandbox.channels import pair


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_sandbox_run_alone_serves_the_platform_that_shares_its_key_folder(tmp_path: Path):
    port = free_port()
    yibao = Path(sys.executable).with_name("yibao")
    proc = subprocess.Popen([str(yibao), "sandbox", "alipay", "--port", str(port), "--keys", str(tmp_path), "--seed", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "NO_COLOR": "1"})
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                info = httpx.get(f"{url}/sandbox/info", timeout=1).json()
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read().decode() if proc.stdout else ""
                time.sleep(0.1)
        assert info["sandbox"] is True and "SANDBOX" in info["title"] and info["name"] == "alipay"
        assert {p.name for p in tmp_path.iterdir()} == {"alipay-sandbox-key.pem", "alipay-platform-key.pem"}
        assert oct((tmp_path / "alipay-platform-key.pem").stat().st_mode & 0o777) == "0o600"
        channel = pair("alipay", key_dir=tmp_path).connector(url, timeout=2)  # the platform side: same folder, its own key

        async def story():
            agreement = await sign_on_page(channel, AgreementRequest("CLI00001", holder_token(b"x" * 32, "p", "alipay"), 100_00))
            return await channel.pay(PaymentRequest("CLI00002", 12_00, "门诊缴费", agreement.agreement_no))
        assert asyncio.run(story()).status == "succeeded"
    finally:
        proc.terminate()
        proc.communicate(timeout=10)  # also closes its output pipe


def test_an_unknown_sandbox_name_is_an_error():
    result = subprocess.run([str(Path(sys.executable).with_name("yibao")), "sandbox", "paypal"], capture_output=True, text=True)
    assert result.returncode == 2 and "paypal" in result.stderr
