"""`yibao serve` as a process: production unless --demo. Production refuses to start without strong operator
credentials and a master key from outside (one bilingual line per missing thing, status 2, no traceback),
never on the demo's database, and serves no demo credentials, sandboxes or demo aids; `--demo` (what
`make run` runs) refuses a database the demo did not create and otherwise works end to end, its files 0600."""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx

from yibao.crypto.pii import Keyring
from yibao.sandbox.channels import pair
from yibao.services.agency import connectors as channel_registry
from yibao.services.agency import payment_institutions as pis
from yibao.services.books import audit
from yibao.store import migrate
from yibao.store.db import Database
from yibao.store.tables import institutions

YIBAO = str(Path(sys.executable).with_name("yibao"))
KEY = "11" * 32
TOKEN = "c0ffee4d2b9a7e5f1360d8b4a2c9e7f5"  # 32 characters, 13 different
DEMO_OPERATOR = {"Authorization": "Bearer demo-operator-token"}


def env(**extra: str) -> dict[str, str]:
    """This environment without any YIBAO_ setting (the tests' PYTHONPATH kept), plus ``extra``."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("YIBAO_")}, "NO_COLOR": "1", **extra}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args: list[str], cwd: Path, environ: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([YIBAO, *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=60)  # a refusal takes seconds


def mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


class Server:
    """`yibao serve …` in the background, ready once /healthz answers."""

    def __init__(self, args: list[str], cwd: Path, environ: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([YIBAO, "serve", "--port", str(self.port), *args], cwd=cwd, env=environ,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180  # the demo enrols its people's faces at its first start
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"yibao serve did not come up:\n{self.output}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        out, _ = self.proc.communicate(timeout=30)
        self.output = (out or b"").decode(errors="replace")


def test_bare_serve_refuses_and_says_what_it_needs(tmp_path):
    result = run(["serve", "--port", str(free_port())], tmp_path, env())
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stdout + result.stderr
    assert any("YIBAO_ADMIN_TOKENS" in line and "经办人员凭证" in line and "operator credentials" in line for line in lines), lines
    assert any("YIBAO_SECRET_KEY" in line and "YIBAO_SECRET_FILE" in line and "主密钥" in line and "master key" in line for line in lines), lines
    assert any("--demo" in line for line in lines)
    assert not (tmp_path / ".yibao").exists()  # refused before creating anything: no database, no generated key


def test_a_weak_operator_token_is_refused(tmp_path):
    result = run(["serve", "--port", str(free_port())], tmp_path, env(YIBAO_ADMIN_TOKENS="op:a", YIBAO_SECRET_KEY=KEY))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if "YIBAO_ADMIN_TOKENS" in line]
    assert "operator op's token has only 1 characters" in line and "至少32个字符" in line and "op:a" not in line


def test_a_key_file_others_can_read_is_refused(tmp_path):
    key = tmp_path / "master.key"
    key.write_text(KEY)
    key.chmod(0o644)
    result = run(["serve", "--port", str(free_port())], tmp_path, env(YIBAO_ADMIN_TOKENS=f"ops:{TOKEN}", YIBAO_SECRET_FILE=str(key)))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"chmod 600 {key}" in result.stderr and "YIBAO_SECRET_FILE" in result.stderr


def test_demo_refuses_a_database_it_did_not_create_and_re_points_nothing(tmp_path):
    url = f"sqlite:///{tmp_path}/agency.db"
    db, keyring = Database(url), Keyring(bytes.fromhex(KEY))
    audit.use_key(db, keyring)  # an operator's database: its audit chain keyed as every entrypoint keys it
    migrate.upgrade(db)
    now = db.clock()
    db.run(lambda c: pis.admit(c, now, pi_id="wechat-440300", region="440300", name="微信支付", kind="wallet",
                               admission_ref="深医保准〔2026〕1", actor="operator:alice"))
    real = channel_registry.settings_of(pair("wxpay").connector("https://api.mch.weixin.qq.com",
                                                               notify_url="https://yibao.example/api/v1/channels/wechat-440300/notify"))
    db.run(lambda c: channel_registry.configure(c, keyring, now, pi_id="wechat-440300", actor="operator:alice", **real))
    before = db.run(lambda c: channel_registry.get(c, "wechat-440300"), write=False)
    db.dispose()

    result = run(["serve", "--demo", "--port", str(free_port()), "--database", url], tmp_path, env(YIBAO_SECRET_KEY=KEY))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "the demo did not create" in result.stderr and "不是演示创建的" in result.stderr
    db = Database(url)
    after = db.run(lambda c: channel_registry.get(c, "wechat-440300"), write=False)
    assert (after.base_url, after.version) == ("https://api.mch.weixin.qq.com", before.version)  # not re-pointed at a sandbox
    assert db.run(lambda c: c.execute(institutions.select()).all(), write=False) == []  # no demo world loaded into it
    from yibao.store.tables import platform_marks

    assert db.run(lambda c: c.execute(platform_marks.select()).all(), write=False) == []
    db.dispose()


def test_production_serves_no_demo_credentials_sandboxes_or_aids(tmp_path):
    key = tmp_path / "master.key"
    key.write_text(KEY)
    key.chmod(0o600)
    data = tmp_path / "data"
    server = Server(["--database", f"sqlite:///{data}/yibao.db"], tmp_path,
                    env(YIBAO_ADMIN_TOKENS=f"ops:{TOKEN}", YIBAO_SECRET_FILE=str(key), YIBAO_RECOVERY_INTERVAL="0"))
    try:
        operator = {"Authorization": f"Bearer {TOKEN}"}
        get = lambda path, **kw: httpx.get(f"{server.url}{path}", timeout=30, follow_redirects=True, **kw)  # noqa: E731
        assert get("/api/v1/admin/audit/verify", headers=operator).status_code == 200
        assert get("/api/v1/admin/audit/verify", headers=DEMO_OPERATOR).status_code == 401
        assert get("/api/v1/admin/sandbox/sms", headers=operator).status_code == 404
        assert get("/app/sandbox/sms").status_code == 404
        assert get("/sandbox/wxpay/sandbox/info").status_code == 404 and get("/sandbox/face/healthz").status_code == 404
        assert not [p for p in get("/openapi.json").json()["paths"] if "sandbox" in p]
        assert "demo-sms-hint" not in get("/app/login").text and "demo-operator-token" not in get("/admin").text
        assert get("/api/v1/his/visits/X", headers={"Authorization": "Bearer H440300L3.demo-h440300l3"}).status_code == 401
    finally:
        server.stop()
    files = [data / "yibao.db", data / "yibao.db-wal", data / "yibao.db-shm"]
    assert {f.name: mode(f) for f in files if f.exists()} == {f.name: "0o600" for f in files if f.exists()} and files[0].exists()
    assert mode(data) == "0o700"


def test_the_demo_works_end_to_end_and_production_refuses_its_database(tmp_path):
    demo_env = env(YIBAO_RECOVERY_INTERVAL="0")
    server = Server(["--demo"], tmp_path, demo_env)  # `make run`: the default .yibao/yibao.db and a generated key
    try:
        get = lambda path, **kw: httpx.get(f"{server.url}{path}", timeout=30, follow_redirects=True, **kw)  # noqa: E731
        post = lambda path, body, **kw: httpx.post(f"{server.url}{path}", json=body, timeout=30, **kw)  # noqa: E731
        hospital = {"Authorization": "Bearer H440300L3.demo-h440300l3"}
        found = post("/api/v1/his/persons/lookup", {"credential_type": "card", "credential_no": "D44030000011"}, headers=hospital)
        assert found.status_code == 200, found.text
        assert post("/api/v1/patient/sms-codes", {"phone": "13800138001"}).status_code == 200
        text = get("/sandbox/sms/messages", params={"phone": "13800138001"}).json()["items"][0]["text"]  # the sandbox gateway's memory
        session = post("/api/v1/patient/sessions", {"phone": "13800138001", "code": re.search(r"(\d{6})", text).group(1)})
        assert session.status_code == 201, session.text
        assert "demo-sms-hint" in get("/app/login").text and "验证码为" in get("/sandbox/sms/outbox").text
        assert "demo-operator-token" in get("/admin").text and get("/cashier").status_code == 200
        assert get("/sandbox/wxpay/sandbox/info").json()["sandbox"] is True and get("/sandbox/face/healthz").status_code == 200
    finally:
        server.stop()
    folder = tmp_path / ".yibao"
    assert mode(folder) == "0o700"
    made = [folder / "yibao.db", folder / "yibao.db-wal", folder / "yibao.db-shm", folder / "yibao.db.writelock", folder / "secret.key"]
    assert {f.name: mode(f) for f in made if f.exists()} == {f.name: "0o600" for f in made if f.exists()}
    assert (folder / "yibao.db").exists() and (folder / "secret.key").exists()

    again = Server(["--demo"], tmp_path, demo_env)  # the demo's own database: it starts again
    again.stop()
    assert "演示数据已存在 Demo data already present" in again.output

    refused = run(["serve", "--port", str(free_port())], tmp_path,
                  env(YIBAO_ADMIN_TOKENS=f"ops:{TOKEN}", YIBAO_SECRET_FILE=str(folder / "secret.key")))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "holds the demo world" in refused.stderr and "演示数据" in refused.stderr
