"""`yibao fsi issue` and `yibao fsi call` — the reference HIS client — against a real `yibao serve` (production); the
client in this process (tests/support/cli.py), the refusals of bad usage also as real processes: exit 0 when infcode is 0,
1 when -1, 2 on bad usage or no answer."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.cli.test_serve_cli import KEY, TOKEN, YIBAO, Server, env, free_port
from tests.support import cli
from tests.support.world import seed
from yibao.crypto.pii import Keyring
from yibao.store import migrate
from yibao.store.db import Database


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """One production server for the module, over a database holding seed()'s world and the hospital's gateway token."""
    home = tmp_path_factory.mktemp("fsi-cli")
    url = f"sqlite:///{home}/data/yibao.db"
    db = Database(url)
    migrate.upgrade(db)
    world = seed(db, Keyring(bytes.fromhex(KEY)))
    db.dispose()
    issued = cli.yibao("fsi", "issue", world.hospital.id, "--database", url, cwd=home, env=env(YIBAO_SECRET_KEY=KEY))
    assert issued.returncode == 0, issued.stderr
    token = json.loads(issued.stdout)["token"]
    server = Server(["--database", url], home, env(YIBAO_ADMIN_TOKENS=f"ops:{TOKEN}", YIBAO_SECRET_KEY=KEY, YIBAO_RECOVERY_INTERVAL="0"))
    try:
        yield server, world, token, home
    finally:
        server.stop()


def call(platform, infno: str, payload, *extra: str, secret: str | None = None) -> subprocess.CompletedProcess:
    server, world, token, home = platform
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return cli.yibao("fsi", "call", infno, "--url", server.url, "--institution", world.hospital.id, "--secret", secret or token,
                     "--input", text, *extra, cwd=home, env=env())


def test_the_client_signs_in_registers_and_exits_by_infcode(platform):
    _, world, _, home = platform
    signed = call(platform, "9001", {"signIn": {"opter_no": "001"}})
    assert signed.returncode == 0, signed.stdout + signed.stderr
    answer = json.loads(signed.stdout)
    assert answer["infcode"] == 0 and len(answer["respond_time"]) == 17
    sign_no = answer["output"]["signinoutb"]["sign_no"]
    (home / "register.json").write_text(json.dumps({"data": {"psn_no": world.employee.id, "insutype": "310"}}), encoding="utf-8")
    registered = call(platform, "2201", "@register.json", "--sign-no", sign_no)
    assert registered.returncode == 0, registered.stdout
    assert json.loads(registered.stdout)["output"]["data"]["psn_no"] == world.employee.id

    refused = call(platform, "2201", {"data": {"psn_no": "NOBODY"}}, "--sign-no", sign_no)
    assert refused.returncode == 1 and "参保人不存在" in json.loads(refused.stdout)["err_msg"]
    wrong = call(platform, "9001", {"signIn": {"opter_no": "001"}}, secret="not-the-token-0000000000")
    assert wrong.returncode == 1 and "x-tif-signature" in json.loads(wrong.stdout)["err_msg"]


def test_bad_usage_exits_2_without_a_traceback(platform, tmp_path):
    server, world, token, _ = platform
    for result in (call(platform, "9001", "{not json"), call(platform, "9001", "@no-such-file.json"), call(platform, "9001", "[1]")):
        assert result.returncode == 2 and "Traceback" not in result.stderr and result.stderr.strip()
    missing = subprocess.run([YIBAO, "fsi", "call", "9001", "--institution", world.hospital.id, "--secret", token, "--input", "{}"],
                             cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "--url" in missing.stderr
    nobody = subprocess.run([YIBAO, "fsi", "call", "9001", "--url", f"http://127.0.0.1:{free_port()}", "--institution", world.hospital.id,
                             "--secret", token, "--input", "{}"], cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=60)
    assert nobody.returncode == 2 and "no answer" in nobody.stderr and "Traceback" not in nobody.stderr
    assert Path(YIBAO).exists()


def test_the_client_downloads_the_catalogue_file(platform):
    """1301 answers a file query number; 9102 --save writes the file itself (a zip), not its base64, and says so."""
    from yibao.formats import catalogue_txt

    _, world, _, home = platform
    sign_no = json.loads(call(platform, "9001", {"signIn": {"opter_no": "001"}}).stdout)["output"]["signinoutb"]["sign_no"]
    asked = call(platform, "1301", {"data": {"ver": "0"}}, "--sign-no", sign_no)
    assert asked.returncode == 0, asked.stdout
    out = json.loads(asked.stdout)["output"]
    got = call(platform, "9102", {"fsDownloadIn": {"file_qury_no": out["file_qury_no"], "filename": "plc"}}, "--sign-no", sign_no,
               "--save", "catalogue.zip")
    assert got.returncode == 0, got.stdout
    assert json.loads(got.stdout)["output"]["file_data"].endswith("bytes written to catalogue.zip>")
    name, rows = catalogue_txt.read((home / "catalogue.zip").read_bytes())
    assert name == out["filename"].removesuffix(".zip") and len(rows) == out["data_cnt"] > 0
    assert {r["list_type"] for r in rows} <= {"101", "102"}


def test_the_client_says_which_msgid_it_sent_so_it_can_be_reversed(platform):
    """docs/fsi.md: "keep this message's msgid" (2401 → 2601): the client, choosing it, must say it (on stderr: stdout
    stays the answer's JSON)."""
    _, world, _, _ = platform
    sign_no = json.loads(call(platform, "9001", {"signIn": {"opter_no": "001"}}).stdout)["output"]["signinoutb"]["sign_no"]
    admitted = call(platform, "2401", {"mdtrtinfo": {"psn_no": world.resident.id, "med_type": "21"}, "diseinfo": []}, "--sign-no", sign_no)
    assert admitted.returncode == 0, admitted.stdout
    said = [line.split()[-1] for line in admitted.stderr.splitlines() if line.startswith("msgid")]
    assert len(said) == 1 and said[0].startswith(world.hospital.id), admitted.stderr
    reversed_ = call(platform, "2601", {"data": {"omsgid": said[0], "oinfno": "2401"}}, "--sign-no", sign_no)
    assert reversed_.returncode == 0, reversed_.stdout
    assert json.loads(reversed_.stdout)["output"]["data"]["mdtrt_id"] == json.loads(admitted.stdout)["output"]["result"]["mdtrt_id"]


def test_a_token_is_revoked_from_the_command_line(platform):
    """`yibao fsi revoke CODE`: the gateway refuses the institution's token from then on (a serving process that has used
    it within CREDENTIAL_CACHE_S notices within that time; this institution never called, so at once)."""
    server, world, _, home = platform
    url = f"sqlite:///{home}/data/yibao.db"  # the platform fixture's
    issued = cli.yibao("fsi", "issue", world.other_hospital.id, "--database", url, cwd=home, env=env(YIBAO_SECRET_KEY=KEY))
    assert issued.returncode == 0, issued.stderr
    revoked = cli.yibao("fsi", "revoke", world.other_hospital.id, "--database", url, cwd=home, env=env(YIBAO_SECRET_KEY=KEY))
    assert revoked.returncode == 0, revoked.stderr
    assert json.loads(revoked.stdout) == {"institution": world.other_hospital.id, "status": "revoked"}
    refused = cli.yibao("fsi", "call", "9001", "--url", server.url, "--institution", world.other_hospital.id, "--secret",
                        json.loads(issued.stdout)["token"], "--input", json.dumps({"signIn": {"opter_no": "001"}}), cwd=home, env=env())
    assert refused.returncode == 1 and "x-tif-paasid" in json.loads(refused.stdout)["err_msg"]
    again = cli.yibao("fsi", "revoke", world.other_hospital.id, "--database", url, cwd=home, env=env(YIBAO_SECRET_KEY=KEY))
    assert again.returncode != 0 and "Traceback" not in again.stderr
